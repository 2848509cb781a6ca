package flv

// Legacy VIDEODATA values (FLV 10.1, E.4.3).
const (
	videoFrameKey     = 1
	videoFrameCommand = 5
	videoCodecAVC     = 7

	avcSequenceHeader = 0
	avcNALU           = 1
	avcEndOfSequence  = 2
)

// Enhanced RTMP VideoPacketType values (E-RTMP v2).
const (
	exVideoSequenceStart        = 0
	exVideoCodedFrames          = 1
	exVideoSequenceEnd          = 2
	exVideoCodedFramesX         = 3
	exVideoMetadata             = 4
	exVideoMPEG2TSSequenceStart = 5
	exVideoMultitrack           = 6
	exVideoModEx                = 7
)

var fourCCAVC = fourCC("avc1")

// ParseVideo parses a VIDEODATA tag body: legacy FLV, or an Enhanced RTMP
// extended header. Only H.264 is supported; see the package doc.
//
// A PacketFrame's Data aliases body and is not checked to hold whole NAL units:
// the caller knows the track's NALULengthSize and calls CheckNALUs. Data may be
// empty. A PacketCommand is to be ignored.
func ParseVideo(body []byte) (Packet, error) {
	if len(body) == 0 {
		return Packet{}, errVideoEmpty
	}
	if body[0]&0x80 != 0 {
		return parseExVideo(body)
	}
	frameType := body[0] >> 4
	if frameType == videoFrameCommand {
		return Packet{Type: PacketCommand}, nil
	}
	if frameType == 0 || frameType > videoFrameCommand {
		return Packet{}, malformedf("video frame type %d: reserved", frameType)
	}
	if codec := body[0] & 0x0f; codec != videoCodecAVC {
		return Packet{}, videoCodecErrs[codec]
	}
	if len(body) < 2 {
		return Packet{}, errAVCShort
	}
	switch body[1] {
	case avcSequenceHeader:
		if len(body) < 5 {
			return Packet{}, errAVCShort
		}
		return sequenceHeader(parseAVCConfig(body[5:]))
	case avcNALU:
		if len(body) < 5 {
			return Packet{}, errAVCShort
		}
		return Packet{
			Type: PacketFrame,
			CTS:  int24(body[2:5]),
			Key:  frameType == videoFrameKey,
			Data: body[5:],
		}, nil
	case avcEndOfSequence:
		// Some encoders send the end of sequence without the CTS bytes.
		return Packet{Type: PacketEndOfSequence}, nil
	}
	return Packet{}, malformedf("AVC packet type %d: reserved", body[1])
}

var (
	errVideoEmpty = malformedf("empty video tag body")
	errAVCShort   = malformedf("AVC video tag body truncated: need 5 header bytes")
	errExVideo    = malformedf("enhanced video tag body truncated")
	errMultitrack = unsupportedf("video multitrack (Enhanced RTMP)")
)

// parseExVideo parses an Enhanced RTMP extended video header: frame type in bits
// 6-4, VideoPacketType in bits 3-0, optional ModEx prefixes, then a FourCC.
func parseExVideo(body []byte) (Packet, error) {
	frameType := body[0] >> 4 & 0x07
	pt, rest, err := skipModEx(body[0]&0x0f, body[1:])
	if err != nil {
		return Packet{}, err
	}
	if pt == exVideoMultitrack {
		return Packet{}, errMultitrack
	}
	if len(rest) < 4 {
		return Packet{}, errExVideo
	}
	fcc := uint32(rest[0])<<24 | uint32(rest[1])<<16 | uint32(rest[2])<<8 | uint32(rest[3])
	rest = rest[4:]
	if frameType == videoFrameCommand && pt != exVideoMetadata {
		return Packet{Type: PacketCommand}, nil
	}
	if frameType == 0 || frameType > videoFrameCommand {
		return Packet{}, malformedf("video frame type %d: reserved", frameType)
	}
	if fcc != fourCCAVC {
		return Packet{}, unsupportedFourCC("video", videoFourCCErrs, fcc)
	}
	switch pt {
	case exVideoSequenceStart:
		return sequenceHeader(parseAVCConfig(rest))
	case exVideoCodedFrames:
		if len(rest) < 3 {
			return Packet{}, errExVideo
		}
		return Packet{Type: PacketFrame, CTS: int24(rest), Key: frameType == videoFrameKey, Data: rest[3:]}, nil
	case exVideoCodedFramesX:
		// CodedFramesX drops the composition time: it is zero.
		return Packet{Type: PacketFrame, Key: frameType == videoFrameKey, Data: rest}, nil
	case exVideoSequenceEnd:
		return Packet{Type: PacketEndOfSequence}, nil
	case exVideoMetadata:
		return Packet{Type: PacketCommand}, nil
	}
	return Packet{}, malformedf("enhanced video packet type %d: not valid for avc1", pt)
}

// skipModEx consumes the ModEx prefixes an Enhanced RTMP header may carry before
// its real packet type. Their only defined use is a nanosecond timestamp offset,
// below our millisecond timeline, so their data is skipped. Each prefix consumes
// at least two bytes, so the loop ends with the body.
func skipModEx(pt byte, rest []byte) (byte, []byte, error) {
	for pt == exVideoModEx { // audio's ModEx has the same value, 7
		if len(rest) < 1 {
			return 0, nil, errModEx
		}
		size := int(rest[0]) + 1
		rest = rest[1:]
		if size == 256 {
			if len(rest) < 2 {
				return 0, nil, errModEx
			}
			size = int(rest[0])<<8 | int(rest[1]) + 1
			rest = rest[2:]
		}
		if len(rest) < size+1 {
			return 0, nil, errModEx
		}
		pt = rest[size] & 0x0f
		rest = rest[size+1:]
	}
	return pt, rest, nil
}

var errModEx = malformedf("enhanced RTMP ModEx prefix truncated")

// int24 reads a big-endian signed 24-bit value from b[0:3].
func int24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	return v << 8 >> 8
}
