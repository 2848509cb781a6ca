package hevc_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux/codec/hevc"
)

// fixtureConfig is the hvcC x265 wrote for hevc-aac.flv (HEVC Main 640x360).
func fixtureConfig(tb testing.TB) []byte {
	return fixture.ExBodies(tb, "hevc-aac.flv", 9, "hvc1", 0)[0].Data
}

// TestFixtureConfig checks the parse against what ffprobe says of
// hevc-aac.flv's source (Main, 640x360, yuv420p, level 63) and the codecs
// string FFmpeg's HLS muxer writes for it.
func TestFixtureConfig(t *testing.T) {
	c, err := hevc.ParseConfig(fixtureConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	if c.ProfileIDC != 1 || c.Tier != 0 || c.LevelIDC != 63 || c.Width != 640 || c.Height != 360 ||
		c.ChromaFormat != 1 || c.BitDepthLuma != 8 || c.BitDepthChroma != 8 || c.LengthSize != 4 {
		t.Errorf("config %+v", c)
	}
	if len(c.VPS) != 1 || len(c.SPS) != 1 || len(c.PPS) != 1 || len(c.SEI) != 1 {
		t.Errorf("%d VPS, %d SPS, %d PPS, %d SEI", len(c.VPS), len(c.SPS), len(c.PPS), len(c.SEI))
	}
	if got, want := c.CodecString("hvc1"), "hvc1.1.6.L63.90"; got != want {
		t.Errorf("codec string %q, want %q", got, want)
	}
	s, err := hevc.ParseSPS(c.SPS[0])
	if err != nil || s.Width != 640 || s.Height != 360 {
		t.Errorf("SPS %+v, %v", s, err)
	}
}

// TestFixtureIRAP checks IRAP detection against the FLV frame type FFmpeg set
// from its own parse: every keyframe, and only those, holds an IRAP picture.
func TestFixtureIRAP(t *testing.T) {
	n, keys := 0, 0
	for _, pt := range []byte{1, 3} {
		for _, p := range fixture.ExBodies(t, "hevc-aac.flv", 9, "hvc1", pt) {
			data := p.Data
			if pt == 1 {
				data = data[3:]
			}
			irap, err := hevc.HasIRAP(data, 4)
			if err != nil {
				t.Fatal(err)
			}
			if irap != p.Key {
				t.Errorf("frame %d: IRAP %v, FLV key frame %v", n, irap, p.Key)
			}
			n++
			if irap {
				keys++
			}
		}
	}
	if n != 150 || keys != 3 {
		t.Errorf("%d frames, %d IRAP; want 150 and 3 (6 s at 25 fps, one every 2 s)", n, keys)
	}
}

// record builds an hvcC with the fixture's first 22 bytes and the arrays
// given.
func record(tb testing.TB, arrays ...[]byte) []byte {
	head := bytes.Clone(fixtureConfig(tb)[:22])
	out := append(head, byte(len(arrays)))
	for _, a := range arrays {
		out = append(out, a...)
	}
	return out
}

func array(typ byte, nals ...[]byte) []byte {
	a := []byte{typ, 0, 0}
	binary.BigEndian.PutUint16(a[1:], uint16(len(nals)))
	for _, n := range nals {
		a = binary.BigEndian.AppendUint16(a, uint16(len(n)))
		a = append(a, n...)
	}
	return a
}

func TestParseConfigErrors(t *testing.T) {
	c, err := hevc.ParseConfig(fixtureConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	vps, sps, pps := array(32, c.VPS[0]), array(33, c.SPS[0]), array(34, c.PPS[0])
	many := make([][]byte, 255)
	for i := range many {
		many[i] = array(39)
	}
	var sei17 [][]byte
	for range 17 {
		sei17 = append(sei17, []byte{0x4e, 1, 5})
	}
	tests := []struct {
		name string
		rec  []byte
		ok   bool
	}{
		{"minimal", record(t, vps, sps, pps), true},
		{"255 arrays", record(t, append([][]byte{vps, sps, pps}, many[:252]...)...), false},
		{"too many NAL units", record(t, vps, sps, pps, array(39, sei17...)), false},
		{"no PPS", record(t, vps, sps), false},
		{"NAL type disagrees", record(t, vps, array(33, c.PPS[0]), pps), false},
		{"trailing bytes", append(record(t, vps, sps, pps), 0), false},
		{"array truncated", record(t, vps, sps, pps)[:len(record(t, vps, sps, pps))-1], false},
		{"short", []byte{1, 2, 3}, false},
		{"version 0", append([]byte{0}, record(t, vps, sps, pps)[1:]...), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hevc.ParseConfig(tc.rec)
			if (err == nil) != tc.ok {
				t.Fatalf("error %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, hevc.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
		})
	}
}

func TestCodecString(t *testing.T) {
	tests := []struct {
		c    hevc.Config
		want string
	}{
		// ISO/IEC 14496-15 Annex E's examples.
		{hevc.Config{ProfileIDC: 1, CompatibilityFlags: 0x60000000, LevelIDC: 93, ConstraintFlags: [6]byte{0xb0}}, "hvc1.1.6.L93.B0"},
		{hevc.Config{ProfileSpace: 1, ProfileIDC: 2, CompatibilityFlags: 0x20000000, Tier: 1, LevelIDC: 120, ConstraintFlags: [6]byte{0xb0, 0x23}}, "hvc1.A2.4.H120.B0.23"},
		{hevc.Config{ProfileIDC: 2, CompatibilityFlags: 0x20000000, LevelIDC: 123}, "hvc1.2.4.L123"},
	}
	for _, tc := range tests {
		if got := tc.c.CodecString("hvc1"); got != tc.want {
			t.Errorf("%q, want %q", got, tc.want)
		}
	}
}

func TestHasIRAP(t *testing.T) {
	tests := []struct {
		sample []byte
		irap   bool
		err    bool
	}{
		{[]byte{0, 0, 0, 3, 0x26, 1, 0xaf}, true, false},                      // IDR_W_RADL
		{[]byte{0, 0, 0, 3, 0x2a, 1, 0xaf}, true, false},                      // CRA
		{[]byte{0, 0, 0, 3, 0x02, 1, 0xd0}, false, false},                     // TRAIL_R
		{[]byte{0, 0, 0, 2, 0x46, 1, 0, 0, 0, 3, 0x26, 1, 0xaf}, true, false}, // AUD then IDR
		{[]byte{0, 0, 0, 9, 0x26}, false, true},                               // length past the end
		{[]byte{0, 0, 0, 1, 0x26}, false, true},                               // no room for a header
		{[]byte{0, 0}, false, true},                                           // prefix truncated
	}
	for i, tc := range tests {
		irap, err := hevc.HasIRAP(tc.sample, 4)
		if irap != tc.irap || (err != nil) != tc.err {
			t.Errorf("%d: IRAP %v, error %v", i, irap, err)
		}
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = hevc.HasIRAP(tests[3].sample, 4) }); n != 0 {
		t.Errorf("HasIRAP: %v allocations", n)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, rec []byte) {
		in := bytes.Clone(rec)
		c, err := hevc.ParseConfig(rec)
		if !bytes.Equal(in, rec) {
			t.Fatal("ParseConfig modified its input")
		}
		if err != nil {
			if !errors.Is(err, hevc.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if c.Width <= 0 || c.Height <= 0 || len(c.SPS) == 0 || len(c.PPS) == 0 || len(c.VPS) == 0 {
			t.Fatalf("config %+v", c)
		}
		_ = c.CodecString("hvc1")
	})
}

func FuzzHasIRAP(f *testing.F) {
	f.Fuzz(func(t *testing.T, sample []byte) {
		_, _ = hevc.HasIRAP(sample, 4)
	})
}

var update = flag.Bool("update", false, "rewrite the seed corpus under testdata/fuzz")

// TestSeedCorpus keeps the committed seeds in step: the fixture's parameter
// sets in a minimal hvcC (its 2 KB x265 SEI left out), and the first NAL units
// of a key and an inter frame cut to a few bytes each.
func TestSeedCorpus(t *testing.T) {
	c, err := hevc.ParseConfig(fixtureConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	minimal := record(t, array(32, c.VPS[0]), array(33, c.SPS[0]), array(34, c.PPS[0]))
	fixture.Corpus(t, *update, "FuzzParseConfig", map[string][]byte{
		"x265-640x360": minimal,
		"two-sps":      record(t, array(32, c.VPS[0]), array(33, c.SPS[0], c.SPS[0]), array(34, c.PPS[0])),
	})
	samples := map[string][]byte{}
	for _, p := range fixture.ExBodies(t, "hevc-aac.flv", 9, "hvc1", 1)[:2] {
		name := "inter"
		if p.Key {
			name = "key"
		}
		samples[name] = cutSample(p.Data[3:], 8)
	}
	fixture.Corpus(t, *update, "FuzzHasIRAP", samples)
}

// cutSample keeps the first n bytes of each NAL unit of a 4-byte-length sample.
func cutSample(s []byte, n int) []byte {
	var out []byte
	for len(s) >= 4 {
		size := int(binary.BigEndian.Uint32(s))
		nal := s[4 : 4+size]
		s = s[4+size:]
		nal = nal[:min(n, len(nal))]
		out = binary.BigEndian.AppendUint32(out, uint32(len(nal)))
		out = append(out, nal...)
	}
	return out
}

// TestSPSColour reads the VUI colour description of SPSs written by x265
// (ffmpeg -c:v libx265 -x265-params ...) through the parts of the SPS before
// it: sub-layer ordering, scaling lists, several short-term reference picture
// sets (with B-pyramids, inter-predicted ones) and the SAR.
func TestSPSColour(t *testing.T) {
	for _, c := range []struct {
		name, sps string
		want      hevc.SPS
	}{
		{"colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:range=limited",
			"42010102200000030090000003000003003ca00a080f1365959a4932bc05a84880482000000300200000030321",
			hevc.SPS{Colour: true, Primaries: 9, Transfer: 16, Matrix: 9}},
		{"colorprim=bt709:transfer=bt709:colormatrix=bt709:range=full:bframes=8:b-pyramid=1:scaling-list=default",
			"42010102200000030090000003000003003ca00a080f1365958a924e5780b7010101040000030004000003006420",
			hevc.SPS{Colour: true, Primaries: 1, Transfer: 1, Matrix: 1, FullRange: true}},
		{"colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc:bframes=0:ref=6:keyint=30:sar=4:3",
			"42010102200000030090000003000003003ca00a080f13659ea4932bc39a848904820000030002000003003210",
			hevc.SPS{Colour: true, Primaries: 9, Transfer: 18, Matrix: 9}},
		{"bframes=3 (no colour description)",
			"42010102200000030090000003000003003ca00a080f136595964932bc05a02000000300200000030321",
			hevc.SPS{}},
	} {
		nal, err := hex.DecodeString(c.sps)
		if err != nil {
			t.Fatal(err)
		}
		s, err := hevc.ParseSPS(nal)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if s.Width != 320 || s.Height != 240 || s.BitDepthLuma != 10 {
			t.Errorf("%s: %dx%d %d-bit, want 320x240 10-bit", c.name, s.Width, s.Height, s.BitDepthLuma)
		}
		got := hevc.SPS{Colour: s.Colour, Primaries: s.Primaries, Transfer: s.Transfer, Matrix: s.Matrix, FullRange: s.FullRange}
		if got != c.want {
			t.Errorf("%s: colour %+v, want %+v", c.name, got, c.want)
		}
		// A truncated SPS never claims a colour that is not all there.
		for n := 20; n < len(nal); n++ {
			if s, err := hevc.ParseSPS(nal[:n]); err == nil && s.Colour &&
				(s.Primaries != got.Primaries || s.Transfer != got.Transfer || s.Matrix != got.Matrix || s.FullRange != got.FullRange) {
				t.Errorf("%s cut to %d bytes: colour %+v", c.name, n, s)
			}
		}
	}
}
