package packager_test

import (
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
)

// EXT-X-INDEPENDENT-SEGMENTS is a promise that every segment starts with a sync
// sample: kept for keyframe-cut streams, left out once a GOP outruns the segment
// cap and segments are cut mid-GOP.
func TestIndependentSegmentsTag(t *testing.T) {
	for _, tc := range []struct {
		name string
		m    media
		want bool
	}{
		{"2 s GOP", media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 13000}, true},
		{"no keyframe after the first", media{video: videoA, vStep: 40, gops: []int64{1 << 30}, until: 25000}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHub(t, packager.Config{WindowSegments: 100})
			w := mustPublish(t, h, "live", "ind")
			publish(t, w, tc.m)
			closeWriter(t, w)
			obj, ok := mustStream(t, h, "live", "ind").Object(packager.VideoPlaylistPath)
			if !ok {
				t.Fatal("no video playlist")
			}
			if got := strings.Contains(string(obj.Data), "#EXT-X-INDEPENDENT-SEGMENTS"); got != tc.want {
				t.Errorf("EXT-X-INDEPENDENT-SEGMENTS present %v, want %v:\n%s", got, tc.want, obj.Data)
			}
		})
	}
}
