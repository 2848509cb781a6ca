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
)

func (c Codec) String() string {
	switch c {
	case CodecH264:
		return "H264"
	case CodecAAC:
		return "AAC"
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
	case CodecH264:
		return KindVideo
	case CodecAAC:
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
	Codec     Codec  // CodecH264 or CodecAAC
	Timescale uint32 // media timescale for container output: 90000 for video, the sample rate for audio
	Config    []byte // codec configuration record: avcC for H.264, AudioSpecificConfig for AAC

	// CodecString is the RFC 6381 codecs value, e.g. "avc1.64001f" or "mp4a.40.2".
	CodecString string

	// Video, derived once from the SPS.
	Width, Height  int
	NALULengthSize int      // 1, 2 or 4: the length prefix of each NAL unit in Frame.Data
	SPS, PPS       [][]byte // parameter sets from avcC, without length prefixes

	// Audio, derived once from the AudioSpecificConfig.
	AudioObjectType int // 2 for AAC-LC
	SampleRate      int // Hz
	Channels        int
}

// Kind is the track's kind, from its codec.
func (t *Track) Kind() Kind { return t.Codec.Kind() }

// Frame is one access unit.
//
// Timestamps are milliseconds on the publish session's monotonic 64-bit timeline
// (RTMP's 32-bit timestamps already unwrapped by ingest). PTS = DTS + CTS.
//
// Data is valid only during the call that receives the Frame; a consumer that keeps
// it copies it. H.264 data stays length-prefixed (Track.NALULengthSize bytes per NAL
// unit), as FLV carries it and MP4 stores it; AAC data is one raw access unit
// without ADTS header.
type Frame struct {
	Track *Track
	DTS   int64
	CTS   int32
	Key   bool // a sync sample: an IDR access unit for video; true for every AAC frame
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
