package flv

// MaxTracks bounds the tracks one Enhanced RTMP multitrack message may carry.
// Track ids are 8-bit, but a ladder has a handful of renditions; a message
// with more tracks than this is refused as malformed, so a caller can keep a
// fixed [MaxTracks]TrackPacket buffer and split every message without
// allocating.
const MaxTracks = 16

// Signal says how a tag body announced its codec. The non-standard forms are
// found in the wild and accepted so that the caller can name them in its log.
type Signal uint8

const (
	SignalLegacy   Signal = iota // FLV codec id or sound format (H.264 7, AAC 10)
	SignalExHeader               // an Enhanced RTMP extended header with a FourCC
	// SignalHEVCCodecID12 is a legacy header with codec id 12, laid out as
	// H.264's (packet type, SI24 composition time, hvcC or NAL units). Several
	// Chinese CDNs and encoders use it; no specification defines it.
	SignalHEVCCodecID12
	// SignalHEVCUnderAVC is a legacy codec id 7 sequence header that holds an
	// HEVCDecoderConfigurationRecord instead of an avcC (OBS before 29.1 wrote
	// HEVC this way). Only the sequence header tells: the frames that follow
	// look like H.264 frames, and the caller interprets them by the track
	// state the sequence header set.
	SignalHEVCUnderAVC
)

func (s Signal) String() string {
	switch s {
	case SignalLegacy:
		return "legacy"
	case SignalExHeader:
		return "enhanced"
	case SignalHEVCCodecID12:
		return "HEVC under legacy codec id 12 (non-standard)"
	case SignalHEVCUnderAVC:
		return "HEVC record under legacy codec id 7 (OBS before 29.1, non-standard)"
	}
	return "unknown"
}

// More packet types, reported by SplitVideo and SplitAudio only (ParseVideo
// and ParseAudio report them as PacketCommand).
const (
	// PacketMetadata is an Enhanced RTMP video Metadata body: AMF0 name/value
	// pairs in Data (today "colorInfo"); it applies to the frames that follow.
	PacketMetadata PacketType = iota + PacketCommand + 1
	// PacketMultichannelConfig is an Enhanced RTMP audio MultichannelConfig
	// body in Data: channel order, count, and a map or mask.
	PacketMultichannelConfig
	// PacketMPEG2TSSequenceStart is a video sequence start carrying an MPEG-2
	// TS descriptor in Data (for av01, the AV1 video descriptor) instead of a
	// configuration record.
	PacketMPEG2TSSequenceStart
)

// TrackPacket is one track's share of an audio or video message.
//
// Data aliases the message body and is valid while the body is: for a
// sequence header it is the codec configuration record exactly as sent (avcC,
// hvcC, av1C, vpcC with its version and flags, OpusHead, AudioSpecificConfig,
// FLAC STREAMINFO); for a frame, the coded data after any composition time;
// for a command, the command byte and anything after it.
type TrackPacket struct {
	TrackID uint8  // Enhanced RTMP track id; 0 outside multitrack messages
	FourCC  FourCC // the codec; legacy codec ids map to their FourCC
	Signal  Signal
	Type    PacketType
	// FrameType is the video frame type (1 key, 2 inter, 3 disposable, 4
	// generated key, 5 command); 0 for audio.
	FrameType uint8
	Key       bool  // video: frame type 1; audio: always true
	CTS       int32 // composition time offset, ms: CodedFrames of avc1, hvc1 and vvc1 only
	Data      []byte
}

// Message is an audio or video message split into per-track packets.
type Message struct {
	// Packets alias the slice given to SplitVideo or SplitAudio.
	Packets []TrackPacket
	// TimestampOffsetNano is the ModEx TimestampOffsetNano, 0 to 999999 ns, to
	// add to the message timestamp for every packet of the message.
	TimestampOffsetNano uint32
	// Multitrack is set when the message used AudioPacketType or
	// VideoPacketType Multitrack; MultitrackType is then its AvMultitrackType.
	Multitrack     bool
	MultitrackType uint8
}

// AvMultitrackType values (E-RTMP v2).
const (
	MultitrackOneTrack             = 0
	MultitrackManyTracks           = 1
	MultitrackManyTracksManyCodecs = 2
)

// packet type value of ModEx, the same for audio and video
const exModEx = 7

// modExTimestampOffsetNano is the VideoPacketModExType and AudioPacketModExType
// whose data is a UI24 nanosecond offset.
const modExTimestampOffsetNano = 0

// readModEx consumes the ModEx prefixes an Enhanced RTMP header may carry
// before its real packet type, returning that type and the last
// TimestampOffsetNano. Sizes are UI8+1, or UI16+1 (up to 65536) after an 8-bit
// 255; each prefix consumes at least two bytes, so the loop ends with the body.
// ModEx types other than TimestampOffsetNano are skipped: later revisions may
// define them, and their data size is known. An offset over 999999 ns is not a
// sub-millisecond offset and is refused.
func readModEx(pt byte, rest []byte, nano uint32) (byte, []byte, uint32, error) {
	for pt == exModEx {
		if len(rest) < 1 {
			return 0, nil, 0, errModEx
		}
		size := int(rest[0]) + 1
		rest = rest[1:]
		if size == 256 {
			if len(rest) < 2 {
				return 0, nil, 0, errModEx
			}
			size = (int(rest[0])<<8 | int(rest[1])) + 1
			rest = rest[2:]
		}
		if len(rest) < size+1 {
			return 0, nil, 0, errModEx
		}
		data := rest[:size]
		next := rest[size]
		rest = rest[size+1:]
		// A TimestampOffsetNano is a UI24; another size is skipped, as
		// FFmpeg's reader does, rather than guessed at.
		if next>>4 == modExTimestampOffsetNano && size == 3 {
			nano = uint32(data[0])<<16 | uint32(data[1])<<8 | uint32(data[2])
			if nano > 999999 {
				return 0, nil, 0, errModExNano
			}
		}
		pt = next & 0x0f
	}
	return pt, rest, nano, nil
}

var (
	errModEx         = malformedf("enhanced RTMP ModEx prefix truncated")
	errModExNano     = malformedf("enhanced RTMP ModEx TimestampOffsetNano over 999999 ns")
	errNoTracks      = malformedf("enhanced RTMP multitrack message without tracks")
	errTooManyTracks = malformedf("enhanced RTMP multitrack message with more than %d tracks", MaxTracks)
	errTrackTrunc    = malformedf("enhanced RTMP multitrack track header truncated")
)

// exHeader is what precedes the track bodies of an Enhanced RTMP message.
type exHeader struct {
	frameType byte
	pt        byte
	nano      uint32
	mt        bool
	mtType    byte
	fcc       FourCC // unless ManyTracksManyCodecs
	rest      []byte
}

// readMultitrack reads the AvMultitrackType and the packet type shared by the
// tracks, and the FourCC shared by them unless each track has its own.
func readMultitrack(h *exHeader, multitrackPT byte, short error) error {
	if len(h.rest) < 1 {
		return short
	}
	h.mt = true
	h.mtType = h.rest[0] >> 4
	if h.mtType > MultitrackManyTracksManyCodecs {
		return malformedf("AvMultitrackType %d: reserved", h.mtType)
	}
	pt, rest, nano, err := readModEx(h.rest[0]&0x0f, h.rest[1:], h.nano)
	if err != nil {
		return err
	}
	if pt == multitrackPT {
		return malformedf("enhanced RTMP multitrack message nests Multitrack")
	}
	h.pt, h.rest, h.nano = pt, rest, nano
	if h.mtType != MultitrackManyTracksManyCodecs {
		if len(h.rest) < 4 {
			return short
		}
		h.fcc = readFourCC(h.rest)
		h.rest = h.rest[4:]
	}
	return nil
}

// splitTracks walks the track bodies after h into dst. A ManyTracks body's
// sizeOfTrack must fit the message; a OneTrack body is the rest of the
// message.
func splitTracks(dst []TrackPacket, h *exHeader, video bool) ([]TrackPacket, error) {
	dst = dst[:0]
	rest := h.rest
	if !h.mt {
		p, err := trackPacket(video, h, h.fcc, 0, rest)
		if err != nil {
			return nil, err
		}
		return append(dst, p), nil
	}
	if len(rest) == 0 {
		return nil, errNoTracks
	}
	var seen [4]uint64 // track ids already in this message
	for len(rest) > 0 {
		fcc := h.fcc
		if h.mtType == MultitrackManyTracksManyCodecs {
			if len(rest) < 4 {
				return nil, errTrackTrunc
			}
			fcc = readFourCC(rest)
			rest = rest[4:]
		}
		if len(rest) < 1 {
			return nil, errTrackTrunc
		}
		id := rest[0]
		rest = rest[1:]
		data := rest
		rest = nil
		if h.mtType != MultitrackOneTrack {
			if len(data) < 3 {
				return nil, errTrackTrunc
			}
			size := int(data[0])<<16 | int(data[1])<<8 | int(data[2])
			data = data[3:]
			if size > len(data) {
				return nil, malformedf("enhanced RTMP track %d: sizeOfTrack %d past the message (%d bytes left)", id, size, len(data))
			}
			data, rest = data[:size:size], data[size:]
		}
		if seen[id>>6]&(1<<(id&63)) != 0 {
			return nil, malformedf("enhanced RTMP track %d twice in one message", id)
		}
		seen[id>>6] |= 1 << (id & 63)
		if len(dst) == MaxTracks {
			return nil, errTooManyTracks
		}
		p, err := trackPacket(video, h, fcc, id, data)
		if err != nil {
			return nil, err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

// trackPacket calls the video or audio track body reader directly: through a
// func value, escape analysis would move the header to the heap.
func trackPacket(video bool, h *exHeader, fcc FourCC, id byte, data []byte) (TrackPacket, error) {
	if video {
		return exVideoPacket(h, fcc, id, data)
	}
	return exAudioPacket(h, fcc, id, data)
}
