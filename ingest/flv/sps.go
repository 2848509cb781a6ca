package flv

import (
	"fmt"

	"github.com/rtmpgate/rtmpgate/internal/bits"
)

// maxSPS bounds the SPS we unescape; real ones are well under 1 KiB.
const maxSPS = 4096

// maxMBs bounds the picture size in macroblocks per dimension, well above
// level 6.2's largest frame (8192x4320 is 512x270 macroblocks), so that width and
// height stay small integers whatever the SPS says.
const maxMBs = 1024

// sps is what we take from a sequence parameter set (H.264 7.3.2.1.1).
type sps struct {
	profile, constraints, level byte
	id                          uint32
	chromaFormat                uint32 // chroma_format_idc; 1 (4:2:0) unless a high profile says otherwise
	separateColourPlane         bool
	frameMBsOnly                bool
	width, height               int // after cropping
}

// parseSPS parses an SPS NAL unit (with its one-byte header) as far as the
// cropping window, which gives the displayed width and height. The VUI is not
// read.
func parseSPS(nal []byte) (sps, error) {
	var s sps
	if len(nal) < 4 {
		return s, malformedf("SPS of %d bytes: need at least 4", len(nal))
	}
	if len(nal) > maxSPS {
		return s, malformedf("SPS of %d bytes > limit %d", len(nal), maxSPS)
	}
	if t := nal[0] & 0x1f; t != 7 {
		return s, malformedf("SPS NAL unit type %d, want 7", t)
	}
	rbsp := unescapeRBSP(nal[1:])
	if len(rbsp) < 3 {
		return s, malformedf("SPS RBSP of %d bytes: need at least 3", len(rbsp))
	}
	s.profile, s.constraints, s.level = rbsp[0], rbsp[1], rbsp[2]
	r := bits.New(rbsp[3:])
	fail := func(field string) (sps, error) {
		return sps{}, malformedf("SPS %s: %v", field, r.Err())
	}
	bad := func(field string, v any) (sps, error) {
		return sps{}, malformedf("SPS %s %v: out of range", field, v)
	}

	if s.id = r.UE(); r.Err() != nil {
		return fail("seq_parameter_set_id")
	} else if s.id > 31 {
		return bad("seq_parameter_set_id", s.id)
	}
	s.chromaFormat = 1
	if highProfile(s.profile) {
		if s.chromaFormat = r.UE(); s.chromaFormat > 3 {
			return bad("chroma_format_idc", s.chromaFormat)
		}
		if s.chromaFormat == 3 {
			s.separateColourPlane = r.Flag()
		}
		if v := r.UE(); v > 6 {
			return bad("bit_depth_luma_minus8", v)
		}
		if v := r.UE(); v > 6 {
			return bad("bit_depth_chroma_minus8", v)
		}
		r.Flag() // qpprime_y_zero_transform_bypass_flag
		scalingMatrix := r.Flag()
		if scalingMatrix {
			lists := 8
			if s.chromaFormat == 3 {
				lists = 12
			}
			for i := 0; i < lists; i++ {
				if !r.Flag() {
					continue
				}
				size := 16
				if i >= 6 {
					size = 64
				}
				if err := skipScalingList(&r, size); err != nil {
					return sps{}, malformedf("SPS scaling list %d: %v", i, err)
				}
			}
		}
		if r.Err() != nil {
			return fail("high profile fields")
		}
	}
	if v := r.UE(); v > 12 {
		return bad("log2_max_frame_num_minus4", v)
	}
	switch pocType := r.UE(); pocType {
	case 0:
		if v := r.UE(); v > 12 {
			return bad("log2_max_pic_order_cnt_lsb_minus4", v)
		}
	case 1:
		r.Flag() // delta_pic_order_always_zero_flag
		r.SE()   // offset_for_non_ref_pic
		r.SE()   // offset_for_top_to_bottom_field
		n := r.UE()
		if n > 255 {
			return bad("num_ref_frames_in_pic_order_cnt_cycle", n)
		}
		for i := uint32(0); i < n && r.Err() == nil; i++ {
			r.SE() // offset_for_ref_frame
		}
	case 2:
	default:
		return bad("pic_order_cnt_type", pocType)
	}
	r.UE()   // max_num_ref_frames
	r.Flag() // gaps_in_frame_num_value_allowed_flag
	widthMBs := uint64(r.UE()) + 1
	heightMapUnits := uint64(r.UE()) + 1
	s.frameMBsOnly = r.Flag()
	if !s.frameMBsOnly {
		r.Flag() // mb_adaptive_frame_field_flag
	}
	r.Flag() // direct_8x8_inference_flag
	var cropL, cropR, cropT, cropB uint64
	if r.Flag() { // frame_cropping_flag
		cropL, cropR, cropT, cropB = uint64(r.UE()), uint64(r.UE()), uint64(r.UE()), uint64(r.UE())
	}
	if r.Err() != nil {
		return fail("picture size")
	}
	fieldFactor := uint64(2)
	if s.frameMBsOnly {
		fieldFactor = 1
	}
	heightMBs := heightMapUnits * fieldFactor
	if widthMBs > maxMBs || heightMBs > maxMBs {
		return bad("size in macroblocks", fmt.Sprintf("%dx%d", widthMBs, heightMBs))
	}
	// Crop units by ChromaArrayType (H.264 7.4.2.1.1, table 6-1).
	cropX, cropY := uint64(1), fieldFactor
	if !s.separateColourPlane && s.chromaFormat != 0 {
		subW, subH := uint64(2), uint64(2) // 4:2:0
		switch s.chromaFormat {
		case 2:
			subH = 1
		case 3:
			subW, subH = 1, 1
		}
		cropX, cropY = subW, subH*fieldFactor
	}
	// Each offset is at most 2^32, so the sums cannot overflow uint64.
	w, h := widthMBs*16, heightMBs*16
	cw, ch := cropX*(cropL+cropR), cropY*(cropT+cropB)
	if cw >= w || ch >= h {
		return bad("frame cropping", fmt.Sprintf("%d,%d,%d,%d of %dx%d", cropL, cropR, cropT, cropB, w, h))
	}
	s.width, s.height = int(w-cw), int(h-ch)
	return s, nil
}

// highProfile reports whether profile_idc carries chroma_format_idc and the
// fields after it (H.264 7.3.2.1.1).
func highProfile(p byte) bool {
	switch p {
	case 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
		return true
	}
	return false
}

// skipScalingList reads a scaling_list() (H.264 7.3.2.1.1.1) to move past it.
func skipScalingList(r *bits.Reader, size int) error {
	last, next := int64(8), int64(8)
	for j := 0; j < size; j++ {
		if next != 0 {
			delta := r.SE()
			if r.Err() != nil {
				return r.Err()
			}
			if delta < -128 || delta > 127 {
				return fmt.Errorf("delta_scale %d out of range", delta)
			}
			next = (last + delta + 256) % 256
		}
		if next != 0 {
			last = next
		}
	}
	return nil
}

// unescapeRBSP removes emulation prevention bytes: a 0x03 after two zero bytes
// (H.264 7.4.1). It copies only when there is something to remove.
func unescapeRBSP(b []byte) []byte {
	zeros, i := 0, 0
	for ; i < len(b); i++ {
		if zeros >= 2 && b[i] == 3 {
			break
		}
		if b[i] == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	if i == len(b) {
		return b
	}
	out := make([]byte, 0, len(b))
	zeros = 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
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
