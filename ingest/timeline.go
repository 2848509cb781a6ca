package ingest

// Timestamp repair bounds. RTMP timestamps are 32-bit milliseconds; encoders wrap
// them (after 49.7 days), restart them (reconnecting sources behind a relay) and
// jitter them by a few ms (audio and video interleaving).
const (
	// maxBackwardClamp: a step back up to this many ms is jitter: the frame gets
	// the previous DTS and the clamp is counted.
	maxBackwardClamp = 1000
	// maxForwardJump: a step forward beyond this many ms is a discontinuity, not
	// a pause the timeline should show.
	maxForwardJump = 10_000
	// defaultStep is the step a discontinuity gets when the track has no usable
	// previous step (ms, about one video frame).
	defaultStep = 33
)

// timeline turns one publish session's 32-bit RTMP timestamps into a monotonic
// 64-bit millisecond timeline.
//
// Each track unwraps its own 32-bit timestamps (a step is the signed 32-bit
// difference, so a rollover at 2^32 is an ordinary small step forward). The
// result is shifted by one offset shared by all tracks:
//   - a step back of up to maxBackwardClamp ms is clamped to the track's last DTS
//     and counted in Clamped;
//   - a larger step back, or a step forward beyond maxForwardJump, moves the shared
//     offset so that this frame lands one usual step after the track's last DTS,
//     and is counted in Jumps. Because the offset is shared and the other track
//     usually jumps at the same point, audio and video keep their relative offset.
//
// An Enhanced RTMP message's ModEx TimestampOffsetNano (0 to 999999 ns) is
// applied before this, by rounding the message timestamp to the nearest
// millisecond (conn_media.go): a frame lands at most 0.5 ms from its true time,
// the error never accumulates, and the timeline stays in milliseconds as
// remux.Frame is.
type timeline struct {
	shift   int64
	tracks  [2]trackClock
	Clamped int
	Jumps   int
}

type trackClock struct {
	seen    bool
	last32  uint32
	unwrap  int64 // the track's unwrapped timestamp, before shift
	lastDTS int64
	step    int64 // last forward step, used to bridge a discontinuity
}

// dts maps a message timestamp of track (0 video, 1 audio) to the timeline.
func (t *timeline) dts(track int, ts uint32) int64 { return t.dtsOn(&t.tracks[track], ts) }

// dtsOn maps a message timestamp of the track whose clock is c to the
// timeline: a multitrack publish's other video tracks keep clocks of their
// own (their messages interleave with track 0's, a frame late or early) on
// the shared offset.
func (t *timeline) dtsOn(c *trackClock, ts uint32) int64 {
	if !c.seen {
		c.seen = true
		c.last32 = ts
		c.unwrap = int64(ts)
		c.lastDTS = c.unwrap + t.shift
		return c.lastDTS
	}
	c.unwrap += int64(int32(ts - c.last32))
	c.last32 = ts
	dts := c.unwrap + t.shift
	d := dts - c.lastDTS
	switch {
	case d >= 0 && d <= maxForwardJump:
		if d > 0 {
			c.step = d
		}
	case d < 0 && d >= -maxBackwardClamp:
		t.Clamped++
		dts = c.lastDTS
	default:
		step := c.step
		if step <= 0 || step > maxBackwardClamp {
			step = defaultStep
		}
		t.Jumps++
		t.shift += c.lastDTS + step - dts
		dts = c.lastDTS + step
	}
	c.lastDTS = dts
	return dts
}
