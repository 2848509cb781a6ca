// Package hevc knows what the rest of rtmpgate needs of H.265/HEVC: the
// HEVCDecoderConfigurationRecord (hvcC, ISO/IEC 14496-15 8.3.3), the picture
// size and bit depth from its SPS (ITU-T H.265 7.3.2.2), the RFC 6381 codecs
// string (ISO/IEC 14496-15 Annex E) and IRAP detection from NAL unit types.
//
// It is pure: no I/O, no state. Every parser is bounded by its input and by
// the limits below, refuses what breaks them with an error, and never panics.
package hevc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/rtmpgate/rtmpgate/internal/bits"
)

// Limits on an hvcC. Real records hold 3 to 5 arrays (VPS, SPS, PPS, SEI) of one
// or two NAL units each; the bounds refuse crafted records early.
const (
	MaxConfigSize    = 64 << 10
	MaxArrays        = 8
	MaxNALUsPerArray = 16
)

// NAL unit types (H.265 Table 7-1) that the record and the muxers care about.
const (
	NALVPS       = 32
	NALSPS       = 33
	NALPPS       = 34
	NALAUD       = 35
	NALPrefixSEI = 39
	NALSuffixSEI = 40
)

// ErrMalformed is wrapped by every parse error of this package.
var ErrMalformed = errors.New("hevc: malformed")

func malformedf(format string, args ...any) error {
	return fmt.Errorf("hevc: "+format+": %w", append(args, ErrMalformed)...)
}

// Config is a parsed hvcC. Its slices alias the record given to ParseConfig.
type Config struct {
	ProfileSpace       uint8 // general_profile_space, 0 to 3
	Tier               uint8 // general_tier_flag: 0 Main, 1 High
	ProfileIDC         uint8
	CompatibilityFlags uint32  // general_profile_compatibility_flags, flag 0 in the top bit
	ConstraintFlags    [6]byte // general_constraint_indicator_flags
	LevelIDC           uint8   // 30 times the level number
	ChromaFormat       uint8
	BitDepthLuma       uint8
	BitDepthChroma     uint8
	LengthSize         int // NAL unit length prefix of samples: 1, 2 or 4

	VPS, SPS, PPS [][]byte // NAL units with their 2-byte headers
	SEI           [][]byte // prefix and suffix SEI NAL units of the record

	// From the first SPS.
	Width, Height int
	FirstSPS      SPS
}

// ParseConfig parses an HEVCDecoderConfigurationRecord and the first SPS in
// it. At least one VPS, SPS and PPS must be present.
func ParseConfig(rec []byte) (*Config, error) {
	if len(rec) < 23 {
		return nil, malformedf("hvcC of %d bytes: need at least 23", len(rec))
	}
	if len(rec) > MaxConfigSize {
		return nil, malformedf("hvcC of %d bytes > limit %d", len(rec), MaxConfigSize)
	}
	if rec[0] != 1 {
		return nil, malformedf("hvcC configurationVersion %d: want 1", rec[0])
	}
	c := &Config{
		ProfileSpace:       rec[1] >> 6,
		Tier:               rec[1] >> 5 & 1,
		ProfileIDC:         rec[1] & 0x1f,
		CompatibilityFlags: uint32(rec[2])<<24 | uint32(rec[3])<<16 | uint32(rec[4])<<8 | uint32(rec[5]),
		LevelIDC:           rec[12],
		ChromaFormat:       rec[16] & 3,
		BitDepthLuma:       rec[17]&7 + 8,
		BitDepthChroma:     rec[18]&7 + 8,
		LengthSize:         int(rec[21]&3) + 1,
	}
	copy(c.ConstraintFlags[:], rec[6:12])
	if c.LengthSize == 3 {
		return nil, malformedf("hvcC lengthSizeMinusOne 2: want 0, 1 or 3")
	}
	numArrays := int(rec[22])
	if numArrays > MaxArrays {
		return nil, malformedf("hvcC with %d arrays > limit %d", numArrays, MaxArrays)
	}
	p := 23
	for i := 0; i < numArrays; i++ {
		if len(rec)-p < 3 {
			return nil, malformedf("hvcC array %d header truncated", i)
		}
		typ := rec[p] & 0x3f
		n := int(rec[p+1])<<8 | int(rec[p+2])
		p += 3
		if n > MaxNALUsPerArray {
			return nil, malformedf("hvcC array %d with %d NAL units > limit %d", i, n, MaxNALUsPerArray)
		}
		for j := 0; j < n; j++ {
			if len(rec)-p < 2 {
				return nil, malformedf("hvcC array %d NAL unit %d: length truncated", i, j)
			}
			size := int(rec[p])<<8 | int(rec[p+1])
			p += 2
			if size < 2 || size > len(rec)-p {
				return nil, malformedf("hvcC array %d NAL unit %d: length %d, %d bytes left", i, j, size, len(rec)-p)
			}
			nal := rec[p : p+size : p+size]
			p += size
			if t := NALType(nal); t != typ {
				return nil, malformedf("hvcC array of type %d holds a NAL unit of type %d", typ, t)
			}
			switch typ {
			case NALVPS:
				c.VPS = append(c.VPS, nal)
			case NALSPS:
				c.SPS = append(c.SPS, nal)
			case NALPPS:
				c.PPS = append(c.PPS, nal)
			case NALPrefixSEI, NALSuffixSEI:
				c.SEI = append(c.SEI, nal)
			}
		}
	}
	if p != len(rec) {
		return nil, malformedf("hvcC has %d bytes after its arrays", len(rec)-p)
	}
	if len(c.VPS) == 0 || len(c.SPS) == 0 || len(c.PPS) == 0 {
		return nil, malformedf("hvcC lacks a parameter set: %d VPS, %d SPS, %d PPS", len(c.VPS), len(c.SPS), len(c.PPS))
	}
	s, err := ParseSPS(c.SPS[0])
	if err != nil {
		return nil, err
	}
	c.Width, c.Height, c.FirstSPS = s.Width, s.Height, s
	return c, nil
}

// CodecString is the RFC 6381 codecs value for sample entry type entry ("hvc1"
// or "hev1"), per ISO/IEC 14496-15 Annex E: profile space letter and profile,
// the compatibility flags bit-reversed in hex, tier letter and level, then the
// constraint bytes in hex with trailing zero bytes left out, e.g.
// "hvc1.1.6.L93.B0".
func (c *Config) CodecString(entry string) string {
	var b strings.Builder
	b.WriteString(entry)
	b.WriteByte('.')
	if c.ProfileSpace > 0 {
		b.WriteByte('A' + c.ProfileSpace - 1)
	}
	b.WriteString(strconv.Itoa(int(c.ProfileIDC)))
	var rev uint32
	for i := 0; i < 32; i++ {
		rev |= (c.CompatibilityFlags >> i & 1) << (31 - i)
	}
	b.WriteByte('.')
	b.WriteString(strings.ToUpper(strconv.FormatUint(uint64(rev), 16)))
	b.WriteByte('.')
	b.WriteByte("LH"[c.Tier])
	b.WriteString(strconv.Itoa(int(c.LevelIDC)))
	last := -1
	for i, f := range c.ConstraintFlags {
		if f != 0 {
			last = i
		}
	}
	for _, f := range c.ConstraintFlags[:last+1] {
		b.WriteByte('.')
		b.WriteString(strings.ToUpper(strconv.FormatUint(uint64(f), 16)))
	}
	return b.String()
}

// NALType is the nal_unit_type of a NAL unit (with its header), or 0xff for
// one too short to have a header.
func NALType(nal []byte) uint8 {
	if len(nal) < 2 {
		return 0xff
	}
	return nal[0] >> 1 & 0x3f
}

// IsIRAP reports whether a NAL unit type is an IRAP picture (BLA, IDR, CRA, or
// the reserved IRAP types 22 and 23): a point a decoder may start at.
func IsIRAP(t uint8) bool { return t >= 16 && t <= 23 }

// HasIRAP reports whether a sample (NAL units each prefixed with a big-endian
// length of lengthSize bytes, as in hvcC-described samples) holds an IRAP
// picture. A malformed sample is an error. It allocates nothing.
func HasIRAP(sample []byte, lengthSize int) (bool, error) {
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return false, errLengthSize
	}
	irap := false
	for p := 0; p < len(sample); {
		if len(sample)-p < lengthSize {
			return false, errSampleTrunc
		}
		n := 0
		for _, b := range sample[p : p+lengthSize] {
			n = n<<8 | int(b)
		}
		p += lengthSize
		if n < 2 || n > len(sample)-p {
			return false, errSampleTrunc
		}
		irap = irap || IsIRAP(NALType(sample[p:p+n]))
		p += n
	}
	return irap, nil
}

var (
	errLengthSize  = malformedf("NAL unit length size not 1, 2 or 4")
	errSampleTrunc = malformedf("sample: NAL unit length past the end or under 2")
)

// SPS is what the muxers need of a sequence parameter set.
type SPS struct {
	ChromaFormat                 uint8
	BitDepthLuma, BitDepthChroma uint8
	Width, Height                int // after the conformance window

	// Colour is the VUI's colour description (H.265 E.2.1), when the SPS
	// carries one: the code points of ISO/IEC 23091-2 that the colr box needs.
	Colour                      bool
	Primaries, Transfer, Matrix uint8
	FullRange                   bool
}

// maxSPS bounds the RBSP copy ParseSPS makes.
const maxSPS = 4096

// ParseSPS parses an SPS NAL unit (with its 2-byte header) up to the bit
// depths.
func ParseSPS(nal []byte) (SPS, error) {
	if NALType(nal) != NALSPS {
		return SPS{}, malformedf("SPS: NAL unit type %d, want %d", NALType(nal), NALSPS)
	}
	if len(nal) > maxSPS {
		return SPS{}, malformedf("SPS of %d bytes > limit %d", len(nal), maxSPS)
	}
	r := bits.New(unescape(nal[2:]))
	r.Skip(4) // sps_video_parameter_set_id
	maxSub := int(r.Bits(3))
	r.Skip(1) // sps_temporal_id_nesting_flag
	skipProfileTierLevel(&r, maxSub)
	r.UE() // sps_seq_parameter_set_id
	var s SPS
	s.ChromaFormat = uint8(min(r.UE(), 4))
	if s.ChromaFormat > 3 {
		return SPS{}, malformedf("SPS chroma_format_idc > 3")
	}
	if s.ChromaFormat == 3 {
		r.Skip(1) // separate_colour_plane_flag
	}
	w, h := r.UE(), r.UE()
	var left, right, top, bottom uint32
	if r.Flag() {
		left, right, top, bottom = r.UE(), r.UE(), r.UE(), r.UE()
	}
	dl, dc := r.UE(), r.UE()
	if err := r.Err(); err != nil {
		return SPS{}, malformedf("SPS truncated: %v", err)
	}
	if dl > 8 || dc > 8 {
		return SPS{}, malformedf("SPS bit depth over 16")
	}
	s.BitDepthLuma, s.BitDepthChroma = uint8(dl+8), uint8(dc+8)
	subW, subH := uint64(1), uint64(1)
	if s.ChromaFormat == 1 || s.ChromaFormat == 2 {
		subW = 2
	}
	if s.ChromaFormat == 1 {
		subH = 2
	}
	// pic_width/height_in_luma_samples are at most 16888 at level 6.2; a
	// little room above stays far from overflow.
	const maxDim = 1 << 16
	cw := subW * (uint64(left) + uint64(right))
	ch := subH * (uint64(top) + uint64(bottom))
	if w == 0 || h == 0 || w > maxDim || h > maxDim || cw >= uint64(w) || ch >= uint64(h) {
		return SPS{}, malformedf("SPS picture %dx%d with conformance window %d+%d, %d+%d", w, h, left, right, top, bottom)
	}
	s.Width, s.Height = int(uint64(w)-cw), int(uint64(h)-ch)
	// The colour description is optional and far into the SPS: an SPS that
	// ends early or says something out of range there keeps what came before.
	if c, ok := readVUIColour(&r, maxSub); ok {
		s.Colour, s.Primaries, s.Transfer, s.Matrix, s.FullRange = true, c.Primaries, c.Transfer, c.Matrix, c.FullRange
	}
	return s, nil
}

// vuiColour is the colour part of an SPS's video_signal_type.
type vuiColour struct {
	Primaries, Transfer, Matrix uint8
	FullRange                   bool
}

// SPS bounds from H.265 7.4.3.2.1, which readVUIColour holds the stream to so
// that a corrupt SPS costs bounded work.
const (
	maxShortTermRefPicSets = 64
	maxDeltaPOCs           = 16 // sps_max_dec_pic_buffering is at most 16
	maxLongTermRefPics     = 32
)

// readVUIColour reads from after bit_depth_chroma_minus8 to the VUI's
// colour_description (H.265 7.3.2.2.1 and E.2.1), ok when one is present.
func readVUIColour(r *bits.Reader, maxSub int) (vuiColour, bool) {
	pocBits := int(r.UE()) + 4 // log2_max_pic_order_cnt_lsb_minus4
	if pocBits > 16 {
		return vuiColour{}, false
	}
	first := maxSub
	if r.Flag() { // sps_sub_layer_ordering_info_present_flag
		first = 0
	}
	for i := first; i <= maxSub; i++ {
		r.UE() // sps_max_dec_pic_buffering_minus1
		r.UE() // sps_max_num_reorder_pics
		r.UE() // sps_max_latency_increase_plus1
	}
	for range 6 { // log2_min_luma_coding_block_size_minus3 .. max_transform_hierarchy_depth_intra
		r.UE()
	}
	if scalingLists := r.Flag(); scalingLists && r.Flag() { // sps_scaling_list_data_present_flag
		skipScalingListData(r)
	}
	r.Skip(2)     // amp_enabled_flag, sample_adaptive_offset_enabled_flag
	if r.Flag() { // pcm_enabled_flag
		r.Skip(8) // pcm sample bit depths
		r.UE()    // log2_min_pcm_luma_coding_block_size_minus3
		r.UE()    // log2_diff_max_min_pcm_luma_coding_block_size
		r.Skip(1) // pcm_loop_filter_disabled_flag
	}
	n := int(r.UE()) // num_short_term_ref_pic_sets
	if n > maxShortTermRefPicSets || r.Err() != nil {
		return vuiColour{}, false
	}
	var deltaPOCs [maxShortTermRefPicSets]int
	for i := 0; i < n; i++ {
		d, ok := skipShortTermRefPicSet(r, i, deltaPOCs[:i])
		if !ok {
			return vuiColour{}, false
		}
		deltaPOCs[i] = d
	}
	if r.Flag() { // long_term_ref_pics_present_flag
		lt := int(r.UE())
		if lt > maxLongTermRefPics {
			return vuiColour{}, false
		}
		r.Skip(lt * (pocBits + 1)) // lt_ref_pic_poc_lsb_sps, used_by_curr_pic_lt_sps_flag
	}
	r.Skip(2)      // sps_temporal_mvp_enabled_flag, strong_intra_smoothing_enabled_flag
	if !r.Flag() { // vui_parameters_present_flag
		return vuiColour{}, false
	}
	if r.Flag() { // aspect_ratio_info_present_flag
		if r.Bits(8) == 255 { // aspect_ratio_idc EXTENDED_SAR
			r.Skip(32)
		}
	}
	if r.Flag() { // overscan_info_present_flag
		r.Skip(1)
	}
	if !r.Flag() { // video_signal_type_present_flag
		return vuiColour{}, false
	}
	r.Skip(3) // video_format
	var c vuiColour
	c.FullRange = r.Flag()
	if !r.Flag() { // colour_description_present_flag
		return vuiColour{}, false
	}
	c.Primaries, c.Transfer, c.Matrix = uint8(r.Bits(8)), uint8(r.Bits(8)), uint8(r.Bits(8))
	return c, r.Err() == nil
}

// skipScalingListData skips scaling_list_data() (H.265 7.3.4).
func skipScalingListData(r *bits.Reader) {
	for sizeID := 0; sizeID < 4; sizeID++ {
		step := 1
		if sizeID == 3 {
			step = 3
		}
		for m := 0; m < 6; m += step {
			if !r.Flag() { // scaling_list_pred_mode_flag
				r.UE() // scaling_list_pred_matrix_id_delta
				continue
			}
			coefs := min(64, 1<<(4+sizeID<<1))
			if sizeID > 1 {
				r.SE() // scaling_list_dc_coef_minus8
			}
			for range coefs {
				r.SE() // scaling_list_delta_coef
			}
			if r.Err() != nil {
				return
			}
		}
	}
}

// skipShortTermRefPicSet skips st_ref_pic_set(idx) of an SPS (H.265 7.3.7),
// given the delta POC counts of the sets before it, and returns its own.
func skipShortTermRefPicSet(r *bits.Reader, idx int, before []int) (int, bool) {
	if idx > 0 && r.Flag() { // inter_ref_pic_set_prediction_flag
		// In an SPS delta_idx_minus1 is absent: the reference is the set before.
		r.Skip(1) // delta_rps_sign
		r.UE()    // abs_delta_rps_minus1
		n := 0
		for j := 0; j <= before[idx-1]; j++ {
			used := r.Flag()
			if used || r.Flag() { // use_delta_flag, inferred 1 when used
				n++
			}
		}
		return n, n <= maxDeltaPOCs && r.Err() == nil
	}
	neg, pos := int(r.UE()), int(r.UE())
	if neg > maxDeltaPOCs || pos > maxDeltaPOCs || neg+pos > maxDeltaPOCs {
		return 0, false
	}
	for range neg + pos {
		r.UE()    // delta_poc_s0/s1_minus1
		r.Skip(1) // used_by_curr_pic_s0/s1_flag
	}
	return neg + pos, r.Err() == nil
}

// skipProfileTierLevel skips profile_tier_level(1, maxSubLayersMinus1)
// (H.265 7.3.3).
func skipProfileTierLevel(r *bits.Reader, maxSub int) {
	r.Skip(88) // general profile space .. general_inbld/reserved flag
	r.Skip(8)  // general_level_idc
	var profile, level [8]bool
	for i := 0; i < maxSub; i++ {
		profile[i], level[i] = r.Flag(), r.Flag()
	}
	if maxSub > 0 {
		r.Skip(2 * (8 - maxSub))
	}
	for i := 0; i < maxSub; i++ {
		if profile[i] {
			r.Skip(88)
		}
		if level[i] {
			r.Skip(8)
		}
	}
}

// unescape removes emulation prevention bytes (00 00 03 -> 00 00).
func unescape(b []byte) []byte {
	out := make([]byte, 0, len(b))
	zeros := 0
	for _, c := range b {
		if zeros >= 2 && c == 3 {
			zeros = 0
			continue
		}
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
		out = append(out, c)
	}
	return out
}
