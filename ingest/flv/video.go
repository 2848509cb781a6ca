package flv

// Legacy VIDEODATA values (FLV 10.1, E.4.3).
const (
	videoFrameKey     = 1
	videoFrameCommand = 5
	videoCodecAVC     = 7
	// videoCodecHEVC12 is not in any specification: see SignalHEVCCodecID12.
	videoCodecHEVC12 = 12

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
)

// SplitVideo parses a VIDEODATA tag body, legacy FLV or Enhanced RTMP v2, into
// its per-track packets, appended to dst[:0]. It recognizes every codec and
// packet type of the specification and decides nothing about what the caller
// can carry; with cap(dst) >= MaxTracks it allocates nothing.
//
// A legacy body is one packet of track 0: codec id 7 (FourCCAVC, or FourCCHEVC
// with SignalHEVCUnderAVC when its sequence header holds an hvcC) or codec id
// 12 (FourCCHEVC, SignalHEVCCodecID12); other codec ids are refused with
// ErrUnsupportedCodec. An Enhanced RTMP body gives one packet per track: the
// ModEx prefixes are consumed (TimestampOffsetNano is returned in the
// Message), a command frame gives a PacketCommand, and FourCCs outside the
// specification are returned as they are, with Data the whole track body.
//
// What a packet means depends on state the parser does not keep: a frame
// before its track's sequence header, or a FourCC that changed without a new
// sequence header, is the caller's to refuse.
func SplitVideo(dst []TrackPacket, body []byte) (Message, error) {
	if len(body) == 0 {
		return Message{}, errVideoEmpty
	}
	if body[0]&0x80 == 0 {
		p, err := legacyVideo(body)
		if err != nil {
			return Message{}, err
		}
		return Message{Packets: append(dst[:0], p)}, nil
	}
	h, err := readExVideoHeader(body)
	if err != nil {
		return Message{}, err
	}
	pkts, err := splitTracks(dst, &h, true)
	if err != nil {
		return Message{}, err
	}
	return Message{Packets: pkts, TimestampOffsetNano: h.nano, Multitrack: h.mt, MultitrackType: h.mtType}, nil
}

// legacyVideo parses a legacy VIDEODATA body of codec id 7 or 12.
func legacyVideo(body []byte) (TrackPacket, error) {
	frameType := body[0] >> 4
	if frameType == videoFrameCommand {
		return TrackPacket{Type: PacketCommand, FrameType: frameType, Data: body[1:]}, nil
	}
	if frameType == 0 || frameType > videoFrameCommand {
		return TrackPacket{}, malformedf("video frame type %d: reserved", frameType)
	}
	p := TrackPacket{FourCC: FourCCAVC, Signal: SignalLegacy, FrameType: frameType}
	switch codec := body[0] & 0x0f; codec {
	case videoCodecAVC:
	case videoCodecHEVC12:
		p.FourCC, p.Signal = FourCCHEVC, SignalHEVCCodecID12
	default:
		return TrackPacket{}, videoCodecErrs[codec]
	}
	if len(body) < 2 {
		return TrackPacket{}, errAVCShort
	}
	switch body[1] {
	case avcSequenceHeader:
		if len(body) < 5 {
			return TrackPacket{}, errAVCShort
		}
		p.Type, p.Data = PacketSequenceHeader, body[5:]
		if p.Signal == SignalLegacy && looksLikeHVCC(p.Data) {
			p.FourCC, p.Signal = FourCCHEVC, SignalHEVCUnderAVC
		}
	case avcNALU:
		if len(body) < 5 {
			return TrackPacket{}, errAVCShort
		}
		p.Type, p.CTS, p.Key, p.Data = PacketFrame, int24(body[2:5]), frameType == videoFrameKey, body[5:]
	case avcEndOfSequence:
		// Some encoders send the end of sequence without the CTS bytes.
		p.Type = PacketEndOfSequence
	default:
		return TrackPacket{}, malformedf("AVC packet type %d: reserved", body[1])
	}
	return p, nil
}

// readExVideoHeader reads an ExVideoTagHeader: frame type in bits 6-4,
// VideoPacketType in bits 3-0, ModEx prefixes, then a video command byte, or
// the multitrack header, or a FourCC.
func readExVideoHeader(body []byte) (exHeader, error) {
	h := exHeader{frameType: body[0] >> 4 & 0x07}
	pt, rest, nano, err := readModEx(body[0]&0x0f, body[1:], 0)
	if err != nil {
		return exHeader{}, err
	}
	h.pt, h.rest, h.nano = pt, rest, nano
	if h.frameType == videoFrameCommand && pt != exVideoMetadata {
		// A command frame has a VideoCommand byte and no FourCC or payload.
		if len(rest) < 1 {
			return exHeader{}, errExVideo
		}
		return h, nil
	}
	if pt != exVideoMetadata && (h.frameType == 0 || h.frameType > videoFrameCommand) {
		return exHeader{}, malformedf("video frame type %d: reserved", h.frameType)
	}
	if pt == exVideoMultitrack {
		if err := readMultitrack(&h, exVideoMultitrack, errExVideo); err != nil {
			return exHeader{}, err
		}
		return h, nil
	}
	if len(rest) < 4 {
		return exHeader{}, errExVideo
	}
	h.fcc = readFourCC(rest)
	h.rest = rest[4:]
	return h, nil
}

// exVideoPacket reads one track body of an Enhanced RTMP video message.
func exVideoPacket(h *exHeader, fcc FourCC, id byte, data []byte) (TrackPacket, error) {
	p := TrackPacket{TrackID: id, FourCC: fcc, Signal: SignalExHeader, FrameType: h.frameType, Data: data}
	if h.frameType == videoFrameCommand && h.pt != exVideoMetadata {
		p.Type = PacketCommand
		return p, nil
	}
	switch h.pt {
	case exVideoSequenceStart:
		p.Type = PacketSequenceHeader
	case exVideoCodedFrames:
		p.Type, p.Key = PacketFrame, h.frameType == videoFrameKey
		if fcc.hasCompositionTime() {
			if len(data) < 3 {
				return TrackPacket{}, errExVideo
			}
			p.CTS, p.Data = int24(data), data[3:]
		}
	case exVideoCodedFramesX:
		// CodedFramesX drops the composition time: it is zero.
		p.Type, p.Key = PacketFrame, h.frameType == videoFrameKey
	case exVideoSequenceEnd:
		p.Type = PacketEndOfSequence
	case exVideoMetadata:
		p.Type = PacketMetadata
	case exVideoMPEG2TSSequenceStart:
		p.Type = PacketMPEG2TSSequenceStart
	default:
		return TrackPacket{}, exVideoTypeErrs[h.pt]
	}
	return p, nil
}

var exVideoTypeErrs [16]error

func init() {
	for i := range exVideoTypeErrs {
		exVideoTypeErrs[i] = malformedf("enhanced video packet type %d: reserved", i)
	}
}

// ParseVideo parses a VIDEODATA tag body for the single-track H.264 pipeline:
// legacy FLV, or an Enhanced RTMP extended header. Only H.264 is supported;
// see the package doc. Every other codec, the non-standard HEVC forms and
// multitrack messages are refused with ErrUnsupportedCodec, after a parse
// that follows the specification (SplitVideo).
//
// A PacketFrame's Data aliases body and is not checked to hold whole NAL units:
// the caller knows the track's NALULengthSize and calls CheckNALUs. Data may be
// empty. A PacketCommand is to be ignored.
func ParseVideo(body []byte) (Packet, error) {
	if len(body) == 0 {
		return Packet{}, errVideoEmpty
	}
	var p TrackPacket
	var nano uint32
	if body[0]&0x80 == 0 {
		var err error
		if p, err = legacyVideo(body); err != nil {
			return Packet{}, err
		}
		switch p.Signal {
		case SignalHEVCCodecID12:
			return Packet{}, errHEVCCodecID12
		case SignalHEVCUnderAVC:
			return Packet{}, errHEVCUnderAVC
		}
	} else {
		h, err := readExVideoHeader(body)
		if err != nil {
			return Packet{}, err
		}
		if h.mt {
			return Packet{}, errMultitrack
		}
		if p, err = exVideoPacket(&h, h.fcc, 0, h.rest); err != nil {
			return Packet{}, err
		}
		nano = h.nano
	}
	if p.Type == PacketCommand {
		return Packet{Type: PacketCommand}, nil
	}
	if p.FourCC != FourCCAVC {
		return Packet{}, unsupportedFourCC("video", videoFourCCErrs, p.FourCC)
	}
	switch p.Type {
	case PacketSequenceHeader:
		return sequenceHeader(parseAVCConfig(p.Data))
	case PacketFrame:
		return Packet{Type: PacketFrame, CTS: p.CTS, Key: p.Key, Data: p.Data, TimestampOffsetNano: nano}, nil
	case PacketEndOfSequence:
		return Packet{Type: PacketEndOfSequence}, nil
	case PacketMetadata:
		return Packet{Type: PacketCommand}, nil
	}
	return Packet{}, errAVCMPEG2TS
}

var (
	errVideoEmpty    = malformedf("empty video tag body")
	errAVCShort      = malformedf("AVC video tag body truncated: need 5 header bytes")
	errExVideo       = malformedf("enhanced video tag body truncated")
	errMultitrack    = unsupportedf("video multitrack (Enhanced RTMP)")
	errAVCMPEG2TS    = malformedf("enhanced video packet type 5 (MPEG2TSSequenceStart): not valid for avc1")
	errHEVCCodecID12 = unsupportedf("video codec id 12 (HEVC, non-standard)")
	errHEVCUnderAVC  = unsupportedf("video codec id 7 with an HEVC record (OBS before 29.1, non-standard)")
)

// looksLikeHVCC tells an HEVCDecoderConfigurationRecord from an avcC under
// legacy codec id 7. An avcC's sixth byte counts SPSs (at least one) and its
// first SPS starts at byte 8 with NAL unit type 7; an hvcC has profile flags
// there, then at byte 22 a count of NAL unit arrays, which must walk to the end
// of the record and hold an HEVC SPS (NAL unit type 33).
func looksLikeHVCC(rec []byte) bool {
	if len(rec) < 23 || rec[0] != 1 {
		return false
	}
	if rec[5]&0x1f != 0 && rec[8]&0x1f == 7 && rec[8]&0x80 == 0 {
		return false
	}
	p, sps := 23, false
	for i := 0; i < int(rec[22]); i++ {
		if len(rec)-p < 3 {
			return false
		}
		typ := rec[p] & 0x3f
		n := int(rec[p+1])<<8 | int(rec[p+2])
		p += 3
		for j := 0; j < n; j++ {
			if len(rec)-p < 2 {
				return false
			}
			size := int(rec[p])<<8 | int(rec[p+1])
			p += 2
			if size > len(rec)-p {
				return false
			}
			p += size
		}
		sps = sps || (typ == 33 && n > 0)
	}
	return sps && p == len(rec)
}

// int24 reads a big-endian signed 24-bit value from b[0:3].
func int24(b []byte) int32 {
	v := int32(b[0])<<16 | int32(b[1])<<8 | int32(b[2])
	return v << 8 >> 8
}
