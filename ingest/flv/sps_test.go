package flv

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/bits"
)

// bitWriter builds bit strings for the SPS tests: the inverse of bits.Reader.
type bitWriter struct {
	buf  []byte
	nbit int
}

func (w *bitWriter) bits(v uint64, n int) {
	for i := n - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.buf = append(w.buf, 0)
		}
		w.buf[len(w.buf)-1] |= byte(v>>uint(i)&1) << (7 - uint(w.nbit%8))
		w.nbit++
	}
}

func (w *bitWriter) flag(b bool) {
	if b {
		w.bits(1, 1)
	} else {
		w.bits(0, 1)
	}
}

func (w *bitWriter) ue(v uint64) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.bits(0, n)
	w.bits(v, n+1)
}

func (w *bitWriter) se(v int64) {
	if v > 0 {
		w.ue(uint64(2*v - 1))
	} else {
		w.ue(uint64(-2 * v))
	}
}

// spsFields is an SPS to encode; zero values are the common case.
type spsFields struct {
	profile, constraints, level byte
	id                          uint64
	chroma                      uint64 // high profiles only
	separate                    bool
	scaling                     [][]int64 // high profiles: per list, nil = absent, else its delta_scale values
	pocType                     uint64
	pocCycle                    []int64 // pic_order_cnt_type 1
	maxRefFrames                uint64
	widthMBs, heightMapUnits    uint64 // minus 1 is applied by the encoder
	fieldCoding                 bool   // frame_mbs_only_flag 0
	crop                        *[4]uint64
}

// encode writes the SPS NAL unit, with emulation prevention.
func (f spsFields) encode() []byte {
	var w bitWriter
	w.bits(uint64(f.profile), 8)
	w.bits(uint64(f.constraints), 8)
	w.bits(uint64(f.level), 8)
	w.ue(f.id)
	if highProfile(f.profile) {
		w.ue(f.chroma)
		if f.chroma == 3 {
			w.flag(f.separate)
		}
		w.ue(0)       // bit_depth_luma_minus8
		w.ue(0)       // bit_depth_chroma_minus8
		w.flag(false) // qpprime_y_zero_transform_bypass_flag
		w.flag(f.scaling != nil)
		for _, list := range f.scaling {
			w.flag(list != nil)
			for _, d := range list {
				w.se(d)
			}
		}
	}
	w.ue(0) // log2_max_frame_num_minus4
	w.ue(f.pocType)
	switch f.pocType {
	case 0:
		w.ue(2)
	case 1:
		w.flag(false)
		w.se(-1)
		w.se(3)
		w.ue(uint64(len(f.pocCycle)))
		for _, o := range f.pocCycle {
			w.se(o)
		}
	}
	w.ue(f.maxRefFrames)
	w.flag(false)
	w.ue(f.widthMBs - 1)
	w.ue(f.heightMapUnits - 1)
	w.flag(!f.fieldCoding)
	if f.fieldCoding {
		w.flag(true) // mb_adaptive_frame_field_flag
	}
	w.flag(true) // direct_8x8_inference_flag
	w.flag(f.crop != nil)
	if f.crop != nil {
		for _, c := range f.crop {
			w.ue(c)
		}
	}
	w.flag(false) // vui_parameters_present_flag
	w.bits(1, 1)  // rbsp_stop_one_bit
	for w.nbit%8 != 0 {
		w.bits(0, 1)
	}
	out := []byte{0x67}
	zeros := 0
	for _, c := range w.buf {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// flatList is a scaling list of n explicit, non-zero deltas.
func flatList(n int, d int64) []int64 {
	l := make([]int64, n)
	for i := range l {
		l[i] = d
		d = -d
	}
	return l
}

func TestParseSPS(t *testing.T) {
	// A scaling list that ends early: delta -8 takes nextScale from 8 to 0,
	// which means "use the default list" and stops reading deltas.
	useDefault := []int64{-8}
	scaling8 := [][]int64{flatList(16, 3), nil, useDefault, nil, flatList(16, -5), nil, flatList(64, 1), useDefault}
	scaling12 := append(append([][]int64{}, scaling8...), nil, flatList(64, 2), nil, useDefault)
	tests := []struct {
		name          string
		f             spsFields
		width, height int
	}{
		{"baseline 720p", spsFields{profile: 66, level: 31, widthMBs: 80, heightMapUnits: 45}, 1280, 720},
		{"main 1080p cropped", spsFields{profile: 77, level: 40, widthMBs: 120, heightMapUnits: 68, crop: &[4]uint64{0, 0, 0, 4}}, 1920, 1080},
		{"high with scaling lists", spsFields{profile: 100, level: 30, chroma: 1, scaling: scaling8, widthMBs: 40, heightMapUnits: 23, crop: &[4]uint64{0, 0, 0, 4}}, 640, 360},
		{"high 4:4:4 with 12 scaling lists", spsFields{profile: 244, chroma: 3, scaling: scaling12, widthMBs: 21, heightMapUnits: 16, crop: &[4]uint64{1, 2, 0, 15}}, 333, 241},
		{"separate colour planes", spsFields{profile: 244, chroma: 3, separate: true, widthMBs: 21, heightMapUnits: 16, crop: &[4]uint64{0, 3, 0, 1}}, 333, 255},
		{"monochrome interlaced", spsFields{profile: 100, chroma: 0, widthMBs: 20, heightMapUnits: 8, fieldCoding: true, crop: &[4]uint64{1, 0, 0, 3}}, 319, 250},
		{"4:2:2 interlaced", spsFields{profile: 122, chroma: 2, widthMBs: 45, heightMapUnits: 17, fieldCoding: true, crop: &[4]uint64{0, 0, 0, 4}}, 720, 536},
		{"4:2:0 interlaced", spsFields{profile: 100, chroma: 1, widthMBs: 45, heightMapUnits: 18, fieldCoding: true, crop: &[4]uint64{0, 0, 0, 2}}, 720, 568},
		{"poc type 1", spsFields{profile: 77, pocType: 1, pocCycle: []int64{2, -2, 7}, widthMBs: 22, heightMapUnits: 18}, 352, 288},
		{"poc type 2", spsFields{profile: 66, pocType: 2, widthMBs: 11, heightMapUnits: 9}, 176, 144},
		{"emulation prevention", spsFields{profile: 66, maxRefFrames: 1<<20 - 1, widthMBs: 64, heightMapUnits: 1}, 1024, 16},
		{"largest size", spsFields{profile: 66, widthMBs: 1024, heightMapUnits: 1024}, 16384, 16384},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nal := tc.f.encode()
			if tc.name == "emulation prevention" && !bytes.Contains(nal, []byte{0, 0, 3}) {
				t.Fatalf("test SPS % x has no emulation prevention byte", nal)
			}
			s, err := parseSPS(nal)
			if err != nil {
				t.Fatal(err)
			}
			if s.width != tc.width || s.height != tc.height {
				t.Errorf("size %dx%d, want %dx%d", s.width, s.height, tc.width, tc.height)
			}
			if s.profile != tc.f.profile || s.level != tc.f.level {
				t.Errorf("profile %d level %d", s.profile, s.level)
			}
			// Every truncation either fails or, once the fields we read
			// are all there, gives the same answer.
			for n := 0; n < len(nal); n++ {
				s2, err := parseSPS(nal[:n])
				if err == nil && (s2.width != s.width || s2.height != s.height) {
					t.Fatalf("prefix of %d bytes: %dx%d", n, s2.width, s2.height)
				}
				if err != nil && !errors.Is(err, ErrMalformed) {
					t.Fatalf("prefix of %d bytes: %v", n, err)
				}
			}
		})
	}
}

func TestParseSPSErrors(t *testing.T) {
	ok := spsFields{profile: 100, chroma: 1, widthMBs: 40, heightMapUnits: 23}
	with := func(mod func(*spsFields)) []byte {
		f := ok
		mod(&f)
		return f.encode()
	}
	tests := []struct {
		name string
		nal  []byte
		msg  string
	}{
		{"too short", []byte{0x67, 66, 0}, "need at least 4"},
		{"not an SPS", []byte{0x68, 66, 0, 30, 0x80}, "NAL unit type 8"},
		{"too long", append([]byte{0x67, 66, 0, 30}, make([]byte, maxSPS)...), "limit"},
		{"only profile bytes", []byte{0x67, 66, 0, 30}, "seq_parameter_set_id"},
		{"id 32", with(func(f *spsFields) { f.id = 32 }), "seq_parameter_set_id 32"},
		{"chroma format 4", with(func(f *spsFields) { f.chroma = 4 }), "chroma_format_idc 4"},
		{"poc type 3", with(func(f *spsFields) { f.pocType = 3 }), "pic_order_cnt_type 3"},
		{"poc cycle 256", with(func(f *spsFields) { f.pocType = 1; f.pocCycle = make([]int64, 256) }), "num_ref_frames_in_pic_order_cnt_cycle 256"},
		{"scaling delta out of range", with(func(f *spsFields) { f.scaling = [][]int64{{200}} }), "scaling list 0: delta_scale 200"},
		{"scaling list truncated", with(func(f *spsFields) { f.scaling = [][]int64{nil, nil, nil, nil, nil, nil, nil, {1}} })[:8], "scaling list 7"},
		{"width too large", with(func(f *spsFields) { f.widthMBs = 1025 }), "size in macroblocks 1025x23"},
		{"field height too large", with(func(f *spsFields) { f.heightMapUnits = 513; f.fieldCoding = true }), "size in macroblocks 40x1026"},
		{"crop all width", with(func(f *spsFields) { f.crop = &[4]uint64{160, 160, 0, 0} }), "frame cropping"},
		{"crop huge", with(func(f *spsFields) { f.crop = &[4]uint64{0, 0, 1<<32 - 2, 1<<32 - 2} }), "frame cropping"},
		{"exp-Golomb too long", []byte{0x67, 66, 0, 30, 0, 0, 0, 0, 0, 0x80}, "longer than 32 bits"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseSPS(tc.nal)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want ErrMalformed with %q", err, tc.msg)
			}
		})
	}
}

func TestUnescapeRBSP(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte{1, 2, 3}, []byte{1, 2, 3}},
		{[]byte{0, 0, 3, 1}, []byte{0, 0, 1}},
		{[]byte{0, 0, 3, 0, 0, 3, 0}, []byte{0, 0, 0, 0, 0}},
		{[]byte{0, 3, 0, 0, 3}, []byte{0, 3, 0, 0}},
		{[]byte{0, 0, 0, 3, 3}, []byte{0, 0, 0, 3}},
		{[]byte{}, []byte{}},
	}
	for _, tc := range tests {
		if got := unescapeRBSP(tc.in); !bytes.Equal(got, tc.want) {
			t.Errorf("unescapeRBSP(% x) = % x, want % x", tc.in, got, tc.want)
		}
	}
}

func TestBitReaderExpGolomb(t *testing.T) {
	var w bitWriter
	values := []uint64{0, 1, 2, 3, 7, 8, 255, 1<<16 - 1, 1<<32 - 2}
	for _, v := range values {
		w.ue(v)
	}
	signed := []int64{0, 1, -1, 2, -2, 1000, -1000, 1<<31 - 1, -(1<<31 - 1)}
	for _, v := range signed {
		w.se(v)
	}
	r := bits.New(w.buf)
	for _, v := range values {
		if got := r.UE(); uint64(got) != v || r.Err() != nil {
			t.Errorf("ue = %d (%v), want %d", got, r.Err(), v)
		}
	}
	for _, v := range signed {
		if got := r.SE(); got != v || r.Err() != nil {
			t.Errorf("se = %d (%v), want %d", got, r.Err(), v)
		}
	}
	if r.Left() >= 8 {
		t.Errorf("%d bits left", r.Left())
	}
	r.Bits(8)
	if r.Err() == nil {
		t.Error("read past the end without an error")
	}
	if r.UE(); r.Err() == nil || r.Bits(1) != 0 {
		t.Error("reader did not stay failed")
	}
}
