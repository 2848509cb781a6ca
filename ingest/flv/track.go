package flv

import (
	"fmt"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/codec/ac3"
	"github.com/rtmpgate/rtmpgate/remux/codec/av1"
	"github.com/rtmpgate/rtmpgate/remux/codec/flac"
	"github.com/rtmpgate/rtmpgate/remux/codec/hevc"
	"github.com/rtmpgate/rtmpgate/remux/codec/opus"
	"github.com/rtmpgate/rtmpgate/remux/codec/vp9"
)

// NewTrack builds the track a sequence start announces from its codec's
// configuration record (the TrackPacket's Data). The record is copied: the
// track outlives the message. ID is TrackVideo or TrackAudio by the codec's
// kind. A codec the outputs cannot carry (VP8, VVC, MP3) is an error wrapping
// ErrUnsupportedCodec; a broken record is an error wrapping the codec
// package's malformed error.
//
// A VP9 track has no size until a key frame shows it: vpcC does not carry one,
// so the caller fills Width and Height from vp9.ParseFrame before announcing it.
//
// AC-3 and E-AC-3 have no configuration record: Enhanced RTMP defines no
// sequence start payload for them, and a track is described by its first
// coded frame, which the caller passes as record.
func NewTrack(fcc FourCC, record []byte) (*remux.Track, error) {
	rec := append([]byte(nil), record...)
	switch fcc {
	case FourCCAVC:
		return parseAVCConfig(rec)
	case FourCCAAC:
		return parseASC(rec)
	case FourCCHEVC:
		c, err := hevc.ParseConfig(rec)
		if err != nil {
			return nil, err
		}
		t := &remux.Track{
			ID: remux.TrackVideo, Codec: remux.CodecHEVC, Timescale: 90000, Config: rec,
			CodecString: c.CodecString("hvc1"), Width: c.Width, Height: c.Height,
			NALULengthSize: c.LengthSize, VPS: c.VPS, SPS: c.SPS, PPS: c.PPS,
			BitDepth: int(c.BitDepthLuma),
			Profile:  hevcProfiles[c.ProfileIDC], Level: fmt.Sprintf("%g", float64(c.LevelIDC)/30),
		}
		if s := c.FirstSPS; s.Colour {
			t.Color = &remux.Color{Primaries: s.Primaries, Transfer: s.Transfer, Matrix: s.Matrix, FullRange: s.FullRange}
		}
		return t, nil
	case FourCCAV1:
		c, err := av1.ParseConfig(rec)
		if err != nil {
			return nil, err
		}
		t := &remux.Track{
			ID: remux.TrackVideo, Codec: remux.CodecAV1, Timescale: 90000, Config: rec,
			CodecString: c.CodecString(), Width: c.Sequence.Width, Height: c.Sequence.Height,
			BitDepth: int(c.BitDepth()),
			Profile:  [...]string{"Main", "High", "Professional"}[min(c.SeqProfile, 2)],
			Level:    fmt.Sprintf("%d.%d", 2+c.SeqLevelIdx0>>2, c.SeqLevelIdx0&3),
		}
		if s := c.Sequence; s.ColorDescription {
			t.Color = &remux.Color{Primaries: s.ColorPrimaries, Transfer: s.TransferCharacteristics,
				Matrix: s.MatrixCoefficients, FullRange: s.FullRange}
		}
		return t, nil
	case FourCCVP9:
		c, err := vp9.ParseConfig(rec)
		if err != nil {
			return nil, err
		}
		return &remux.Track{
			ID: remux.TrackVideo, Codec: remux.CodecVP9, Timescale: 90000, Config: rec,
			CodecString: c.CodecString(), BitDepth: int(c.BitDepth),
			Profile: fmt.Sprintf("Profile %d", c.Profile), Level: fmt.Sprintf("%d.%d", c.Level/10, c.Level%10),
			Color: &remux.Color{Primaries: c.ColourPrimaries, Transfer: c.TransferCharacteristics,
				Matrix: c.MatrixCoefficients, FullRange: c.FullRange},
		}, nil
	case FourCCOpus:
		h, err := opus.ParseHead(rec)
		if err != nil {
			return nil, err
		}
		// Opus always decodes at 48 kHz (RFC 7845 5.1); the input rate is informational.
		return &remux.Track{
			ID: remux.TrackAudio, Codec: remux.CodecOpus, Timescale: 48000, Config: rec,
			CodecString: "opus", SampleRate: 48000, Channels: int(h.Channels),
		}, nil
	case FourCCFLAC:
		si, err := flac.ParseStreamInfo(rec)
		if err != nil {
			return nil, err
		}
		t := &remux.Track{
			ID: remux.TrackAudio, Codec: remux.CodecFLAC, Timescale: uint32(si.SampleRate), Config: si.AppendDfLa(nil),
			CodecString: flac.CodecString, SampleRate: si.SampleRate, Channels: si.Channels,
		}
		if si.MinBlockSize == si.MaxBlockSize {
			t.FrameSamples = int(si.MaxBlockSize) // a fixed-blocksize stream (the last frame may be shorter)
		}
		return t, nil
	case FourCCAC3, FourCCEAC3:
		f, err := ac3.ParseFrame(rec)
		if err != nil {
			return nil, err
		}
		if f.EAC3 != (fcc == FourCCEAC3) {
			return nil, malformedf("%v track: frame is %s", fcc, f.CodecString())
		}
		codec := remux.CodecAC3
		if f.EAC3 {
			codec = remux.CodecEAC3
		}
		return &remux.Track{
			ID: remux.TrackAudio, Codec: codec, Timescale: uint32(f.SampleRate), Config: f.Config(nil),
			CodecString: f.CodecString(), SampleRate: f.SampleRate, Channels: f.Channels, FrameSamples: f.Samples,
		}, nil
	}
	return nil, unsupportedf("%v", fcc)
}

// IsKey reports whether a coded frame of track t is a sync sample, judged from
// the bitstream rather than the FLV frame type, which encoders set loosely for
// the newer codecs. Audio frames are always sync samples.
func IsKey(t *remux.Track, data []byte) (bool, error) {
	switch t.Codec {
	case remux.CodecHEVC:
		return hevc.HasIRAP(data, t.NALULengthSize)
	case remux.CodecAV1:
		return av1.IsKeyFrame(data)
	case remux.CodecVP9:
		f, err := vp9.ParseFrame(data)
		return f.Key, err
	case remux.CodecH264:
		return false, fmt.Errorf("flv: H.264 key frames come from the FLV frame type")
	}
	return true, nil
}

// hevcProfiles names general_profile_idc values of H.265 Annex A.
var hevcProfiles = map[uint8]string{1: "Main", 2: "Main 10", 3: "Main Still Picture", 4: "Range Extensions", 9: "Screen Content"}
