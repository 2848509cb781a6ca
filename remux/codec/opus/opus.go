// Package opus knows what the rest of rtmpgate needs of Opus: the
// identification header OpusHead (RFC 7845 5.1) that Enhanced RTMP sends as
// the Opus sequence start, checked, and the OpusSpecificBox (dOps) payload an
// ISOBMFF/CMAF sample entry needs ("Encapsulation of Opus in ISO Base Media
// File Format" 4.3.2). The codecs string is "opus"; the timescale is 48000
// whatever the input sample rate says.
//
// It is pure: no I/O, no state; errors wrap ErrMalformed or ErrUnsupported.
package opus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by the errors for a header that breaks RFC 7845.
var ErrMalformed = errors.New("opus: malformed")

// ErrUnsupported is wrapped for a valid header of a form this package does
// not handle: a major version other than 0.
var ErrUnsupported = errors.New("opus: unsupported")

func malformedf(format string, args ...any) error {
	return fmt.Errorf("opus: "+format+": %w", append(args, ErrMalformed)...)
}

// CodecString is the RFC 6381 codecs value for Opus in MP4.
const CodecString = "opus"

// SampleRate is Opus's decoding rate: every Opus timestamp is in 48 kHz units.
const SampleRate = 48000

// maxHead bounds the header: 21 bytes and a 255-byte mapping table. Bytes
// after the mapping table are allowed by RFC 7845 (later minor versions) and
// ignored.
const maxHead = 1024

// Head is a parsed OpusHead.
type Head struct {
	Version         uint8
	Channels        uint8
	PreSkip         uint16 // samples at 48 kHz to drop at the start
	InputSampleRate uint32 // informational
	OutputGain      int16  // Q7.8 dB
	MappingFamily   uint8
	// For mapping families other than 0.
	StreamCount, CoupledCount uint8
	ChannelMapping            []byte // aliases the header
}

var magic = []byte("OpusHead")

// IsTags reports whether b is an Opus comment header ("OpusTags"), which
// Enhanced RTMP also allows as a sequence start; it carries nothing a muxer
// needs.
func IsTags(b []byte) bool { return bytes.HasPrefix(b, []byte("OpusTags")) }

// ParseHead parses and checks an OpusHead: major version 0, at least one
// channel, the channel count allowed by the mapping family (family 0: 1 or 2;
// family 1: 1 to 8; others: 1 to 255 with a mapping table), stream counts
// that fit the channels, and every mapping entry naming a decoded channel or
// 255 (silence).
func ParseHead(b []byte) (*Head, error) {
	if len(b) < 19 || !bytes.Equal(b[:8], magic) {
		return nil, malformedf("not an OpusHead of at least 19 bytes")
	}
	if len(b) > maxHead {
		return nil, malformedf("OpusHead of %d bytes > limit %d", len(b), maxHead)
	}
	h := &Head{
		Version:         b[8],
		Channels:        b[9],
		PreSkip:         binary.LittleEndian.Uint16(b[10:]),
		InputSampleRate: binary.LittleEndian.Uint32(b[12:]),
		OutputGain:      int16(binary.LittleEndian.Uint16(b[16:])),
		MappingFamily:   b[18],
	}
	if h.Version>>4 != 0 {
		return nil, fmt.Errorf("opus: OpusHead version %d: major version not 0: %w", h.Version, ErrUnsupported)
	}
	if h.Channels == 0 {
		return nil, malformedf("OpusHead with 0 channels")
	}
	switch h.MappingFamily {
	case 0:
		if h.Channels > 2 {
			return nil, malformedf("OpusHead mapping family 0 with %d channels: at most 2", h.Channels)
		}
		return h, nil
	case 1:
		if h.Channels > 8 {
			return nil, malformedf("OpusHead mapping family 1 with %d channels: at most 8", h.Channels)
		}
	}
	if len(b) < 21+int(h.Channels) {
		return nil, malformedf("OpusHead mapping family %d with %d channels: mapping table truncated", h.MappingFamily, h.Channels)
	}
	h.StreamCount, h.CoupledCount = b[19], b[20]
	if h.StreamCount == 0 || h.CoupledCount > h.StreamCount || int(h.StreamCount)+int(h.CoupledCount) > 255 {
		return nil, malformedf("OpusHead %d streams, %d coupled", h.StreamCount, h.CoupledCount)
	}
	h.ChannelMapping = b[21 : 21+int(h.Channels) : 21+int(h.Channels)]
	decoded := int(h.StreamCount) + int(h.CoupledCount)
	for i, m := range h.ChannelMapping {
		if m != 255 && int(m) >= decoded {
			return nil, malformedf("OpusHead channel %d maps to %d of %d decoded channels", i, m, decoded)
		}
	}
	return h, nil
}

// AppendDOps appends the OpusSpecificBox payload (without its box header):
// Version 0, then the header's fields big-endian, the mapping table only for
// families other than 0.
func (h *Head) AppendDOps(dst []byte) []byte {
	dst = append(dst, 0, h.Channels)
	dst = binary.BigEndian.AppendUint16(dst, h.PreSkip)
	dst = binary.BigEndian.AppendUint32(dst, h.InputSampleRate)
	dst = binary.BigEndian.AppendUint16(dst, uint16(h.OutputGain))
	dst = append(dst, h.MappingFamily)
	if h.MappingFamily != 0 {
		dst = append(dst, h.StreamCount, h.CoupledCount)
		dst = append(dst, h.ChannelMapping...)
	}
	return dst
}
