// Package manifest renders a stream's HLS media playlists (classic and
// low-latency), its multivariant playlist and its DASH MPD. Every function is
// pure: it reads a View, plain data the packager builds when it publishes a
// snapshot and never changes afterwards, and appends the document to dst. It
// takes no lock and keeps no state, so a document can be rendered from any
// snapshot, by any goroutine, at any time after it was published.
package manifest

import (
	"math"
	"math/bits"
	"strconv"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
)

// Renditions: the CMAF tracks index Segment.Init, Segment.Frag, Segment.Parts
// and the like; TS selects the MPEG-TS media playlist in MediaPlaylist.
const (
	Video = 0
	Audio = 1
	TS    = -1
)

// TrackDir is the path prefix of a CMAF rendition, relative to the stream: "v/"
// or "a/".
var TrackDir = [2]string{"v/", "a/"}

// Paths of the fMP4 media playlists relative to the stream, as the
// multivariant playlist refers to them.
const (
	VideoPlaylistPath = "v/index.m3u8"
	AudioPlaylistPath = "a/index.m3u8"
)

// OriginPlaceholder stands in the MPD's UTCTiming URL ("ORIGIN/time") for the
// scheme and host a request came to; the HTTP server replaces it per request.
const OriginPlaceholder = "ORIGIN"

// View is what a stream's documents are rendered from: the playlist window
// and the state around it at one instant. Everything it points to is immutable
// once a View holds it, with one exception kept by design: a Period's End
// grows with its segments, and the MPD reads it only for an ended stream,
// whose last Period takes no more segments.
type View struct {
	Epoch    string     // in every segment and part name
	Window   []*Segment // the segments listed, oldest first
	NextMSN  uint64     // media sequence number of the segment being produced
	DiscSeq  uint64     // EXT-X-DISCONTINUITY-SEQUENCE
	Target   int64      // EXT-X-TARGETDURATION, s; 0 until the first segment closes
	Live     bool       // a publisher is on the stream
	Ended    bool       // the playlists carry EXT-X-ENDLIST; the MPD is static
	DiscNext bool       // the next segment follows a republish or takeover
	// Open is the segment being produced; nil when none or no publisher.
	Open *Open
	// AST is the MPD's availabilityStartTime; PublishTime its publishTime.
	AST, PublishTime time.Time
	Rates            Rates
	// LowLatency is the configuration's: parts, LL-HLS tags and the
	// low-latency MPD while a publisher is on. PartTarget is the part duration
	// aimed at (EXT-X-PART-INF's PART-TARGET).
	LowLatency bool
	PartTarget time.Duration
	// SegmentDuration is the configured segment duration; it sizes buffers only.
	SegmentDuration time.Duration
	// Reports are the rendition reports of the other streams' media
	// playlists of the ladder the stream belongs to, appended to its LL-HLS
	// media playlists after the report of its own other track; none for a
	// stream of no ladder.
	Reports []Report
}

// Report is an EXT-X-RENDITION-REPORT (RFC 8216bis 4.4.5.4): another media
// playlist of the same multivariant playlist, with its last part.
type Report struct {
	URI  string // relative to the reporting playlist
	MSN  uint64 // LAST-MSN
	Part int    // LAST-PART
}

// Segment is one listed media segment: the MPEG-TS segment and, cut at the same
// instant, one CMAF fragment per track.
type Segment struct {
	Seq  uint64    // media sequence number, shared by the TS segment and the fragments
	Name string    // the TS segment's URI, relative to its playlist
	DTS  int64     // first DTS, ms on the session timeline
	Dur  int64     // media duration, ms
	PDT  time.Time // wall time of the first frame
	Disc bool      // preceded by EXT-X-DISCONTINUITY
	Ends bool      // the last segment of its DASH Period
	// Init is the track set's header per track (nil where the set has no such
	// track or CMAF could not describe it); Frag is nil where the track had no
	// sample in the segment; Parts are its LL-HLS parts (none without low latency).
	Init   [2]*Init
	Frag   [2]*Fragment
	Parts  [2][]*Part
	Period *Period // the DASH Period listing it; nil without CMAF
}

// HasCMAF reports whether the segment belongs to a track set with CMAF output.
func (s *Segment) HasCMAF() bool { return s.Init[Video] != nil || s.Init[Audio] != nil }

// Fragment is one track's CMAF fragment of a segment.
type Fragment struct {
	Name string // "<epoch>-<msn>.m4s", relative to the track's playlist
	T, D uint64 // earliest presentation time and duration in the track timescale
	Dur  int64  // decode-time duration, ms, for EXTINF
	EPT  int64  // earliest presentation time on the session timeline, ms
	Key  bool   // the first sample is a sync sample
}

// Init is one track's CMAF header (ftyp + moov).
type Init struct {
	Name  string // "init-<epoch>-<gen>.mp4", relative to the track's playlist
	Path  string // TrackDir + Name, relative to the stream (the MPD's initialization)
	Track *remux.Track
}

// Part is one track's CMAF chunk (moof + mdat): an LL-HLS partial segment and a
// low-latency DASH chunk. Its name is PartName of its segment's media sequence
// number and its index there.
type Part struct {
	Data  []byte // its bytes; the renders do not read them
	Start int64  // first DTS, ms
	Dur   int64  // ms
	Indep bool   // decodes without earlier parts: a video part opening on a keyframe; every audio part
}

// Open is the segment being produced: the parts cut so far, per track.
type Open struct {
	Disc  bool     // follows a discontinuity
	Init  [2]*Init // the track set
	Parts [2][]*Part
}

// Period is one DASH Period: the segments of one publish session and track set
// with a continuous timeline. Everything but End is fixed when it opens, so the
// MPD never rewrites a Period it listed.
type Period struct {
	ID    string
	Start int64    // ms from the MPD's availabilityStartTime
	PTO   int64    // media time of the start on the session timeline, ms (presentationTimeOffset)
	End   int64    // largest media end of its segments and fragments so far, ms
	Init  [2]*Init // the track set
	Epoch string   // fragment names: "<epoch>-$Number$.m4s"
	First uint64   // media sequence number of its first segment: startNumber
	Dur   int64    // its first segment's duration, ms: the nominal one of the segment grid
}

// Rates are bitrates measured over the window, bits/s, and the video frame rate.
type Rates struct {
	Peak, Avg int64    // per segment, all tracks' fragments together
	Track     [2]int64 // per track, the peak fragment bitrate
	FPS       float64  // video frames per second; 0 when unknown
	Captions  bool     // a video fragment carries closed captions
}

// PartName is the name of part n of segment msn.
func PartName(epoch string, msn uint64, n int) string {
	return string(AppendPartName(nil, epoch, msn, n))
}

// AppendPartName appends "<epoch>-<msn>.<n>.m4s".
func AppendPartName(b []byte, epoch string, msn uint64, n int) []byte {
	b = append(b, epoch...)
	b = append(b, '-')
	b = strconv.AppendUint(b, msn, 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(n), 10)
	return append(b, ".m4s"...)
}

// Ticks converts ms on the session timeline to ticks of timescale the way
// remux/cmaf does, round(ms*timescale/1000) half away from zero, so that t and d
// in the MPD equal the tfdt and sample durations in the fragments. Negative or
// overflowing values clamp (the fragmenter refuses such frames anyway).
func Ticks(ms int64, timescale uint32) uint64 {
	if ms <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(ms), uint64(timescale))
	var carry uint64
	lo, carry = bits.Add64(lo, 500, 0)
	hi += carry
	if hi >= 1000 {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, 1000)
	return min(q, math.MaxInt64)
}
