package av1_test

import (
	"bytes"
	"errors"
	"flag"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux/codec/av1"
)

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz")

func fixtureConfig(tb testing.TB) []byte {
	return fixture.ExBodies(tb, "av1-opus.flv", 9, "av01", 0)[0].Data
}

// TestFixtureConfig checks the parse of av1-opus.flv's av1C against ffprobe's
// view of its source (AV1 Main, 640x360, yuv420p, 8 bits; level index 1 is
// level 2.1, which 640x360 at 25 fps needs).
func TestFixtureConfig(t *testing.T) {
	c, err := av1.ParseConfig(fixtureConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Sequence
	if s.Profile != 0 || s.Width != 640 || s.Height != 360 || s.BitDepth != 8 || s.Monochrome ||
		!s.SubsamplingX || !s.SubsamplingY || s.LevelIdx0 != 1 || s.Tier0 != 0 {
		t.Errorf("sequence header %+v", s)
	}
	if got, want := c.CodecString(), "av01.0.01M.08"; got != want {
		t.Errorf("codec string %q, want %q", got, want)
	}
}

// TestFixtureKeyFrames checks key frame detection against the FLV frame type
// FFmpeg set: 150 temporal units, a key frame every 50.
func TestFixtureKeyFrames(t *testing.T) {
	n, keys := 0, 0
	for _, p := range fixture.ExBodies(t, "av1-opus.flv", 9, "av01", 1) {
		key, err := av1.IsKeyFrame(p.Data)
		if err != nil {
			t.Fatalf("unit %d: %v", n, err)
		}
		if key != p.Key {
			t.Errorf("unit %d: key %v, FLV key frame %v", n, key, p.Key)
		}
		if key {
			keys++
		}
		n++
	}
	if n != 150 || keys != 3 {
		t.Errorf("%d units, %d key; want 150 and 3", n, keys)
	}
}

func TestReadLEB128(t *testing.T) {
	tests := []struct {
		in   []byte
		v    uint32
		n    int
		fail bool
	}{
		{[]byte{0}, 0, 1, false},
		{[]byte{0x7f}, 127, 1, false},
		{[]byte{0x80, 0x01}, 128, 2, false},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, 8, false}, // padded, 8 bytes
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 1<<32 - 1, 5, false},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, 0, true}, // 9 bytes
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x10}, 0, 0, true},                         // 2^32
		{[]byte{0x80}, 0, 0, true},                                                 // truncated
	}
	for i, tc := range tests {
		v, n, err := av1.ReadLEB128(tc.in)
		if (err != nil) != tc.fail || v != tc.v || n != tc.n {
			t.Errorf("%d: %d, %d, %v", i, v, n, err)
		}
	}
}

func TestIsKeyFrame(t *testing.T) {
	seq := fixture.ExBodies(t, "av1-opus.flv", 9, "av01", 0)[0].Data[4:] // the sequence header OBU
	tests := []struct {
		name string
		tu   []byte
		key  bool
		fail bool
	}{
		{"key frame", append(bytes.Clone(seq), 0x32, 1, 0x10), true, false},             // frame OBU: KEY_FRAME, shown
		{"no sequence header", []byte{0x32, 1, 0x10}, false, false},                     // a key frame alone is not a sync sample
		{"shown existing frame", append(bytes.Clone(seq), 0x1a, 1, 0x80), false, false}, // frame header OBU, show_existing_frame
		{"inter frame", append(bytes.Clone(seq), 0x32, 1, 0x30), false, false},          // INTER_FRAME
		{"hidden key frame", append(bytes.Clone(seq), 0x32, 1, 0x00), false, false},     // show_frame 0
		{"size past the end", []byte{0x12, 5, 0}, false, true},                          // temporal delimiter claims 5 bytes
		{"leb128 over 8 bytes", []byte{0x12, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0}, false, true},
		{"forbidden bit", []byte{0x92, 0}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := av1.IsKeyFrame(tc.tu)
			if key != tc.key || (err != nil) != tc.fail {
				t.Fatalf("key %v, error %v", key, err)
			}
			if err != nil && !errors.Is(err, av1.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
	tu := tests[0].tu
	if n := testing.AllocsPerRun(100, func() { _, _ = av1.IsKeyFrame(tu) }); n != 0 {
		t.Errorf("IsKeyFrame: %v allocations", n)
	}
}

func TestParseConfigErrors(t *testing.T) {
	rec := fixtureConfig(t)
	bad := func(i int, b byte) []byte { r := bytes.Clone(rec); r[i] = b; return r }
	for name, r := range map[string][]byte{
		"short":              rec[:3],
		"version":            bad(0, 0x80),
		"no sequence header": rec[:4],
		"level disagrees":    bad(1, 0x05),
		"obu truncated":      rec[:len(rec)-1],
	} {
		if _, err := av1.ParseConfig(r); !errors.Is(err, av1.ErrMalformed) {
			t.Errorf("%s: error %v", name, err)
		}
	}
}

func TestSeedCorpus(t *testing.T) {
	units := fixture.ExBodies(t, "av1-opus.flv", 9, "av01", 1)
	fixture.Corpus(t, *update, "FuzzParseConfig", map[string][]byte{"libaom-640x360": fixtureConfig(t)})
	fixture.Corpus(t, *update, "FuzzIsKeyFrame", map[string][]byte{
		"key":   units[0].Data[:min(len(units[0].Data), 48)],
		"inter": units[1].Data[:min(len(units[1].Data), 48)],
	})
}

func FuzzParseConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, rec []byte) {
		c, err := av1.ParseConfig(rec)
		if err != nil {
			if !errors.Is(err, av1.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.Sequence.Width <= 0 || c.Sequence.Height <= 0 || len(c.CodecString()) != len("av01.0.01M.08") {
			t.Fatalf("config %+v, %q", c, c.CodecString())
		}
	})
}

func FuzzIsKeyFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, tu []byte) {
		if _, err := av1.IsKeyFrame(tu); err != nil && !errors.Is(err, av1.ErrMalformed) {
			t.Fatalf("error %v does not wrap ErrMalformed", err)
		}
	})
}
