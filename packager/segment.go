package packager

import (
	"time"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
)

// segment is one published media segment: the MPEG-TS bytes and, cut at the same
// instant, one CMAF fragment per track. It is immutable once a snapshot holds it,
// except expires, which only the stream's lock holder reads or writes.
type segment struct {
	seq     uint64    // media sequence number, shared by the TS segment and the fragments
	name    string    // "<epoch>-<seq>.ts", as listed in the playlist (relative to ts/)
	path    string    // "ts/" + name, as Stream.Object takes it
	data    []byte    // the muxer output, the session's buffer handed over (cap-limited)
	dts     int64     // first DTS, ms on the session timeline
	dur     int64     // media duration, ms: next segment's first DTS minus this one's
	pdt     time.Time // wall time of the first frame: publish time + media time
	disc    bool      // preceded by EXT-X-DISCONTINUITY
	regrid  bool      // opens a new DASH Period without a discontinuity: its cut left the nominal grid (remux.Decision.Regrid)
	ends    bool      // the last segment of its DASH Period: no segment continues its timeline
	spill   int64     // ms a track's share may run past dur: one audio frame beside video (see remux.Segmenter.overruns)
	modTime time.Time // when it was published
	cutIn   int64     // unix ns when the frame that closed it arrived (0: closed by Close or a track change)
	expires time.Time // once out of the window: when it may be deleted
	alloc   int64     // bytes of the buffer behind data: its length plus the spare capacity it keeps

	// CMAF, indexed by vIdx and aIdx. init is the track set's header (nil when the
	// set has no such track, or CMAF could not describe it); frag is nil when the
	// track had no sample in the segment.
	init  [2]*initSeg
	frag  [2]*fragment
	parts [2][]*part // views into frag's bytes; nil with low latency off

	// view is what the manifests list of it, filled in when the stream adds it
	// (freeze) and joins it to a DASH Period.
	view manifest.Segment
}

// size is the store bytes the segment holds: its buffers whole, the spare
// capacity after the bytes too, which stays allocated as long as they do.
func (s *segment) size() int64 {
	n := max(s.alloc, int64(len(s.data)))
	for _, f := range s.frag {
		if f != nil {
			n += max(f.alloc, int64(len(f.data)))
		}
	}
	return n
}

// hasCMAF reports whether the segment belongs to a track set with CMAF output.
func (s *segment) hasCMAF() bool { return s.init[vIdx] != nil || s.init[aIdx] != nil }

// freeze fills in seg.view from the segment as the stream names it, before it
// joins a Period and a window.
func (seg *segment) freeze() {
	v := &seg.view
	v.Seq, v.Name, v.DTS, v.Dur, v.PDT = seg.seq, seg.name, seg.dts, seg.dur, seg.pdt
	v.Disc, v.Ends, v.Parts = seg.disc, seg.ends, seg.parts
	for i, f := range seg.frag {
		if f != nil {
			f.view = manifest.Fragment{Name: f.name, T: f.t, D: f.d, Dur: f.dur, EPT: f.ept, Key: f.key}
			v.Frag[i] = &f.view
		}
		if in := seg.init[i]; in != nil {
			v.Init[i] = &in.view
		}
	}
}
