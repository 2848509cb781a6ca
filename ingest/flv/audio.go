package flv

// Legacy AUDIODATA values (FLV 10.1, E.4.2).
const (
	soundFormatExHeader = 9 // Enhanced RTMP: an AudioPacketType and FourCC follow
	soundFormatAAC      = 10

	aacSequenceHeader = 0
	aacRaw            = 1
)

// Enhanced RTMP AudioPacketType values (E-RTMP v2).
const (
	exAudioSequenceStart      = 0
	exAudioCodedFrames        = 1
	exAudioSequenceEnd        = 2
	exAudioMultichannelConfig = 4
	exAudioMultitrack         = 5
)

// SplitAudio parses an AUDIODATA tag body, legacy FLV or Enhanced RTMP v2
// (sound format 9), into its per-track packets, appended to dst[:0], as
// SplitVideo does for video. A legacy body is one packet of track 0, AAC only
// (FourCCAAC); other sound formats are refused with ErrUnsupportedCodec. Every
// audio packet has Key set.
func SplitAudio(dst []TrackPacket, body []byte) (Message, error) {
	if len(body) == 0 {
		return Message{}, errAudioEmpty
	}
	if body[0]>>4 != soundFormatExHeader {
		p, err := legacyAudio(body)
		if err != nil {
			return Message{}, err
		}
		return Message{Packets: append(dst[:0], p)}, nil
	}
	h, err := readExAudioHeader(body)
	if err != nil {
		return Message{}, err
	}
	pkts, err := splitTracks(dst, &h, false)
	if err != nil {
		return Message{}, err
	}
	return Message{Packets: pkts, TimestampOffsetNano: h.nano, Multitrack: h.mt, MultitrackType: h.mtType}, nil
}

func legacyAudio(body []byte) (TrackPacket, error) {
	if format := body[0] >> 4; format != soundFormatAAC {
		return TrackPacket{}, audioFormatErrs[format]
	}
	// The low nibble's rate, size and channel bits are fixed for AAC and
	// meaningless: the AudioSpecificConfig says the truth.
	if len(body) < 2 {
		return TrackPacket{}, errAACShort
	}
	p := TrackPacket{FourCC: FourCCAAC, Signal: SignalLegacy, Key: true, Data: body[2:]}
	switch body[1] {
	case aacSequenceHeader:
		p.Type = PacketSequenceHeader
	case aacRaw:
		p.Type = PacketFrame
	default:
		return TrackPacket{}, malformedf("AAC packet type %d: reserved", body[1])
	}
	return p, nil
}

// readExAudioHeader reads an ExAudioTagHeader: AudioPacketType in the low
// nibble, ModEx prefixes, then the multitrack header or a FourCC.
func readExAudioHeader(body []byte) (exHeader, error) {
	pt, rest, nano, err := readModEx(body[0]&0x0f, body[1:], 0)
	if err != nil {
		return exHeader{}, err
	}
	h := exHeader{pt: pt, rest: rest, nano: nano}
	if pt == exAudioMultitrack {
		if err := readMultitrack(&h, exAudioMultitrack, errExAudio); err != nil {
			return exHeader{}, err
		}
		return h, nil
	}
	if len(rest) < 4 {
		return exHeader{}, errExAudio
	}
	h.fcc = readFourCC(rest)
	h.rest = rest[4:]
	return h, nil
}

// exAudioPacket reads one track body of an Enhanced RTMP audio message.
func exAudioPacket(h *exHeader, fcc FourCC, id byte, data []byte) (TrackPacket, error) {
	p := TrackPacket{TrackID: id, FourCC: fcc, Signal: SignalExHeader, Key: true, Data: data}
	switch h.pt {
	case exAudioSequenceStart:
		p.Type = PacketSequenceHeader
	case exAudioCodedFrames:
		p.Type = PacketFrame
	case exAudioSequenceEnd:
		p.Type = PacketEndOfSequence
	case exAudioMultichannelConfig:
		p.Type = PacketMultichannelConfig
	default:
		return TrackPacket{}, exAudioTypeErrs[h.pt]
	}
	return p, nil
}

var exAudioTypeErrs [16]error

func init() {
	for i := range exAudioTypeErrs {
		exAudioTypeErrs[i] = malformedf("enhanced audio packet type %d: reserved", i)
	}
}

// ParseAudio parses an AUDIODATA tag body for the single-track AAC pipeline:
// legacy FLV, or an Enhanced RTMP extended header (sound format 9). Only AAC is
// supported; see the package doc. Multitrack messages are refused with
// ErrUnsupportedCodec.
//
// A PacketFrame's Data aliases body: one raw AAC access unit, possibly empty. Key
// is always true.
func ParseAudio(body []byte) (Packet, error) {
	if len(body) == 0 {
		return Packet{}, errAudioEmpty
	}
	var p TrackPacket
	var nano uint32
	if body[0]>>4 != soundFormatExHeader {
		var err error
		if p, err = legacyAudio(body); err != nil {
			return Packet{}, err
		}
	} else {
		h, err := readExAudioHeader(body)
		if err != nil {
			return Packet{}, err
		}
		if h.mt {
			return Packet{}, errAudioMultitrack
		}
		if p, err = exAudioPacket(&h, h.fcc, 0, h.rest); err != nil {
			return Packet{}, err
		}
		nano = h.nano
		if p.FourCC != FourCCAAC {
			return Packet{}, unsupportedFourCC("audio", audioFourCCErrs, p.FourCC)
		}
	}
	switch p.Type {
	case PacketSequenceHeader:
		return sequenceHeader(parseASC(p.Data))
	case PacketFrame:
		return Packet{Type: PacketFrame, Key: true, Data: p.Data, TimestampOffsetNano: nano}, nil
	case PacketEndOfSequence:
		return Packet{Type: PacketEndOfSequence}, nil
	}
	// MultichannelConfig: the ASC already says the channel layout AAC carries.
	return Packet{Type: PacketCommand}, nil
}

var (
	errAudioEmpty      = malformedf("empty audio tag body")
	errAACShort        = malformedf("AAC audio tag body truncated: need 2 header bytes")
	errExAudio         = malformedf("enhanced audio tag body truncated")
	errAudioMultitrack = unsupportedf("audio multitrack (Enhanced RTMP)")
)
