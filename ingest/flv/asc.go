package flv

import (
	"fmt"

	"github.com/rtmpgate/rtmpgate/remux"

	"github.com/rtmpgate/rtmpgate/internal/bits"
)

// maxASC bounds the AudioSpecificConfig we copy. AAC configs are 2 to 7 bytes;
// the rest is room for extension data.
const maxASC = 256

// sampleRates is the samplingFrequencyIndex table (ISO/IEC 14496-3 1.6.3.4);
// 13 and 14 are reserved, 15 means an explicit 24-bit frequency.
var sampleRates = [13]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// channelCounts maps channelConfiguration to a channel count (ISO/IEC 14496-3
// 1.6.3.5). 0 means a program config element defines the layout; 11 to 14, added
// in later editions, do not fit ADTS's 3-bit field. Both are refused as
// unsupported, the rest are reserved.
var channelCounts = [16]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 6, 7: 8}

// parseASC parses an AudioSpecificConfig into an audio track. Config is a copy of
// asc.
//
// For HE-AAC (audio object type 5 or 29) with explicit signalling, SampleRate and
// Timescale are the core sampling rate: each access unit is 1024 samples at
// that rate, which keeps frame durations right; the decoder finds SBR in Config.
// AudioObjectType stays 5 or 29 so that CodecString says "mp4a.40.5".
func parseASC(asc []byte) (*remux.Track, error) {
	if len(asc) < 2 {
		return nil, malformedf("AudioSpecificConfig of %d bytes: need at least 2", len(asc))
	}
	if len(asc) > maxASC {
		return nil, malformedf("AudioSpecificConfig of %d bytes > limit %d", len(asc), maxASC)
	}
	r := bits.New(asc)
	aot := audioObjectType(&r)
	rate := samplingFrequency(&r)
	chanCfg := r.Bits(4)
	if r.Err() != nil {
		return nil, malformedf("AudioSpecificConfig truncated: %v", r.Err())
	}
	if aot == 5 || aot == 29 {
		samplingFrequency(&r) // extensionSamplingFrequency
		core := audioObjectType(&r)
		if r.Err() != nil {
			return nil, malformedf("AudioSpecificConfig SBR extension truncated: %v", r.Err())
		}
		if !aacCoreObjectType(core) {
			return nil, unsupportedf("AAC audio object type %d inside SBR", core)
		}
	} else if !aacCoreObjectType(aot) {
		if aot == 0 {
			return nil, malformedf("AudioSpecificConfig audio object type 0: null")
		}
		return nil, unsupportedf("AAC audio object type %d", aot)
	}
	if rate <= 0 {
		return nil, malformedf("AudioSpecificConfig sampling frequency: %s", rateString(rate))
	}
	if chanCfg == 0 {
		return nil, unsupportedf("AAC channel configuration 0 (program config element)")
	}
	if chanCfg >= 11 && chanCfg <= 14 {
		return nil, unsupportedf("AAC channel configuration %d (not expressible in ADTS)", chanCfg)
	}
	channels := channelCounts[chanCfg]
	if channels == 0 {
		return nil, malformedf("AudioSpecificConfig channel configuration %d: reserved", chanCfg)
	}
	cfg := make([]byte, len(asc))
	copy(cfg, asc)
	return &remux.Track{
		ID:              remux.TrackAudio,
		Codec:           remux.CodecAAC,
		Timescale:       uint32(rate),
		Config:          cfg,
		CodecString:     fmt.Sprintf("mp4a.40.%d", aot),
		AudioObjectType: aot,
		Profile:         aacProfiles[aot],
		SampleRate:      rate,
		Channels:        channels,
	}, nil
}

// aacCoreObjectType reports whether an audio object type is one the ADTS header
// can carry (Main, LC, SSR, LTP), which is what the TS output needs.
func aacCoreObjectType(aot int) bool { return aot >= 1 && aot <= 4 }

// audioObjectType reads GetAudioObjectType(): 5 bits, 31 escaping to 32 + 6 bits.
func audioObjectType(r *bits.Reader) int {
	aot := int(r.Bits(5))
	if aot == 31 {
		aot = 32 + int(r.Bits(6))
	}
	return aot
}

// samplingFrequency reads a samplingFrequencyIndex and, for index 15, the
// explicit 24-bit frequency. It returns -index for a reserved index.
func samplingFrequency(r *bits.Reader) int {
	idx := int(r.Bits(4))
	switch {
	case idx == 15:
		return int(r.Bits(24))
	case idx < len(sampleRates):
		return sampleRates[idx]
	}
	return -idx
}

func rateString(rate int) string {
	if rate < 0 {
		return fmt.Sprintf("index %d reserved", -rate)
	}
	return "explicit 0 Hz"
}

// aacProfiles names the audio object types of ISO/IEC 14496-3 that AAC encoders send.
var aacProfiles = map[int]string{1: "Main", 2: "LC", 3: "SSR", 4: "LTP", 5: "HE-AAC", 29: "HE-AAC v2"}
