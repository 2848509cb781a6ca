package vp9_test

import (
	"errors"
	"flag"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux/codec/vp9"
)

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz")

// TestFixture checks vp9-opus.flv against ffprobe's view of its source (VP9
// profile 0, 640x360, yuv420p) and the FLV key frames FFmpeg marked.
func TestFixture(t *testing.T) {
	c, err := vp9.ParseConfig(fixture.ExBodies(t, "vp9-opus.flv", 9, "vp09", 0)[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.CodecString(), "vp09.00.21.08"; got != want {
		t.Errorf("codec string %q, want %q", got, want)
	}
	if c.ChromaSubsampling != 1 || c.FullRange || c.ColourPrimaries != 2 {
		t.Errorf("config %+v", c)
	}
	n, keys := 0, 0
	for _, p := range fixture.ExBodies(t, "vp9-opus.flv", 9, "vp09", 1) {
		f, err := vp9.ParseFrame(p.Data)
		if err != nil {
			t.Fatalf("frame %d: %v", n, err)
		}
		if f.Key != p.Key {
			t.Errorf("frame %d: key %v, FLV key frame %v", n, f.Key, p.Key)
		}
		if f.Key {
			keys++
			if f.Width != 640 || f.Height != 360 {
				t.Errorf("key frame %d: %dx%d", n, f.Width, f.Height)
			}
		}
		n++
	}
	if n != 150 || keys != 3 {
		t.Errorf("%d frames, %d key; want 150 and 3", n, keys)
	}
}

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name string
		rec  []byte
		want string
	}{
		{"with version and flags", []byte{1, 0, 0, 0, 0, 21, 0x82, 2, 2, 2, 0, 0}, "vp09.00.21.08"},
		{"record only", []byte{2, 31, 0xa2, 9, 16, 9, 0, 0}, "vp09.02.31.10"},
		{"version 0", []byte{0, 0, 0, 0, 0, 21, 0x82, 2, 2, 2, 0, 0}, ""},
		{"init data", []byte{1, 0, 0, 0, 0, 21, 0x82, 2, 2, 2, 0, 1, 9}, ""},
		{"bit depth 9", []byte{0, 21, 0x92, 2, 2, 2, 0, 0}, ""},
		{"short", []byte{0, 21, 0x82}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := vp9.ParseConfig(tc.rec)
			if tc.want == "" {
				if !errors.Is(err, vp9.ErrMalformed) {
					t.Fatalf("error %v", err)
				}
				return
			}
			if err != nil || c.CodecString() != tc.want {
				t.Fatalf("%v, %v", c, err)
			}
		})
	}
}

func TestParseFrame(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":          {},
		"marker":         {0x02},
		"key truncated":  {0x82, 0x49},
		"bad sync code":  {0x82, 0x49, 0x83, 0x43, 0, 0, 0, 0, 0},
		"size truncated": {0x82, 0x49, 0x83, 0x42, 0},
	} {
		if _, err := vp9.ParseFrame(b); !errors.Is(err, vp9.ErrMalformed) {
			t.Errorf("%s: error %v", name, err)
		}
	}
	inter := []byte{0x86, 0, 0x40}
	if f, err := vp9.ParseFrame(inter); err != nil || f.Key || !f.Show {
		t.Errorf("inter frame: %+v, %v", f, err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = vp9.ParseFrame(inter) }); n != 0 {
		t.Errorf("ParseFrame: %v allocations", n)
	}
}

func TestSeedCorpus(t *testing.T) {
	frames := fixture.ExBodies(t, "vp9-opus.flv", 9, "vp09", 1)
	fixture.Corpus(t, *update, "FuzzParseConfig", map[string][]byte{"libvpx": fixture.ExBodies(t, "vp9-opus.flv", 9, "vp09", 0)[0].Data})
	fixture.Corpus(t, *update, "FuzzParseFrame", map[string][]byte{"key": frames[0].Data[:32], "inter": frames[1].Data[:32]})
}

func FuzzParseConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, rec []byte) {
		c, err := vp9.ParseConfig(rec)
		if err != nil {
			if !errors.Is(err, vp9.ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if len(c.CodecString()) != len("vp09.00.21.08") && c.Level < 100 {
			t.Fatalf("codec string %q", c.CodecString())
		}
	})
}

func FuzzParseFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := vp9.ParseFrame(b)
		if err != nil && !errors.Is(err, vp9.ErrMalformed) {
			t.Fatal(err)
		}
		if fr.Key && (fr.Width <= 0 || fr.Height <= 0 || fr.Width > 1<<16 || fr.Height > 1<<16) {
			t.Fatalf("key frame %+v", fr)
		}
	})
}
