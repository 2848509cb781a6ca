package opus_test

import (
	"bytes"
	"errors"
	"flag"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux/codec/opus"
)

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz")

// TestFixture checks av1-opus.flv's OpusHead against its source (libopus, mono,
// 48 kHz; pre-skip 312 is libopus's usual 6.5 ms).
func TestFixture(t *testing.T) {
	for _, name := range []string{"av1-opus.flv", "vp9-opus.flv"} {
		h, err := opus.ParseHead(fixture.ExBodies(t, name, 8, "Opus", 0)[0].Data)
		if err != nil {
			t.Fatal(err)
		}
		if h.Channels != 1 || h.MappingFamily != 0 || h.PreSkip != 312 || h.InputSampleRate != 48000 || h.Version != 1 {
			t.Errorf("%s: %+v", name, h)
		}
		want := []byte{0, 1, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0}
		if got := h.AppendDOps(nil); !bytes.Equal(got, want) {
			t.Errorf("dOps % x, want % x", got, want)
		}
	}
}

func head(channels, family byte, rest ...byte) []byte {
	b := append([]byte("OpusHead"), 1, channels, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, family)
	return append(b, rest...)
}

func TestParseHead(t *testing.T) {
	surround := head(6, 1, 4, 2, 0, 4, 1, 2, 3, 5)
	tests := []struct {
		name string
		b    []byte
		err  error
	}{
		{"stereo", head(2, 0), nil},
		{"5.1", surround, nil},
		{"255 channels without mapping table", head(255, 255), opus.ErrMalformed},
		{"255 channels with family 0", head(255, 0), opus.ErrMalformed},
		{"9 channels in family 1", head(9, 1, append([]byte{9, 0}, make([]byte, 9)...)...), opus.ErrMalformed},
		{"zero channels", head(0, 0), opus.ErrMalformed},
		{"mapping past decoded channels", head(2, 1, 1, 0, 0, 1), opus.ErrMalformed},
		{"coupled over streams", head(2, 1, 1, 2, 0, 1), opus.ErrMalformed},
		{"major version 1", append([]byte("OpusHead"), 0x10, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0), opus.ErrUnsupported},
		{"not OpusHead", append([]byte("OpusTags"), make([]byte, 11)...), opus.ErrMalformed},
		{"short", head(2, 0)[:18], opus.ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, err := opus.ParseHead(tc.b)
			if tc.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, tc.err) || h != nil {
				t.Fatalf("head %v, error %v, want %v", h, err, tc.err)
			}
		})
	}
	h, _ := opus.ParseHead(surround)
	if got := h.AppendDOps(nil); !bytes.Equal(got[11:], []byte{4, 2, 0, 4, 1, 2, 3, 5}) || len(got) != 19 {
		t.Errorf("dOps % x", got)
	}
	if !opus.IsTags([]byte("OpusTags\x00")) || opus.IsTags(head(2, 0)) {
		t.Error("IsTags")
	}
}

func TestSeedCorpus(t *testing.T) {
	fixture.Corpus(t, *update, "FuzzParseHead", map[string][]byte{
		"libopus-mono": fixture.ExBodies(t, "av1-opus.flv", 8, "Opus", 0)[0].Data,
		"surround":     head(6, 1, 4, 2, 0, 4, 1, 2, 3, 5),
	})
}

func FuzzParseHead(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := opus.ParseHead(b)
		if err != nil {
			if !errors.Is(err, opus.ErrMalformed) && !errors.Is(err, opus.ErrUnsupported) {
				t.Fatal(err)
			}
			return
		}
		d := h.AppendDOps(nil)
		if len(d) != 11 && len(d) != 13+int(h.Channels) {
			t.Fatalf("dOps of %d bytes for %+v", len(d), h)
		}
	})
}
