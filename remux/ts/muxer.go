// Package ts writes MPEG-TS segments (ISO/IEC 13818-1) from remux frames. Each
// segment begins with PAT and PMT so it decodes on its own (RFC 8216 section 3.2).
//
// The muxer appends into the caller's buffer and keeps its small scratch state
// inside the Muxer, so steady-state muxing allocates nothing per frame.
package ts

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/remux"
)

// Fixed PIDs and program numbering, the values Apple's and ffmpeg's segmenters use,
// so that segments from different sessions look alike to players and CDNs.
const (
	PIDPAT        = 0x0000
	PIDPMT        = 0x1000
	PIDVideo      = 0x0100
	PIDAudio      = 0x0101
	ProgramNumber = 1

	StreamTypeH264    = 0x1B
	StreamTypeHEVC    = 0x24
	StreamTypeAACADTS = 0x0F
	// AC-3 and E-AC-3 use the ATSC stream types (A/52 Annex A), with a
	// registration descriptor ("AC-3", "EAC3"), as HLS's sample-encryption and
	// authoring specifications and ffmpeg's segmenter write them.
	StreamTypeAC3  = 0x81
	StreamTypeEAC3 = 0x87

	// PacketSize is the size of every TS packet this package writes.
	PacketSize = 188
)

// MaxFrameSize bounds Frame.Data. A larger access unit is refused rather than
// copied: the ingest side already bounds RTMP messages well below this, so a frame
// this big is a bug or an attack, not media.
const MaxFrameSize = 16 << 20

// ErrNoTrack is returned for a frame whose kind the muxer was not built with.
var ErrNoTrack = errors.New("ts: no track of this kind in muxer")

// ErrCodec is wrapped by the error for a frame of a codec MPEG-TS HLS does not
// carry (see Carries).
var ErrCodec = errors.New("ts: codec not carried in MPEG-TS")

// Carries reports whether MPEG-TS as HLS uses it defines a carriage for c and
// this package writes it: H.264, HEVC, AAC (ADTS), AC-3 and E-AC-3. AV1, VP9,
// Opus and FLAC have no HLS TS carriage, so a packager offers CMAF only for
// them; the muxer refuses their frames with ErrCodec.
func Carries(c remux.Codec) bool {
	switch c {
	case remux.CodecH264, remux.CodecHEVC, remux.CodecAAC, remux.CodecAC3, remux.CodecEAC3:
		return true
	}
	return false
}

// streamType is the PMT stream_type of a codec Carries.
func streamType(c remux.Codec) byte {
	switch c {
	case remux.CodecH264:
		return StreamTypeH264
	case remux.CodecHEVC:
		return StreamTypeHEVC
	case remux.CodecAAC:
		return StreamTypeAACADTS
	case remux.CodecAC3:
		return StreamTypeAC3
	case remux.CodecEAC3:
		return StreamTypeEAC3
	}
	return 0
}

// Muxer appends TS packets for one publish session's tracks. It is not safe for
// concurrent use.
type Muxer struct {
	video, audio *remux.Track
	pcrPID       uint16

	// psi holds the PAT and PMT packets, built once; only their continuity
	// counters change per segment.
	psi [2 * PacketSize]byte

	ccPAT, ccPMT, ccVideo, ccAudio uint8

	// Per-track caches rebuilt only when a frame arrives with a different *Track
	// (a new sequence header), so the frame path stays allocation-free.
	paramTrack *remux.Track
	paramSets  []byte // SPS then PPS, each after a 4-byte start code
	adtsTrack  *remux.Track
	adts       [7]byte // frame_length left zero; filled per frame
	adtsErr    error

	hdr [64]byte // PES header plus the first few Annex B bytes of one frame
	es  esReader
}

// NewMuxer returns a muxer for the given tracks; either may be nil, not both.
// With both nil the muxer still writes a valid (empty) PAT/PMT and refuses every
// frame with ErrNoTrack, because a constructor without an error cannot refuse.
// For the same reason a track of a codec TS does not carry (Carries false) is
// left out of the PMT as if nil, and its frames are refused with ErrCodec.
func NewMuxer(video, audio *remux.Track) *Muxer {
	if video != nil && !Carries(video.Codec) {
		video = nil
	}
	if audio != nil && !Carries(audio.Codec) {
		audio = nil
	}
	m := &Muxer{video: video, audio: audio, pcrPID: 0x1FFF}
	switch {
	case video != nil:
		m.pcrPID = PIDVideo
	case audio != nil:
		m.pcrPID = PIDAudio
	}
	m.buildPSI()
	return m
}

// AppendSegmentStart appends PAT and PMT; call it at the start of every segment.
func (m *Muxer) AppendSegmentStart(dst []byte) []byte {
	m.psi[3] = m.psi[3]&0xF0 | m.ccPAT
	m.psi[PacketSize+3] = m.psi[PacketSize+3]&0xF0 | m.ccPMT
	m.ccPAT = (m.ccPAT + 1) & 0x0F
	m.ccPMT = (m.ccPMT + 1) & 0x0F
	return append(dst, m.psi[:]...)
}

// AppendFrame appends the PES packets carrying f. f.Data is only read.
//
// Frames are routed by their track's kind, and the frame's own *Track supplies the
// SPS/PPS, NAL length size and ADTS fields, so a repeated or changed sequence
// header of the same codec needs no new muxer. On error dst is returned unchanged
// and no continuity counter moves.
//
// Timestamps: PTS and DTS are ms×90 exactly, masked to 33 bits. A negative DTS is
// clamped to 0, and a PTS before its DTS (negative CTS) is raised to the DTS,
// because a picture cannot be shown before it is decoded; this keeps the decode
// order intact at the cost of a shifted presentation time for such broken input.
func (m *Muxer) AppendFrame(dst []byte, f *remux.Frame) ([]byte, error) {
	if f == nil || f.Track == nil {
		return dst, errors.New("ts: frame without track")
	}
	if len(f.Data) > MaxFrameSize {
		return dst, fmt.Errorf("ts: %v frame at dts %d ms: %d bytes > limit %d", f.Track.Kind(), f.DTS, len(f.Data), MaxFrameSize)
	}
	if !Carries(f.Track.Codec) {
		return dst, fmt.Errorf("ts: %v frame at dts %d ms: %v: %w", f.Track.Kind(), f.DTS, f.Track.Codec, ErrCodec)
	}
	dts, pts := timestamps90k(f.DTS, f.CTS)
	switch f.Track.Kind() {
	case remux.KindVideo:
		if m.video == nil {
			return dst, fmt.Errorf("ts: video frame at dts %d ms: %w", f.DTS, ErrNoTrack)
		}
		if f.Track.Codec != m.video.Codec {
			return dst, fmt.Errorf("ts: video frame at dts %d ms: codec %v, the PMT says %v: %w", f.DTS, f.Track.Codec, m.video.Codec, ErrCodec)
		}
		total, err := m.prepareH264(f, dts, pts)
		if err != nil {
			return dst, fmt.Errorf("ts: video frame at dts %d ms: %w", f.DTS, err)
		}
		return m.appendPES(dst, PIDVideo, &m.ccVideo, total, m.pcrPID == PIDVideo, dts, f.Key), nil
	case remux.KindAudio:
		if m.audio == nil {
			return dst, fmt.Errorf("ts: audio frame at dts %d ms: %w", f.DTS, ErrNoTrack)
		}
		if f.Track.Codec != m.audio.Codec {
			return dst, fmt.Errorf("ts: audio frame at dts %d ms: codec %v, the PMT says %v: %w", f.DTS, f.Track.Codec, m.audio.Codec, ErrCodec)
		}
		var total int
		var err error
		if f.Track.Codec == remux.CodecAAC {
			total, err = m.prepareAAC(f, pts)
		} else {
			total, err = m.prepareAC3(f, pts)
		}
		if err != nil {
			return dst, fmt.Errorf("ts: audio frame at dts %d ms: %w", f.DTS, err)
		}
		// Audio PES starts are marked random access only where they carry the PCR
		// (audio-only): next to video it would cost an adaptation field per frame
		// and players seek on video keyframes anyway.
		pcr := m.pcrPID == PIDAudio
		return m.appendPES(dst, PIDAudio, &m.ccAudio, total, pcr, pts, pcr && f.Key), nil
	}
	return dst, fmt.Errorf("ts: frame at dts %d ms: codec %v: %w", f.DTS, f.Track.Codec, ErrNoTrack)
}

// timestamps90k converts millisecond DTS and CTS to 33-bit 90 kHz DTS and PTS.
func timestamps90k(dtsMs int64, cts int32) (dts, pts uint64) {
	if dtsMs < 0 {
		dtsMs = 0
	}
	ptsMs := dtsMs + int64(cts)
	if ptsMs < dtsMs { // negative CTS, or overflow near MaxInt64
		ptsMs = dtsMs
	}
	// int64 multiplication wraps modulo 2^64, and 2^33 divides 2^64, so masking the
	// wrapped product still yields ms×90 modulo 2^33.
	const mask = 1<<33 - 1
	return uint64(dtsMs*90) & mask, uint64(ptsMs*90) & mask
}
