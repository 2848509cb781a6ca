// Package flv turns FLV audio and video tag bodies, as RTMP carries them, into
// remux tracks and frames. Parsers are stateless, never panic, and never copy
// frame payloads.
//
// Two layers. SplitVideo and SplitAudio parse a tag body to the Enhanced RTMP v2
// specification (veovera/enhanced-rtmp, docs/enhanced/enhanced-rtmp-v2.md) and
// legacy FLV into per-track packets (TrackPacket: track id, FourCC, packet
// type, composition time, data slice) without judging the codec: every FourCC,
// packet type, the ModEx prefixes (TimestampOffsetNano returned in Message),
// command frames, colorInfo metadata, MultichannelConfig, and Multitrack in
// its three forms (OneTrack, ManyTracks, ManyTracksManyCodecs), bounded by
// MaxTracks per message. Legacy tags are track 0. The two non-standard HEVC
// signallings found in the wild are recognized and named by Signal. Codec
// knowledge (configuration records, codecs strings, sync samples) lives in
// the remux/codec packages, not here.
//
// Ingest uses SplitVideo/SplitAudio with NewTrack (a sequence start's record
// to a remux.Track) and IsKey (sync samples from the bitstream). ParseVideo and
// ParseAudio are the single-track H.264/AAC form of the same parse, which the
// packager's and remux's tests and benchmarks still use: H.264 (legacy codec id
// 7, or FourCC 'avc1') and AAC (legacy sound format 10, or FourCC 'mp4a'),
// building remux.Tracks from sequence headers.
// Every other codec, the non-standard HEVC forms and multitrack messages are
// refused with an error wrapping ErrUnsupportedCodec that names them; a body
// that breaks its format is refused with an error wrapping ErrMalformed.
//
// AAC object types and channel layouts are limited to what an ADTS header can
// describe, since the TS output needs one: audio object types 1 to 4, optionally
// under SBR/PS (HE-AAC 5 and 29), and channelConfiguration 1 to 7.
// channelConfiguration 0 (a program config element defines the layout) and 11 to
// 14 are refused as unsupported. An explicit sampling frequency (index 15) is
// accepted; only the 13 indexed rates fit ADTS.
//
// Frame parsing allocates nothing, including the ErrUnsupportedCodec refusals for
// codec ids and FourCCs the specifications define, and SplitVideo/SplitAudio
// with a [MaxTracks]TrackPacket buffer. Only building a Track from a sequence
// header allocates.
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

	// PacketCommand is a body the caller ignores: a video info/command frame
	// (frame type 5), Enhanced RTMP video metadata (HDR colour info) or an audio
	// multichannel configuration. Nothing else of the Packet is set.
	PacketCommand
)

func (t PacketType) String() string {
	switch t {
	case PacketSequenceHeader:
		return "sequence header"
	case PacketFrame:
		return "frame"
	case PacketEndOfSequence:
		return "end of sequence"
	case PacketCommand:
		return "command"
	case PacketMetadata:
		return "metadata"
	case PacketMultichannelConfig:
		return "multichannel config"
	case PacketMPEG2TSSequenceStart:
		return "MPEG-2 TS sequence start"
	}
	return "unknown"
}

// Packet is one parsed tag body.
type Packet struct {
	Type  PacketType
	Track *remux.Track // PacketSequenceHeader: a new track, Config copied, derived fields set
	CTS   int32        // video composition time offset, ms (signed 24-bit in FLV)
	Key   bool         // video: frame type 1 (keyframe); audio: always true
	Data  []byte       // PacketFrame: the payload, aliasing the tag body

	// TimestampOffsetNano is an Enhanced RTMP ModEx offset, 0 to 999999 ns,
	// to add to the message timestamp of a PacketFrame.
	TimestampOffsetNano uint32
}
