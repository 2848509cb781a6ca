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

var fourCCAAC = fourCC("mp4a")

// ParseAudio parses an AUDIODATA tag body: legacy FLV, or an Enhanced RTMP
// extended header (sound format 9). Only AAC is supported; see the package doc.
//
// A PacketFrame's Data aliases body: one raw AAC access unit, possibly empty. Key
// is always true.
func ParseAudio(body []byte) (Packet, error) {
	if len(body) == 0 {
		return Packet{}, errAudioEmpty
	}
	format := body[0] >> 4
	if format == soundFormatExHeader {
		return parseExAudio(body)
	}
	if format != soundFormatAAC {
		return Packet{}, audioFormatErrs[format]
	}
	// The low nibble's rate, size and channel bits are fixed for AAC and
	// meaningless: the AudioSpecificConfig says the truth.
	if len(body) < 2 {
		return Packet{}, errAACShort
	}
	switch body[1] {
	case aacSequenceHeader:
		return sequenceHeader(parseASC(body[2:]))
	case aacRaw:
		return Packet{Type: PacketFrame, Key: true, Data: body[2:]}, nil
	}
	return Packet{}, malformedf("AAC packet type %d: reserved", body[1])
}

var (
	errAudioEmpty      = malformedf("empty audio tag body")
	errAACShort        = malformedf("AAC audio tag body truncated: need 2 header bytes")
	errExAudio         = malformedf("enhanced audio tag body truncated")
	errAudioMultitrack = unsupportedf("audio multitrack (Enhanced RTMP)")
)

// parseExAudio parses an Enhanced RTMP extended audio header: AudioPacketType in
// the low nibble, optional ModEx prefixes, then a FourCC.
func parseExAudio(body []byte) (Packet, error) {
	pt, rest, err := skipModEx(body[0]&0x0f, body[1:])
	if err != nil {
		return Packet{}, err
	}
	if pt == exAudioMultitrack {
		return Packet{}, errAudioMultitrack
	}
	if len(rest) < 4 {
		return Packet{}, errExAudio
	}
	fcc := uint32(rest[0])<<24 | uint32(rest[1])<<16 | uint32(rest[2])<<8 | uint32(rest[3])
	rest = rest[4:]
	if fcc != fourCCAAC {
		return Packet{}, unsupportedFourCC("audio", audioFourCCErrs, fcc)
	}
	switch pt {
	case exAudioSequenceStart:
		return sequenceHeader(parseASC(rest))
	case exAudioCodedFrames:
		return Packet{Type: PacketFrame, Key: true, Data: rest}, nil
	case exAudioSequenceEnd:
		return Packet{Type: PacketEndOfSequence}, nil
	case exAudioMultichannelConfig:
		// The ASC already says the channel layout that AAC carries.
		return Packet{Type: PacketCommand}, nil
	}
	return Packet{}, malformedf("enhanced audio packet type %d: not valid for mp4a", pt)
}
