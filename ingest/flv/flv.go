// Package flv turns FLV audio and video tag bodies, as RTMP carries them, into
// remux tracks and frames. Parsers are stateless, never panic, and never copy
// frame payloads.
package flv

import (
	"errors"

	"github.com/rtmpgate/rtmpgate/remux"
)

// ErrUnsupportedCodec is wrapped by the parsers for a codec, or an Enhanced RTMP
// FourCC, that rtmpgate cannot carry. The stream goes on with its other tracks.
var ErrUnsupportedCodec = errors.New("flv: unsupported codec")

// PacketType says what a tag body held.
type PacketType uint8

const (
	PacketSequenceHeader PacketType = iota + 1 // Packet.Track is set
	PacketFrame                                // Packet.Data, CTS and Key are set
	PacketEndOfSequence                        // nothing to carry
)

// Packet is one parsed tag body.
type Packet struct {
	Type  PacketType
	Track *remux.Track // PacketSequenceHeader: a new track, Config copied, derived fields set
	CTS   int32        // video composition time offset, ms (signed 24-bit in FLV)
	Key   bool         // video: frame type 1 (keyframe); audio: always true
	Data  []byte       // PacketFrame: the payload, aliasing the tag body
}

// ParseVideo parses a VIDEODATA tag body.
func ParseVideo(body []byte) (Packet, error) {
	panic("flv.ParseVideo: not implemented yet")
}

// ParseAudio parses an AUDIODATA tag body.
func ParseAudio(body []byte) (Packet, error) {
	panic("flv.ParseAudio: not implemented yet")
}

// CheckNALUs reports an error unless data is a whole sequence of NAL units, each
// prefixed with a big-endian length of lengthSize bytes, ending exactly at len(data).
func CheckNALUs(data []byte, lengthSize int) error {
	panic("flv.CheckNALUs: not implemented yet")
}
