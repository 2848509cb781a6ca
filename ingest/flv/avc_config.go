package flv

import (
	"fmt"

	"github.com/rtmpgate/rtmpgate/remux"
)

// maxAVCConfig bounds the avcC record we copy. Real records are tens of bytes;
// parameter sets with scaling lists reach a few hundred.
const maxAVCConfig = 64 << 10

// parseAVCConfig parses an AVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 5.3.3.1) and the first SPS in it into a video track. Config is a copy of rec;
// SPS and PPS alias that copy.
func parseAVCConfig(rec []byte) (*remux.Track, error) {
	if len(rec) < 7 {
		return nil, malformedf("avcC of %d bytes: need at least 7", len(rec))
	}
	if len(rec) > maxAVCConfig {
		return nil, malformedf("avcC of %d bytes > limit %d", len(rec), maxAVCConfig)
	}
	if rec[0] != 1 {
		return nil, malformedf("avcC configurationVersion %d: want 1", rec[0])
	}
	lengthSize := int(rec[4]&0x03) + 1
	if lengthSize == 3 {
		return nil, malformedf("avcC NAL unit length size 3: want 1, 2 or 4")
	}
	cfg := make([]byte, len(rec))
	copy(cfg, rec)

	p := 5
	numSPS := int(cfg[p] & 0x1f)
	p++
	sps, p, err := parameterSets(cfg, p, numSPS, 7, "SPS")
	if err != nil {
		return nil, err
	}
	if p >= len(cfg) {
		return nil, malformedf("avcC truncated before numOfPictureParameterSets")
	}
	numPPS := int(cfg[p])
	p++
	pps, _, err := parameterSets(cfg, p, numPPS, 8, "PPS")
	if err != nil {
		return nil, err
	}
	// Bytes after the PPS list (the high-profile chroma and bit-depth fields)
	// stay in Config; the SPS says the same.
	if len(sps) == 0 {
		return nil, malformedf("avcC has no SPS")
	}
	if len(pps) == 0 {
		return nil, malformedf("avcC has no PPS")
	}
	s, err := parseSPS(sps[0])
	if err != nil {
		return nil, err
	}
	return &remux.Track{
		ID:             remux.TrackVideo,
		Codec:          remux.CodecH264,
		Timescale:      90000,
		Config:         cfg,
		CodecString:    fmt.Sprintf("avc1.%02x%02x%02x", s.profile, s.constraints, s.level),
		Profile:        avcProfiles[s.profile],
		Level:          fmt.Sprintf("%d.%d", s.level/10, s.level%10),
		Width:          s.width,
		Height:         s.height,
		NALULengthSize: lengthSize,
		SPS:            sps,
		PPS:            pps,
	}, nil
}

// parameterSets reads n 16-bit-length-prefixed NAL units of type nalType from
// cfg at p. The count comes from a 5- or 8-bit field, so the list is bounded.
func parameterSets(cfg []byte, p, n int, nalType byte, name string) ([][]byte, int, error) {
	if n == 0 {
		return nil, p, nil
	}
	sets := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		if len(cfg)-p < 2 {
			return nil, 0, malformedf("avcC %s %d: length truncated", name, i)
		}
		size := int(cfg[p])<<8 | int(cfg[p+1])
		p += 2
		if size == 0 || size > len(cfg)-p {
			return nil, 0, malformedf("avcC %s %d: length %d, %d bytes left", name, i, size, len(cfg)-p)
		}
		nal := cfg[p : p+size : p+size]
		p += size
		if t := nal[0] & 0x1f; t != nalType {
			return nil, 0, malformedf("avcC %s %d: NAL unit type %d, want %d", name, i, t, nalType)
		}
		sets = append(sets, nal)
	}
	return sets, p, nil
}

// sequenceHeader adapts a track builder's result to ParseVideo's and
// ParseAudio's.
func sequenceHeader(t *remux.Track, err error) (Packet, error) {
	if err != nil {
		return Packet{}, err
	}
	return Packet{Type: PacketSequenceHeader, Track: t}, nil
}

// avcProfiles names the profile_idc values of H.264 Annex A that encoders send.
var avcProfiles = map[byte]string{
	66: "Baseline", 77: "Main", 88: "Extended", 100: "High", 110: "High 10",
	122: "High 4:2:2", 244: "High 4:4:4 Predictive",
}
