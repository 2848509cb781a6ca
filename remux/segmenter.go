package remux

import "time"

// Segmenter defaults, used when the corresponding field is zero.
const (
	DefaultSegmentTarget   = 2 * time.Second
	DefaultSegmentMaxDur   = 10 * time.Second
	DefaultSegmentMaxBytes = 32 << 20
)

// CutReason says why a segment starts before a frame.
type CutReason uint8

const (
	CutNone     CutReason = iota // the frame continues the open segment
	CutStart                     // the first frame after NewSegmenter or Reset opens a segment
	CutTarget                    // the target was reached at a sync point: video keyframe, or any audio frame when there is no video
	CutDuration                  // forced: keeping the frame would let the segment run past MaxDuration
	CutBytes                     // forced: the frame would push the segment's media past MaxBytes
)

func (r CutReason) String() string {
	switch r {
	case CutNone:
		return "none"
	case CutStart:
		return "start"
	case CutTarget:
		return "target"
	case CutDuration:
		return "max-duration"
	case CutBytes:
		return "max-bytes"
	}
	return "unknown"
}

// Decision is the Segmenter's verdict for one frame.
type Decision struct {
	Reason CutReason
	// Independent reports that the frame opening the new segment is a sync point
	// (a video keyframe, or an audio frame when the session has no video), so the
	// segment decodes without its predecessor. Always true for CutTarget.
	Independent bool
	// Regrid reports, with Segmenter.Grid, that the segment this frame opens
	// anchors a new grid: the previous grid ended with the segment before it
	// (see the Grid rule).
	Regrid bool
}

// Cuts reports whether a new segment starts with the frame.
func (d Decision) Cuts() bool { return d.Reason != CutNone }

// Forced reports a cut made by a hard limit rather than at the target.
func (d Decision) Forced() bool { return d.Reason == CutDuration || d.Reason == CutBytes }

// Segmenter decides, frame by frame, where segments start. It is pure logic: no
// I/O, no goroutines, no allocation. The zero value plus Video is ready to use
// (zero limits take the defaults); it is not safe for concurrent use.
//
// Rules, checked in this order for every frame after the first:
//
//   - Target: with video, a new segment starts at the first video keyframe whose
//     DTS is at or after the segment's first DTS + Target, less half a frame
//     interval. Without video, at the first frame at or after that time (with the
//     same tolerance). RTMP timestamps are whole milliseconds: a 2 s GOP at 30 fps
//     can put a keyframe at 1.999 s, and a strict comparison would skip it and
//     force a mid-GOP cut at the cap instead.
//
//   - MaxDuration: a frame is cut into a new segment when its DTS plus its
//     track's last frame interval would end past segment start + MaxDuration.
//     A segment's duration is the next segment's first DTS minus its own, so
//     looking one frame interval ahead keeps every segment at or under
//     MaxDuration as long as each track's frame interval does not grow (a
//     publisher that pauses mid-segment can still overrun it by the pause).
//     With video, the frame that makes this cut is a video frame (see overruns).
//
//   - MaxBytes: a frame is cut into a new segment when the segment's media bytes
//     (sum of len(Frame.Data)) would exceed MaxBytes. A segment always takes its
//     first frame, whatever its size, so segments are never empty.
//
//   - Grid (with Grid set): the first segment of a zero Segmenter or after
//     Regrid anchors a grid; its duration D becomes the grid's nominal segment
//     duration. Segment n of the grid (0 for the first) then nominally starts
//     at anchor + n*D, and the Target rule cuts at the first sync point at or
//     after that instant, less half a frame interval, instead of one Target
//     after the segment's own start: segment starts stay near the grid however
//     irregular the GOP, instead of drifting by each segment's excess. A video
//     keyframe less than D/2 before the nominal start is taken too when the
//     next, one GOP (the last keyframe interval) later, would come more than
//     D/2 after it or past MaxDuration: after an encoder's scene-cut keyframe
//     its GOPs are shifted, and waiting would force a cut off a keyframe. A frame
//     after which the next would start a segment more than D/2 past its nominal
//     start is cut there even off a sync point (CutDuration): ISO/IEC 23009-1
//     and the DASH-IF timing model allow a segment's true edges to deviate
//     from the nominal ones by at most half of @duration. A cut made elsewhere
//     (MaxBytes, or MaxDuration when D is short of it) that lands more than D/2
//     from the next nominal start re-anchors the grid there and says so
//     (Decision.Regrid): the nominal numbering no longer fits the segments.
//
// How forced cuts meet HLS's EXT-X-TARGETDURATION: RFC 8216 requires every
// EXTINF, rounded to the nearest integer, to be at or under the target duration,
// and the target cannot change for the life of a playlist. A packager that has
// fixed a target of T seconds sets MaxDuration to T s + 499 ms: any segment not
// longer than that rounds to at most T. Such a forced cut lands wherever the
// duration runs out, usually not on a keyframe: that segment (Independent ==
// false) starts mid-GOP, and players need its predecessor to decode its first
// frames. It only happens when the publisher's GOP is longer than T, so the
// packager chooses T from the first real segment to keep it rare.
type Segmenter struct {
	Target      time.Duration // cut at the first sync point this long after the segment start; default 2 s
	MaxDuration time.Duration // hard cap on a segment's duration; default 10 s
	MaxBytes    int           // hard cap on a segment's media bytes; default 32 MiB
	Video       bool          // the session has a video track: cut only at video keyframes
	// Grid has cuts follow a nominal grid (low-latency DASH's
	// SegmentTemplate@duration): see the Grid rule above.
	Grid bool

	open       bool
	start      int64 // first DTS of the open segment, ms
	bytes      int   // media bytes in the open segment
	frames     int   // frames in the open segment
	lastVideo  int64 // last DTS seen per kind, for the frame interval
	lastAudio  int64
	stepVideo  int64 // last positive DTS interval per kind, ms; 0 while unknown
	stepAudio  int64
	seenVideo  bool
	seenAudio  bool
	segmentEnd int64 // largest DTS + interval seen in the open segment

	gridStart int64 // first DTS of the grid's first segment
	gridDur   int64 // the grid's nominal segment duration, ms; 0 until its first segment closed
	gridN     int64 // segments opened on the grid: the next one's nominal start is gridStart + gridN*gridDur
	lastKey   int64 // DTS of the last video keyframe
	keyGap    int64 // the last interval between video keyframes, ms; 0 while unknown
	seenKey   bool

	// Composition offsets of the first video keyframe of the open segment and
	// of the grid's anchor segment: keyframes are compared by presentation
	// time (see Push).
	segKeyCTS, gridKeyCTS int64
	segHasKey, gridHasKey bool
}

// Reset forgets the open segment: the next frame opens a new one (CutStart).
// Frame interval estimates are kept.
func (s *Segmenter) Reset() {
	s.open = false
	s.bytes = 0
	s.frames = 0
}

// Regrid anchors a new grid at the open segment, or without one at the next
// segment to open: it is the grid's first, and its duration will be the grid's
// nominal one. A packager calls it where it starts a new timeline (a
// discontinuity); Reset alone keeps the grid.
func (s *Segmenter) Regrid() {
	s.gridN, s.gridDur, s.gridHasKey = 0, 0, false
	if s.open {
		s.gridStart, s.gridN = s.start, 1
		s.gridKeyCTS, s.gridHasKey = s.segKeyCTS, s.segHasKey
	}
}

// GridDuration is the nominal segment duration of the current grid, ms; 0 while
// its first segment is open or without Grid.
func (s *Segmenter) GridDuration() int64 { return s.gridDur }

// Start is the first DTS of the open segment (ms); valid once a frame was pushed.
func (s *Segmenter) Start() int64 { return s.start }

// Frames is the number of frames in the open segment.
func (s *Segmenter) Frames() int { return s.frames }

// Bytes is the media bytes in the open segment.
func (s *Segmenter) Bytes() int { return s.bytes }

// End estimates where the open segment's media ends (ms): the largest DTS in it
// plus that track's frame interval. It is the duration source for a last segment,
// which has no successor to measure against.
func (s *Segmenter) End() int64 { return s.segmentEnd }

// Step is the last positive DTS interval (ms) seen for a kind, 0 if unknown.
func (s *Segmenter) Step(k Kind) int64 {
	if k == KindVideo {
		return s.stepVideo
	}
	return s.stepAudio
}

// Push decides whether a new segment starts with f and accounts f into the
// segment it belongs to. f.Data is only measured. A nil frame or track is
// treated as an audio frame with no payload so that bad input cannot panic.
func (s *Segmenter) Push(f *Frame) Decision {
	var (
		dts, cts int64
		size     int
		key      bool
		kind     = KindAudio
	)
	if f != nil {
		dts, cts, size, key = f.DTS, int64(f.CTS), len(f.Data), f.Key
		if f.Track != nil && f.Track.Kind() == KindVideo {
			kind = KindVideo
		}
	}
	step := s.observe(kind, dts)

	d := Decision{Independent: !s.Video || (kind == KindVideo && key)}
	// A keyframe is judged by its presentation time relative to the keyframe
	// that opened the segment (or the grid): encoders with B-frames give the
	// first keyframe a larger composition offset than later ones (x265: 80 ms,
	// then 120 ms at 25 fps), so decode times put a 2 s GOP's keyframe 40 ms
	// short of 2 s, and the Target rule would skip it for a 4 s segment.
	atSeg, atGrid := dts, dts
	if kind == KindVideo && key {
		if s.segHasKey {
			atSeg = dts + cts - s.segKeyCTS
		}
		if s.gridHasKey {
			atGrid = dts + cts - s.gridKeyCTS
		}
	}
	due := atSeg+step/2 >= s.start+s.target() // the Target rule
	next := int64(0)                          // with a grid: the next segment's nominal start
	if s.Grid && s.gridDur > 0 {
		next = s.gridStart + s.gridN*s.gridDur
		// A keyframe within the tolerance before the nominal start is taken
		// when the next one, a GOP like the last later, would come past the
		// tolerance or the cap (an encoder's scene-cut keyframe shifts its
		// GOPs). Otherwise, and always without video, the cut waits for the
		// nominal start, so segment starts do not drift.
		half := s.gridDur / 2
		early := s.Video && kind == KindVideo && key && s.keyGap > 0 && dts >= next-half &&
			(dts+s.keyGap > next+half || dts+s.keyGap-s.start > s.maxDuration())
		due = atGrid+step/2 >= next || early
	}
	if kind == KindVideo && key {
		if s.seenKey && dts > s.lastKey {
			s.keyGap = dts - s.lastKey
		}
		s.lastKey, s.seenKey = dts, true
	}
	switch {
	case !s.open:
		d.Reason = CutStart
	case d.Independent && due:
		d.Reason = CutTarget
	case s.overruns(kind, dts, step):
		d.Reason = CutDuration
	case s.bytes+size > s.maxBytes() || s.bytes+size < s.bytes: // the second test catches overflow
		d.Reason = CutBytes
	case s.Grid && s.gridDur > 0 && dts >= next && dts+step > next+s.gridDur/2 && (!s.Video || kind == KindVideo):
		d.Reason = CutDuration // the next frame would open the segment past the tolerance
	}
	if s.Grid && d.Reason != CutNone {
		switch {
		case s.gridN == 0: // the first segment since NewSegmenter or Regrid anchors the grid
			s.gridStart, s.gridN, s.gridDur, s.gridHasKey = dts, 1, 0, false
		case s.gridDur == 0 && (d.Reason == CutTarget || d.Reason == CutDuration):
			s.gridDur = atGrid - s.gridStart // the grid's first segment closed: its duration is D
			s.gridN++
		case s.gridDur > 0 && atGrid >= next-s.gridDur/2 && atGrid <= next+s.gridDur/2:
			s.gridN++
		default:
			s.gridStart, s.gridN, s.gridDur, s.gridHasKey = dts, 1, 0, false
			d.Regrid = true
		}
	}
	if d.Reason != CutNone {
		s.open = true
		s.start = dts
		s.bytes = 0
		s.frames = 0
		s.segmentEnd = dts
		s.segHasKey = false
	}
	if kind == KindVideo && key {
		if !s.segHasKey {
			s.segKeyCTS, s.segHasKey = cts, true
		}
		if !s.gridHasKey {
			s.gridKeyCTS, s.gridHasKey = cts, true
		}
	}
	s.bytes += size
	s.frames++
	if end := dts + step; end > s.segmentEnd {
		s.segmentEnd = end
	}
	return d
}

// overruns reports whether keeping a frame would let the open segment run past
// MaxDuration, looking one frame interval ahead plus 1 ms: RTMP timestamps are
// whole milliseconds, so a 30 fps track steps 33, 33, 34 and the last interval
// can underestimate the next by one.
//
// With video only a video frame makes that cut, and it also leaves room for one
// audio frame: each track's part of a segment (its CMAF fragment, and the EXTINF
// of its rendition) runs from the track's first frame in the segment to its first
// frame after the cut. A cut made on an audio frame let the video fragment run to
// the next video frame, and a video cut that left no room let the audio fragment
// run one audio frame past the cap (2.500 s and 2.508 s under a 2.499 s cap were
// seen, which round above the target). Audio alone cuts only when video has
// paused (no video frame for a quarter of the cap) or never came, or when the
// frame itself lies past the cap.
func (s *Segmenter) overruns(k Kind, dts, step int64) bool {
	if dts-s.start > s.maxDuration() {
		return true
	}
	ahead := step + 1
	if s.Video && k == KindVideo {
		ahead += s.stepAudio
	}
	if dts-s.start+ahead <= s.maxDuration() {
		return false
	}
	return !s.Video || k == KindVideo || !s.seenVideo || dts-s.lastVideo > s.maxDuration()/4
}

// observe updates the per-kind frame interval and returns the current estimate.
func (s *Segmenter) observe(k Kind, dts int64) int64 {
	last, step, seen := &s.lastAudio, &s.stepAudio, &s.seenAudio
	if k == KindVideo {
		last, step, seen = &s.lastVideo, &s.stepVideo, &s.seenVideo
	}
	if *seen && dts > *last {
		d := dts - *last
		// An interval longer than the whole segment budget is a pause or a
		// timestamp jump, not a frame rate: do not let it shorten every later
		// segment.
		if d <= s.maxDuration()/4 {
			*step = d
		}
	}
	*last, *seen = dts, true
	return *step
}

func (s *Segmenter) target() int64 {
	if s.Target <= 0 {
		return DefaultSegmentTarget.Milliseconds()
	}
	return s.Target.Milliseconds()
}

func (s *Segmenter) maxDuration() int64 {
	if s.MaxDuration <= 0 {
		return DefaultSegmentMaxDur.Milliseconds()
	}
	return s.MaxDuration.Milliseconds()
}

func (s *Segmenter) maxBytes() int {
	if s.MaxBytes <= 0 {
		return DefaultSegmentMaxBytes
	}
	return s.MaxBytes
}

// PartPlan is what a track's part decision needs to know about its open segment.
type PartPlan struct {
	Target     time.Duration // PART-TARGET: no part runs longer
	PartStart  int64         // first DTS of the open part, ms
	PartKey    bool          // the open part starts with a sync sample
	PartFrames int           // frames in the open part
	Parts      int           // parts already cut in the segment
	Frames     int           // frames already in the segment (the open part's too)
	Expect     int           // frames the segment is expected to hold (its predecessor's count); 0 when unknown
	FullPart   int           // frames a full part holds at the track's mean frame interval (its last segment's); 0 when unknown
	Sync       bool          // every frame of the track is a sync sample (audio)
}

// FullPart is how many frames of a track whose last segment held frames over
// dur ms fit in a part of target: 0 when that is not known. The segment's
// whole-millisecond end gives a 0.15 ms slack per frame's share: 60 frames of
// 30 fps measured over 2001 ms fit six to a 200 ms part (floored without it,
// five: twelve 167 ms parts a segment), while 29.97 fps (6 frames 200.2 ms)
// keeps five.
func FullPart(target time.Duration, frames int, dur int64) int {
	if frames < 2 || dur <= 0 {
		return 0
	}
	return int((target.Microseconds() + 150) * int64(frames) / (dur * 1000))
}

// PartDue reports whether a frame at dts starts a new part of its track, whose
// frames last step ms. A part always takes its first frame, so a frame longer
// than the target makes a part of its own.
//
// A part is cut when the frame would take it past the target. Looking one
// frame ahead with the last interval alone (as MaxDuration does for segments)
// misjudges RTMP's whole-millisecond timestamps: 30 fps steps 33, 34, 33 ms, and
// six frames that span exactly 200 ms looked like 201 after a 34 ms step, so a
// part of five frames was cut, and a 60-frame segment ended in a one-frame part.
// Where the track's mean interval is known (FullPart) a part holds that many
// frames, and the one-frame look-ahead only guards against a slower frame rate,
// with a millisecond of slack for that rounding.
//
// A part is also cut earlier so that the segment's expected frames spread
// evenly over its parts: with the target rule alone, 48 kHz AAC (94 frames of
// 21.3 ms in 2 s) made ten 192 ms parts and a 43 to 85 ms sliver at the end of
// every segment, and a one-frame last part stalled hls.js 1.7.4's loader at the
// segment boundary. Tracks whose every frame is a sync sample (audio, cut at the
// video's keyframes, so its count varies by a frame or two) are cut into the
// parts one frame more than expected needs, with two more spread over them
// where those parts have room, so a segment up to two frames longer still ends
// in a part of several frames. A short last part is also what hls.js 1.7.4
// loses: when a segment's completion reaches it while it still appends the
// part before, its fragment tracker (which pads buffered ranges by 200 ms)
// counts the whole segment buffered and never loads the last part.
// RFC 8216bis 4.4.4.9 wants every part but a segment's last and those with
// INDEPENDENT=YES at least 85% of the target: a part that does not start with a
// sync sample is not cut short of that. Parts are cut per track: audio frames do
// not line up with video ones.
func PartDue(p PartPlan, dts, step int64) bool {
	if dts <= p.PartStart {
		return false
	}
	t := p.Target.Milliseconds()
	m := int64(p.FullPart)
	if m > 0 {
		if int64(p.PartFrames) >= m || dts-p.PartStart+max(step, 0) > t+1 {
			return true
		}
	} else {
		if dts-p.PartStart+max(step, 0) > t {
			return true
		}
		if step <= 0 {
			return false
		}
		m = t / step
	}
	if p.Expect <= 0 || m < 1 {
		return false
	}
	if !p.Sync && !p.PartKey && (dts-p.PartStart)*100 < 85*t {
		return false
	}
	n := int64(p.Expect)
	if p.Sync {
		n++
	}
	parts := (n + m - 1) / m // fewest parts that hold n frames
	if p.Sync {
		n = min(n+1, parts*m) // room for one frame more, where the parts have it
	}
	k := int64(p.Parts) + 1 // the boundary that closes the open part
	if k >= parts {
		return false // the last part runs to the segment's end
	}
	return int64(p.Frames) >= (2*k*n+parts)/(2*parts) // round(k*n/parts) frames before it
}
