// Package vp9 knows what the rest of rtmpgate needs of VP9: the
// VPCodecConfigurationRecord (vpcC version 1, VP Codec ISO Media File Format
// Binding), key frames and picture size from a frame's uncompressed header
// (VP9 bitstream 6.2), and the codecs string vp09.PP.LL.DD.
//
// It is pure: no I/O, no state. Every parser is bounded by its input, refuses
// what breaks it with an error wrapping ErrMalformed, and never panics.
package vp9

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/internal/bits"
)

// ErrMalformed is wrapped by every parse error of this package.
var ErrMalformed = errors.New("vp9: malformed")

func malformedf(format string, args ...any) error {
	return fmt.Errorf("vp9: "+format+": %w", append(args, ErrMalformed)...)
}

// Config is a parsed vpcC.
type Config struct {
	Profile                 uint8
	Level                   uint8 // 10 times the level number: 21 is level 2.1
	BitDepth                uint8 // 8, 10 or 12
	ChromaSubsampling       uint8 // 0 4:2:0 vertical, 1 4:2:0 colocated, 2 4:2:2, 3 4:4:4
	FullRange               bool
	ColourPrimaries         uint8
	TransferCharacteristics uint8
	MatrixCoefficients      uint8
}

// ParseConfig parses a vpcC as Enhanced RTMP carries it: the box payload,
// version 1 and 24 bits of flags, then the record. A record without the
// version and flags (8 bytes plus its initialization data) is accepted too.
// The codec initialization data must be empty for VP9.
func ParseConfig(rec []byte) (*Config, error) {
	if len(rec) >= 12 && rec[0] == 1 && rec[1]|rec[2]|rec[3] == 0 {
		rec = rec[4:]
	} else if len(rec) >= 4 && rec[0] != 1 && rec[1]|rec[2]|rec[3] == 0 {
		return nil, malformedf("vpcC version %d: want 1", rec[0])
	}
	if len(rec) < 8 {
		return nil, malformedf("vpcC of %d bytes: need 8 after version and flags", len(rec))
	}
	c := &Config{
		Profile:                 rec[0],
		Level:                   rec[1],
		BitDepth:                rec[2] >> 4,
		ChromaSubsampling:       rec[2] >> 1 & 7,
		FullRange:               rec[2]&1 == 1,
		ColourPrimaries:         rec[3],
		TransferCharacteristics: rec[4],
		MatrixCoefficients:      rec[5],
	}
	if n := int(rec[6])<<8 | int(rec[7]); n != 0 || len(rec) != 8 {
		return nil, malformedf("vpcC codecInitializationDataSize %d with %d bytes after: VP9 has none", n, len(rec)-8)
	}
	if c.Profile > 3 {
		return nil, malformedf("vpcC profile %d", c.Profile)
	}
	if c.BitDepth != 8 && c.BitDepth != 10 && c.BitDepth != 12 {
		return nil, malformedf("vpcC bit depth %d", c.BitDepth)
	}
	if c.ChromaSubsampling > 3 {
		return nil, malformedf("vpcC chroma subsampling %d: reserved", c.ChromaSubsampling)
	}
	return c, nil
}

// CodecString is the codecs parameter with its mandatory fields,
// vp09.PP.LL.DD, e.g. "vp09.00.21.08".
func (c *Config) CodecString() string {
	return fmt.Sprintf("vp09.%02d.%02d.%02d", c.Profile, c.Level, c.BitDepth)
}

// Frame is what a frame's uncompressed header says that the muxers need.
type Frame struct {
	Profile uint8
	// Key is a key frame: frame_type KEY_FRAME, not a shown existing frame.
	Key  bool
	Show bool
	// Width and Height are set for key frames.
	Width, Height int
}

// ParseFrame reads the start of a frame's uncompressed header. For a
// superframe it reads the first frame, which is where the key frame is. It
// allocates nothing.
func ParseFrame(b []byte) (Frame, error) {
	r := bits.New(b)
	if r.Bits(2) != 2 {
		if r.Err() != nil {
			return Frame{}, errFrameTrunc
		}
		return Frame{}, errFrameMarker
	}
	lo, hi := r.Bits(1), r.Bits(1)
	f := Frame{Profile: uint8(hi<<1 | lo)}
	if f.Profile == 3 && r.Flag() {
		return Frame{}, errReservedZero
	}
	if r.Flag() { // show_existing_frame
		f.Show = true
		return f, r.Err()
	}
	f.Key = r.Bits(1) == 0
	f.Show = r.Flag()
	r.Skip(1) // error_resilient_mode
	if !f.Key {
		if r.Err() != nil {
			return Frame{}, errFrameTrunc
		}
		return f, nil
	}
	if r.Bits(24) != 0x498342 {
		if r.Err() != nil {
			return Frame{}, errFrameTrunc
		}
		return Frame{}, errSyncCode
	}
	if f.Profile >= 2 {
		r.Skip(1) // ten_or_twelve_bit
	}
	if r.Bits(3) != 7 { // color_space != CS_RGB
		r.Skip(1) // color_range
		if f.Profile == 1 || f.Profile == 3 {
			r.Skip(3)
		}
	} else if f.Profile == 1 || f.Profile == 3 {
		r.Skip(1)
	}
	f.Width, f.Height = int(r.Bits(16))+1, int(r.Bits(16))+1
	if r.Err() != nil {
		return Frame{}, errFrameTrunc
	}
	return f, nil
}

var (
	errFrameTrunc   = malformedf("frame header truncated")
	errFrameMarker  = malformedf("frame_marker is not 2")
	errReservedZero = malformedf("profile 3 reserved_zero bit set")
	errSyncCode     = malformedf("key frame without the sync code")
)
