// Package remux holds the media vocabulary shared by ingest and packaging: what a
// track and a frame are, and the Writer a publish session feeds. It does no I/O and
// starts no goroutines.
package remux

import "fmt"

// Codec identifies a track's coding format.
type Codec uint8

const (
	CodecUnknown Codec = iota
	CodecH264
	CodecAAC
	CodecHEVC // H.265, Track.Config is an HEVCDecoderConfigurationRecord (hvcC)
	CodecAV1  // Track.Config is an AV1CodecConfigurationRecord (av1C)
	CodecVP9  // Track.Config is a VPCodecConfigurationRecord (vpcC, version 1 body)
	CodecOpus // Track.Config is the OpusHead identification header
	CodecFLAC // Track.Config is the FLAC stream info metadata block(s) as dfLa carries them
	CodecAC3  // Track.Config is the dac3 payload
	CodecEAC3 // Track.Config is the dec3 payload
)

var codecNames = [...]string{
	CodecH264: "H264", CodecAAC: "AAC", CodecHEVC: "HEVC", CodecAV1: "AV1", CodecVP9: "VP9",
	CodecOpus: "Opus", CodecFLAC: "FLAC", CodecAC3: "AC-3", CodecEAC3: "E-AC-3",
}

func (c Codec) String() string {
	if int(c) < len(codecNames) && codecNames[c] != "" {
		return codecNames[c]
	}
	return fmt.Sprintf("Codec(%d)", uint8(c))
}

// Kind tells video from audio.
type Kind uint8

const (
	KindUnknown Kind = iota
	KindVideo
	KindAudio
)

func (k Kind) String() string {
	switch k {
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	}
	return "unknown"
}

// Kind reports whether the codec carries video or audio.
func (c Codec) Kind() Kind {
	switch c {
	case CodecH264, CodecHEVC, CodecAV1, CodecVP9:
		return KindVideo
	case CodecAAC, CodecOpus, CodecFLAC, CodecAC3, CodecEAC3:
		return KindAudio
	}
	return KindUnknown
}

// Track IDs are fixed per kind so that every output (TS PIDs, CMAF track_ID, DASH
// AdaptationSet ids) can derive its numbering from them without coordination.
const (
	TrackVideo = 1
	TrackAudio = 2
)

// Track describes one elementary stream as its sequence header declared it. A Track
// is immutable once built: a new sequence header produces a new *Track.
type Track struct {
	ID        int    // TrackVideo or TrackAudio
	Codec     Codec  // the coding format; Config's layout follows from it
	Timescale uint32 // media timescale for container output: 90000 for video, the sample rate for audio
	Config    []byte // codec configuration record: avcC for H.264, AudioSpecificConfig for AAC, see Codec for the others

	// Profile and Level name the coding profile and level for people, e.g.
	// "High" and "3.1", "Main 10" and "4.1", "LC"; empty when unknown.
	Profile, Level string

	// CodecString is the RFC 6381 codecs value, e.g. "avc1.64001f", "hvc1.1.6.L93.B0",
	// "av01.0.04M.08", "vp09.00.21.08", "mp4a.40.2" or "opus".
	CodecString string

	// Video, derived once from the configuration record.
	Width, Height  int
	NALULengthSize int      // H.264 and HEVC: 1, 2 or 4, the length prefix of each NAL unit in Frame.Data
	VPS, SPS, PPS  [][]byte // H.264 and HEVC parameter sets, without length prefixes (VPS for HEVC only)
	BitDepth       int      // luma bit depth; 0 means 8
	Color          *Color   // colour description when the stream or its metadata gives one

	// Audio, derived once from the AudioSpecificConfig.
	AudioObjectType int // 2 for AAC-LC
	SampleRate      int // Hz
	Channels        int
	// FrameSamples is the samples per channel in each frame when the codec's
	// configuration fixes it (1536 for AC-3, the block size of a fixed-block
	// FLAC stream); 0 means unknown, taken as AAC's 1024.
	FrameSamples int
}

// FrameMillis is the duration of one audio frame in whole milliseconds, from
// FrameSamples (1024 when unknown) at SampleRate; 0 without a sample rate.
func (t *Track) FrameMillis() int64 {
	if t.SampleRate <= 0 {
		return 0
	}
	n := int64(t.FrameSamples)
	if n <= 0 {
		n = 1024
	}
	return (n*1000 + int64(t.SampleRate)/2) / int64(t.SampleRate)
}

// Color is a video track's colour description, in the code points of ISO/IEC
// 23091-2 (H.273) as the colr box, vpcC and the codecs' VUI carry them.
type Color struct {
	Primaries, Transfer, Matrix uint8
	FullRange                   bool
	// MaxCLL and MaxFALL are the content light levels in cd/m², 0 when not given.
	MaxCLL, MaxFALL uint16
}

// HDR reports whether the transfer characteristics are PQ (16) or HLG (18).
func (c *Color) HDR() string {
	if c == nil {
		return ""
	}
	switch c.Transfer {
	case 16:
		return "PQ"
	case 18:
		return "HLG"
	}
	return ""
}

// Kind is the track's kind, from its codec.
func (t *Track) Kind() Kind { return t.Codec.Kind() }

// Frame is one access unit.
//
// Timestamps are milliseconds on the publish session's monotonic 64-bit timeline
// (RTMP's 32-bit timestamps already unwrapped by ingest). PTS = DTS + CTS.
//
// Data is valid only during the call that receives the Frame; a consumer that keeps
// it copies it. H.264 and HEVC data stay length-prefixed (Track.NALULengthSize
// bytes per NAL unit), as FLV carries them and MP4 stores them; AV1 data is one
// temporal unit of low-overhead OBUs (without temporal delimiter), VP9 one frame
// (or superframe), AAC one raw access unit without ADTS header, Opus one packet,
// AC-3 / E-AC-3 one syncframe.
type Frame struct {
	Track *Track
	DTS   int64
	CTS   int32
	Key   bool // a sync sample: IDR (H.264), IRAP (HEVC), key frame (AV1, VP9); true for every audio frame
	Data  []byte
}

// PTS is the presentation time in milliseconds.
func (f *Frame) PTS() int64 { return f.DTS + int64(f.CTS) }

// Metadata is what the publisher's onMetaData said about the tracks to come. Zero
// values mean "not said".
type Metadata struct {
	HasVideo, HasAudio bool // true when onMetaData names a videocodecid / audiocodecid
	Width, Height      int
	FrameRate          float64
	VideoBitrate       float64 // kbit/s as sent
	AudioBitrate       float64
	Encoder            string
	// VideoFourCC and AudioFourCC are set when videocodecid / audiocodecid hold
	// an Enhanced RTMP FourCC ("hvc1", "Opus") rather than a legacy FLV codec id.
	VideoFourCC, AudioFourCC string
	// AudioLabels are what onMetaData's audioTrackIdInfoMap (Enhanced RTMP
	// v2) says of the audio tracks a player chooses between, by track id;
	// only tracks with an entry that names something are listed.
	AudioLabels []TrackLabel
}

// TrackLabel describes one audio track of a multitrack publish for a
// viewer choosing between them. The specification defines no such fields:
// they are read from the keys encoders and operators use (see ingest).
type TrackLabel struct {
	ID       uint8
	Name     string // a human-readable name ("English", "Commentary")
	Language string // a BCP 47 language tag ("en", "pt-BR")
	Role     string // a DASH role: "main", "alternate", "commentary", "dub"...
}

// Writer consumes one publish session. All methods are called from one goroutine
// (the publisher's connection); implementations need no locking for that caller.
type Writer interface {
	// WriteMetadata passes on onMetaData; it may come late or never.
	WriteMetadata(m *Metadata) error
	// WriteTrack announces a track or a changed configuration (a new sequence header).
	WriteTrack(t *Track) error
	// WriteFrame takes one access unit of a track announced before.
	WriteFrame(f *Frame) error
	// Close ends the session: cause is nil for a normal unpublish, or why it ended.
	// The partial segment is flushed and published. Close is called exactly once.
	Close(cause error) error
}

// TrackOpener is implemented by a Writer that serves the other video tracks
// of an Enhanced RTMP multitrack publish as renditions of its stream.
// OpenTrack returns the Writer of video track id (1 to 255): a rendition of
// its own, video only, fed on the publish's timeline (the same DTS for the
// same instant as every track of the publish). Whoever opened it closes it,
// no later than the publish's own Writer.
type TrackOpener interface {
	OpenTrack(id uint8) (Writer, error)
}

// AudioTrackOpener is implemented by a Writer that serves the other audio
// tracks of an Enhanced RTMP multitrack publish as renditions of its stream.
// OpenAudioTrack returns the Writer of audio track id (1 to 255): an
// audio-only rendition cut where the publish's own segments are cut, fed on
// the publish's timeline. Whoever opened it closes it, no later than the
// publish's own Writer.
type AudioTrackOpener interface {
	OpenAudioTrack(id uint8) (Writer, error)
}
