package packager_test

import (
	"path/filepath"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
)

// TestMPDSchema validates every golden MPD (classic live, low-latency live with
// its SegmentTemplate@duration Period and ProducerReferenceTime, republished,
// static) against the ISO/IEC 23009-1 schema with xmllint, offline.
func TestMPDSchema(t *testing.T) {
	mpds, err := filepath.Glob("testdata/golden/*/*/index.mpd")
	if err != nil || len(mpds) < 8 {
		t.Fatalf("golden MPDs: %v %v", mpds, err)
	}
	for _, mpd := range mpds {
		t.Run(mpd, func(t *testing.T) {
			if err := fixture.ValidateMPD(t, mpd); err != nil {
				t.Fatal(err)
			}
		})
	}
}
