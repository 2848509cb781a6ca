package packager

import "strconv"

// period is one DASH Period: the segments of one publish session and track set
// with a continuous timeline. It starts at the first segment after a
// discontinuity (republish, takeover, sequence-header change, timestamp jump).
// Everything but end is fixed when it opens, so the MPD never rewrites a Period
// it listed.
type period struct {
	id    string
	start int64       // ms from the MPD's availabilityStartTime
	pto   int64       // media time of the start on the session timeline, ms (presentationTimeOffset)
	end   int64       // largest media end of its segments and fragments so far, ms
	init  [2]*initSeg // the track set
	epoch string      // fragment names: "<epoch>-$Number$.m4s"
	first uint64      // media sequence number of its first segment: startNumber
	dur   int64       // its first segment's duration, ms: the nominal one of the segment grid (remux.Segmenter.Grid)
}

// joinPeriodLocked assigns seg to the current Period or opens a new one: after
// a discontinuity, a new track set, or a cut off the segment grid (see
// segment.regrid).
//
// availabilityStartTime is the wall time of the stream's first CMAF segment's
// first frame (its EXT-X-PROGRAM-DATE-TIME), so the first Period starts at PT0S
// and media arriving in real time becomes available as it is published. A later
// Period starts at its first segment's program date time minus that anchor, but
// never before the previous Period's media ended (a republish whose publisher
// sent faster than real time would otherwise overlap).
func (s *Stream) joinPeriodLocked(seg *segment) {
	if !seg.hasCMAF() {
		return
	}
	p := s.period
	if p == nil || seg.disc || seg.regrid || p.init != seg.init {
		if s.ast.IsZero() {
			s.ast = seg.pdt
		}
		pto := seg.dts
		for _, f := range seg.frag {
			if f != nil {
				pto = min(pto, f.ept)
			}
		}
		start := max(seg.pdt.Sub(s.ast).Milliseconds()-(seg.dts-pto), 0)
		if p != nil {
			start = max(start, p.start+p.end-p.pto)
		}
		p = &period{
			id:    "p" + strconv.Itoa(s.periodN),
			start: start,
			pto:   pto,
			end:   pto,
			init:  seg.init,
			epoch: s.epoch,
			first: seg.seq,
			dur:   seg.dur,
		}
		s.periodN++
		s.period = p
	}
	seg.period = p
	p.end = max(p.end, seg.dts+seg.dur)
	for _, f := range seg.frag {
		if f != nil {
			p.end = max(p.end, f.eptEnd)
		}
	}
}
