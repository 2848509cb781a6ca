// Package av1 knows what the rest of rtmpgate needs of AV1: the
// AV1CodecConfigurationRecord (av1C, AV1 Codec ISO Media File Format Binding
// 2.3), OBU framing with leb128 sizes (AV1 bitstream 4.10.5, 5.3), the
// sequence header (5.5) for profile, level, tier, bit depth and picture size,
// key frame detection for a temporal unit, and the codecs string of the
// binding's annex (av01.P.LLT.DD).
//
// It is pure: no I/O, no state. Every parser is bounded by its input, refuses
// what breaks it with an error wrapping ErrMalformed, and never panics.
package av1

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/internal/bits"
)

// ErrMalformed is wrapped by every parse error of this package.
var ErrMalformed = errors.New("av1: malformed")

func malformedf(format string, args ...any) error {
	return fmt.Errorf("av1: "+format+": %w", append(args, ErrMalformed)...)
}

// OBU types (AV1 6.2.2).
const (
	OBUSequenceHeader       = 1
	OBUTemporalDelimiter    = 2
	OBUFrameHeader          = 3
	OBUTileGroup            = 4
	OBUMetadata             = 5
	OBUFrame                = 6
	OBURedundantFrameHeader = 7
	OBUTileList             = 8
	OBUPadding              = 15
)

// MaxConfigSize bounds an av1C: four bytes and a sequence header OBU of a few
// tens of bytes, perhaps metadata OBUs.
const MaxConfigSize = 4096

// Config is a parsed av1C. ConfigOBUs aliases the record.
type Config struct {
	SeqProfile           uint8
	SeqLevelIdx0         uint8
	SeqTier0             uint8
	HighBitdepth         bool
	TwelveBit            bool
	Monochrome           bool
	ChromaSubsamplingX   bool
	ChromaSubsamplingY   bool
	ChromaSamplePosition uint8
	ConfigOBUs           []byte

	// Sequence is the sequence header OBU in ConfigOBUs, parsed; ParseConfig
	// requires one and requires it to agree with the fields above.
	Sequence SequenceHeader
}

// ParseConfig parses an AV1CodecConfigurationRecord and the sequence header
// OBU among its configOBUs.
func ParseConfig(rec []byte) (*Config, error) {
	if len(rec) < 4 {
		return nil, malformedf("av1C of %d bytes: need at least 4", len(rec))
	}
	if len(rec) > MaxConfigSize {
		return nil, malformedf("av1C of %d bytes > limit %d", len(rec), MaxConfigSize)
	}
	if rec[0] != 0x81 {
		return nil, malformedf("av1C marker/version byte %#x: want 0x81", rec[0])
	}
	c := &Config{
		SeqProfile:           rec[1] >> 5,
		SeqLevelIdx0:         rec[1] & 0x1f,
		SeqTier0:             rec[2] >> 7,
		HighBitdepth:         rec[2]>>6&1 == 1,
		TwelveBit:            rec[2]>>5&1 == 1,
		Monochrome:           rec[2]>>4&1 == 1,
		ChromaSubsamplingX:   rec[2]>>3&1 == 1,
		ChromaSubsamplingY:   rec[2]>>2&1 == 1,
		ChromaSamplePosition: rec[2] & 3,
		ConfigOBUs:           rec[4:],
	}
	found := false
	for obus := c.ConfigOBUs; len(obus) > 0; {
		o, rest, err := ReadOBU(obus)
		if err != nil {
			return nil, err
		}
		obus = rest
		if o.Type == OBUSequenceHeader && !found {
			if c.Sequence, err = ParseSequenceHeader(o.Payload); err != nil {
				return nil, err
			}
			found = true
		}
	}
	if !found {
		return nil, malformedf("av1C has no sequence header OBU")
	}
	s := &c.Sequence
	if s.Profile != c.SeqProfile || s.LevelIdx0 != c.SeqLevelIdx0 || s.Tier0 != c.SeqTier0 || s.BitDepth != c.BitDepth() || s.Monochrome != c.Monochrome {
		return nil, malformedf("av1C fields disagree with its sequence header")
	}
	return c, nil
}

// BitDepth is 8, 10 or 12, from the record's flags.
func (c *Config) BitDepth() uint8 {
	switch {
	case c.HighBitdepth && c.TwelveBit:
		return 12
	case c.HighBitdepth:
		return 10
	}
	return 8
}

// CodecString is the codecs parameter with its mandatory fields,
// av01.P.LLT.DD: profile, two-digit level index, tier M or H, two-digit bit
// depth, e.g. "av01.0.04M.08".
func (c *Config) CodecString() string {
	return fmt.Sprintf("av01.%d.%02d%c.%02d", c.SeqProfile, c.SeqLevelIdx0, "MH"[c.SeqTier0], c.BitDepth())
}

// OBU is one open bitstream unit. Payload aliases the input.
type OBU struct {
	Type                  uint8
	TemporalID, SpatialID uint8 // 0 without an extension header
	Payload               []byte
}

// maxLEB128 is the longest leb128 the bitstream allows (AV1 4.10.5).
const maxLEB128 = 8

// ReadLEB128 reads an unsigned leb128 of at most 8 bytes whose value fits 32
// bits, returning it and the bytes it used.
func ReadLEB128(b []byte) (uint32, int, error) {
	var v uint64
	for i := 0; i < maxLEB128; i++ {
		if i >= len(b) {
			return 0, 0, errLEB128Trunc
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			if v > 1<<32-1 {
				return 0, 0, errLEB128Big
			}
			return uint32(v), i + 1, nil
		}
	}
	return 0, 0, errLEB128Long
}

var (
	errLEB128Trunc = malformedf("leb128 truncated")
	errLEB128Long  = malformedf("leb128 longer than 8 bytes")
	errLEB128Big   = malformedf("leb128 value over 2^32-1")
	errOBUTrunc    = malformedf("OBU header truncated")
	errOBUSize     = malformedf("OBU size past the end of the data")
	errOBUForbid   = malformedf("OBU forbidden bit set")
)

// ReadOBU reads the OBU at the start of b (low overhead bitstream format: the
// last OBU may omit its size and run to the end) and returns the rest.
func ReadOBU(b []byte) (OBU, []byte, error) {
	if len(b) < 1 {
		return OBU{}, nil, errOBUTrunc
	}
	h := b[0]
	if h&0x80 != 0 {
		return OBU{}, nil, errOBUForbid
	}
	o := OBU{Type: h >> 3 & 0x0f}
	p := 1
	if h&0x04 != 0 {
		if len(b) < 2 {
			return OBU{}, nil, errOBUTrunc
		}
		o.TemporalID, o.SpatialID = b[1]>>5, b[1]>>3&3
		p = 2
	}
	if h&0x02 == 0 {
		o.Payload = b[p:]
		return o, nil, nil
	}
	size, n, err := ReadLEB128(b[p:])
	if err != nil {
		return OBU{}, nil, err
	}
	p += n
	if uint64(size) > uint64(len(b)-p) {
		return OBU{}, nil, errOBUSize
	}
	end := p + int(size)
	o.Payload = b[p:end:end]
	return o, b[end:], nil
}

// SequenceHeader is what the muxers need of a sequence header OBU.
type SequenceHeader struct {
	Profile                    uint8
	StillPicture               bool
	ReducedStillPictureHeader  bool
	LevelIdx0, Tier0           uint8 // of operating point 0
	Width, Height              int   // max_frame_width/height
	BitDepth                   uint8
	Monochrome                 bool
	SubsamplingX, SubsamplingY bool
	ColorDescription           bool
	ColorPrimaries             uint8
	TransferCharacteristics    uint8
	MatrixCoefficients         uint8
	FullRange                  bool
}

// ParseSequenceHeader parses a sequence_header_obu payload (AV1 5.5) through
// color_config.
func ParseSequenceHeader(p []byte) (SequenceHeader, error) {
	r := bits.New(p)
	var s SequenceHeader
	s.Profile = uint8(r.Bits(3))
	if s.Profile > 2 {
		return SequenceHeader{}, malformedf("sequence header seq_profile %d: reserved", s.Profile)
	}
	s.StillPicture = r.Flag()
	s.ReducedStillPictureHeader = r.Flag()
	if s.ReducedStillPictureHeader {
		s.LevelIdx0 = uint8(r.Bits(5))
	} else {
		decoderModel := false
		bufferDelayLen := 0
		if r.Flag() { // timing_info_present_flag
			r.Skip(64)    // num_units_in_display_tick, time_scale
			if r.Flag() { // equal_picture_interval
				uvlc(&r)
			}
			decoderModel = r.Flag()
			if decoderModel {
				bufferDelayLen = int(r.Bits(5)) + 1
				r.Skip(32 + 5 + 5)
			}
		}
		initialDisplayDelay := r.Flag()
		ops := int(r.Bits(5)) + 1
		for i := 0; i < ops; i++ {
			r.Skip(12) // operating_point_idc
			level := uint8(r.Bits(5))
			tier := uint8(0)
			if level > 7 {
				tier = uint8(r.Bits(1))
			}
			if i == 0 {
				s.LevelIdx0, s.Tier0 = level, tier
			}
			if decoderModel && r.Flag() {
				r.Skip(2*bufferDelayLen + 1)
			}
			if initialDisplayDelay && r.Flag() {
				r.Skip(4)
			}
		}
	}
	wBits, hBits := int(r.Bits(4))+1, int(r.Bits(4))+1
	s.Width, s.Height = int(r.Bits(wBits))+1, int(r.Bits(hBits))+1
	if !s.ReducedStillPictureHeader && r.Flag() { // frame_id_numbers_present_flag
		r.Skip(4 + 3)
	}
	r.Skip(3) // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
	if !s.ReducedStillPictureHeader {
		r.Skip(4) // interintra, masked compound, warped motion, dual filter
		orderHint := r.Flag()
		if orderHint {
			r.Skip(2) // jnt_comp, ref_frame_mvs
		}
		forceScreen := uint32(2)
		if !r.Flag() { // seq_choose_screen_content_tools
			forceScreen = r.Bits(1)
		}
		if forceScreen > 0 && !r.Flag() { // seq_choose_integer_mv
			r.Skip(1)
		}
		if orderHint {
			r.Skip(3)
		}
	}
	r.Skip(3) // enable_superres, enable_cdef, enable_restoration
	// color_config (5.5.2)
	s.BitDepth = 8
	if r.Flag() { // high_bitdepth
		s.BitDepth = 10
		if s.Profile == 2 && r.Flag() {
			s.BitDepth = 12
		}
	}
	if s.Profile != 1 {
		s.Monochrome = r.Flag()
	}
	if s.ColorDescription = r.Flag(); s.ColorDescription {
		s.ColorPrimaries, s.TransferCharacteristics, s.MatrixCoefficients = uint8(r.Bits(8)), uint8(r.Bits(8)), uint8(r.Bits(8))
	} else {
		s.ColorPrimaries, s.TransferCharacteristics, s.MatrixCoefficients = 2, 2, 2
	}
	switch {
	case s.Monochrome:
		s.FullRange = r.Flag()
		s.SubsamplingX, s.SubsamplingY = true, true
	case s.ColorPrimaries == 1 && s.TransferCharacteristics == 13 && s.MatrixCoefficients == 0:
		s.FullRange = true // sRGB: 4:4:4
	default:
		s.FullRange = r.Flag()
		switch s.Profile {
		case 0:
			s.SubsamplingX, s.SubsamplingY = true, true
		case 2:
			if s.BitDepth == 12 {
				if s.SubsamplingX = r.Flag(); s.SubsamplingX {
					s.SubsamplingY = r.Flag()
				}
			} else {
				s.SubsamplingX = true
			}
		}
	}
	if err := r.Err(); err != nil {
		return SequenceHeader{}, malformedf("sequence header truncated: %v", err)
	}
	return s, nil
}

// uvlc skips a uvlc() code (AV1 4.10.3); 32 or more leading zeros stand for
// the maximum value and end there.
func uvlc(r *bits.Reader) {
	zeros := 0
	for r.Err() == nil && !r.Flag() {
		zeros++
		if zeros >= 32 {
			return
		}
	}
	r.Skip(zeros)
}

// IsKeyFrame reports whether a temporal unit (OBUs in the low overhead
// format, as Enhanced RTMP and ISOBMFF samples carry them) is a sync sample
// in the sense of the ISOBMFF binding: it holds a sequence header OBU, and its
// first frame header shows a key frame (frame_type KEY_FRAME with
// show_frame). A frame header with show_existing_frame set shows a frame
// decoded earlier: even when that frame is a key frame, the unit depends on
// earlier units and is not a sync sample. It allocates nothing.
func IsKeyFrame(tu []byte) (bool, error) {
	seq, reduced := false, false
	for len(tu) > 0 {
		o, rest, err := ReadOBU(tu)
		if err != nil {
			return false, err
		}
		tu = rest
		switch o.Type {
		case OBUSequenceHeader:
			if len(o.Payload) < 1 {
				return false, malformedf("empty sequence header OBU")
			}
			seq, reduced = true, o.Payload[0]>>3&1 == 1
		case OBUFrameHeader, OBUFrame:
			if !seq {
				return false, nil
			}
			if reduced {
				return true, nil // a reduced still picture header is a shown key frame
			}
			if len(o.Payload) < 1 {
				return false, malformedf("empty frame header OBU")
			}
			b := o.Payload[0]
			showExisting, frameType, show := b>>7 == 1, b>>5&3, b>>4&1 == 1
			return !showExisting && frameType == 0 && show, nil
		}
	}
	return false, nil
}
