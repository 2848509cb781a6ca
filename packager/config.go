// Package packager keeps the live streams: a registry of publish keys (Hub), each
// stream's window of segments and its playlists (Stream), and the per-publish
// writer that turns frames into segments (returned by Hub.Publish).
//
// Every segment is cut once and stored once in two containers: MPEG-TS for the
// TS HLS playlist (ts/index.m3u8), and one CMAF fragment per track that the fMP4
// HLS playlists (index.m3u8, v/index.m3u8, a/index.m3u8) and the DASH MPD
// (index.mpd) all list, under the same media sequence numbers.
//
// Readers never block writers: every change to a stream swaps in an immutable
// Snapshot through an atomic pointer, with the playlist rendered once per change.
// The only goroutine is the hub's janitor, which evicts ended streams after the
// linger time and enforces the store budget.
package packager

import (
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
)

// Config bounds and tunes a Hub. Zero fields take the default beside them.
type Config struct {
	SegmentDuration    time.Duration    // target; segments are cut at the first keyframe at or after it; default 2 s
	MaxSegmentDuration time.Duration    // hard cap before the playlist's target duration is fixed, default 10 s
	MaxSegmentBytes    int              // TS bytes in one segment, default 32 MiB
	WindowSegments     int              // segments listed in a live playlist, default 6
	Linger             time.Duration    // how long an ended stream stays served, default 30 s
	TakeoverAfter      time.Duration    // a live publisher silent this long loses its key to a newcomer, default 3 s
	TrackWait          time.Duration    // media time to wait for the second track's sequence header, default 1 s
	MaxStreams         int              // streams held at once, live or lingering, default 1000
	MaxStoreBytes      int64            // all streams' segment bytes, default 4 GiB
	Now                func() time.Time // for tests; time.Now if nil

	// PendingBytes caps the frame bytes buffered while waiting for the second
	// track's sequence header; reaching it ends the wait. Default 8 MiB.
	PendingBytes int
	// SweepInterval is how often the janitor runs; default 1 s.
	SweepInterval time.Duration

	// PartTarget is the longest CMAF part (LL-HLS partial segment, low-latency
	// DASH chunk) cut inside a segment, except that a single frame longer than
	// it makes a part of its own. Default 200 ms; at least 50 ms.
	PartTarget time.Duration
	// DisableLowLatency turns parts off: one CMAF chunk per segment and the
	// classic fMP4 playlists and MPD, without LL-HLS tags or chunked DASH.
	DisableLowLatency bool

	// Variants are the stream name suffixes that make up a ladder (Hub.Ladder):
	// with "_hi" and "_lo", live/demo_hi and live/demo_lo are served together
	// at live/demo. Empty: no ladders.
	Variants []string
}

// Defaults for the Config fields.
const (
	DefaultSegmentDuration    = remux.DefaultSegmentTarget
	DefaultMaxSegmentDuration = remux.DefaultSegmentMaxDur
	DefaultMaxSegmentBytes    = remux.DefaultSegmentMaxBytes
	DefaultWindowSegments     = 6
	DefaultLinger             = 30 * time.Second
	DefaultTakeoverAfter      = 3 * time.Second
	DefaultTrackWait          = time.Second
	DefaultMaxStreams         = 1000
	DefaultMaxStoreBytes      = 4 << 30
	DefaultPendingBytes       = 8 << 20
	DefaultSweepInterval      = time.Second
	DefaultPartTarget         = 200 * time.Millisecond
	// MinPartTarget keeps parts from becoming so short that the per-part
	// overhead (moof, playlist renders, requests) dominates.
	MinPartTarget = 50 * time.Millisecond

	// pendingFrames caps the number of frames buffered while waiting for a track,
	// whatever their size.
	pendingFrames = 4096
)

func (c Config) withDefaults() Config {
	if c.SegmentDuration <= 0 {
		c.SegmentDuration = DefaultSegmentDuration
	}
	if c.MaxSegmentDuration <= 0 {
		c.MaxSegmentDuration = DefaultMaxSegmentDuration
	}
	// A cap below the target would force every cut; the target wins.
	if c.MaxSegmentDuration < c.SegmentDuration {
		c.MaxSegmentDuration = c.SegmentDuration
	}
	if c.MaxSegmentBytes <= 0 {
		c.MaxSegmentBytes = DefaultMaxSegmentBytes
	}
	if c.WindowSegments <= 0 {
		c.WindowSegments = DefaultWindowSegments
	}
	if c.Linger <= 0 {
		c.Linger = DefaultLinger
	}
	if c.TakeoverAfter <= 0 {
		c.TakeoverAfter = DefaultTakeoverAfter
	}
	if c.TrackWait <= 0 {
		c.TrackWait = DefaultTrackWait
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.MaxStoreBytes <= 0 {
		c.MaxStoreBytes = DefaultMaxStoreBytes
	}
	if c.PendingBytes <= 0 {
		c.PendingBytes = DefaultPendingBytes
	}
	if c.SweepInterval <= 0 {
		c.SweepInterval = DefaultSweepInterval
	}
	if c.PartTarget <= 0 {
		c.PartTarget = DefaultPartTarget
	}
	c.PartTarget = min(max(c.PartTarget, MinPartTarget), c.SegmentDuration)
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
