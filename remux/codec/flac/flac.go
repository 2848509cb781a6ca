// Package flac knows what the rest of rtmpgate needs of FLAC: the STREAMINFO
// metadata block that Enhanced RTMP sends as the FLAC sequence start, checked,
// and the FLACSpecificBox (dfLa) payload an ISOBMFF/CMAF sample entry needs
// ("Encapsulation of FLAC in ISO Base Media File Format" 3.3.2). The codecs
// string is "fLaC".
//
// It is pure: no I/O, no state; errors wrap ErrMalformed.
package flac

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by the errors for a header that breaks the FLAC format.
var ErrMalformed = errors.New("flac: malformed")

func malformedf(format string, args ...any) error {
	return fmt.Errorf("flac: "+format+": %w", append(args, ErrMalformed)...)
}

// CodecString is the RFC 6381 codecs value for FLAC in MP4.
const CodecString = "fLaC"

// streamInfoSize is the length of a STREAMINFO block's data.
const streamInfoSize = 34

// StreamInfo is a parsed STREAMINFO block.
type StreamInfo struct {
	MinBlockSize, MaxBlockSize uint16 // samples per channel in a frame
	SampleRate                 int    // Hz, 1..655350
	Channels                   int    // 1..8
	BitsPerSample              int    // 4..32
	TotalSamples               uint64 // 0: unknown, as in a live stream
	raw                        [streamInfoSize]byte
}

var magic = []byte("fLaC")

// ParseStreamInfo reads the STREAMINFO block of a FLAC sequence start. The
// specification names the block only, and encoders send it in three forms, all
// accepted: the 34 bytes of the block alone, the block with its metadata block
// header (possibly followed by more blocks), or all of that after the "fLaC"
// stream marker.
func ParseStreamInfo(b []byte) (StreamInfo, error) {
	b = bytes.TrimPrefix(b, magic)
	switch {
	case len(b) == streamInfoSize:
	case len(b) >= 4+streamInfoSize:
		// METADATA_BLOCK_HEADER: last flag(1) type(7) length(24); STREAMINFO
		// is type 0 and comes first.
		if typ, n := b[0]&0x7f, int(b[1])<<16|int(b[2])<<8|int(b[3]); typ != 0 || n != streamInfoSize {
			return StreamInfo{}, malformedf("first metadata block is type %d of %d bytes, not STREAMINFO", typ, n)
		}
		b = b[4 : 4+streamInfoSize]
	default:
		return StreamInfo{}, malformedf("sequence start of %d bytes: no STREAMINFO", len(b))
	}
	var s StreamInfo
	copy(s.raw[:], b)
	s.MinBlockSize = binary.BigEndian.Uint16(b[0:])
	s.MaxBlockSize = binary.BigEndian.Uint16(b[2:])
	v := binary.BigEndian.Uint64(b[10:]) // rate(20) channels-1(3) bps-1(5) total(36)
	s.SampleRate = int(v >> 44)
	s.Channels = int(v>>41&7) + 1
	s.BitsPerSample = int(v>>36&31) + 1
	s.TotalSamples = v & (1<<36 - 1)
	switch {
	case s.MinBlockSize < 16 || s.MaxBlockSize < s.MinBlockSize:
		return StreamInfo{}, malformedf("block sizes %d..%d", s.MinBlockSize, s.MaxBlockSize)
	case s.SampleRate == 0:
		return StreamInfo{}, malformedf("sample rate 0")
	case s.BitsPerSample < 4:
		return StreamInfo{}, malformedf("%d bits per sample", s.BitsPerSample)
	}
	return s, nil
}

// AppendDfLa appends the dfLa payload after its FullBox header: the
// STREAMINFO block as the only and last metadata block. Other blocks a
// publisher sent (tags, seek tables) describe a file, not a live track.
func (s *StreamInfo) AppendDfLa(dst []byte) []byte {
	dst = append(dst, 0x80, 0, 0, streamInfoSize) // last block, type 0 (STREAMINFO)
	return append(dst, s.raw[:]...)
}
