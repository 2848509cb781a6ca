package packager

import (
	"strconv"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
)

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
	if p == nil || seg.disc || seg.regrid || p.Init != seg.view.Init {
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
			start = max(start, p.Start+p.End-p.PTO)
		}
		p = &manifest.Period{
			ID:    "p" + strconv.Itoa(s.periodN),
			Start: start,
			PTO:   pto,
			End:   pto,
			Init:  seg.view.Init,
			Epoch: s.epoch,
			First: seg.seq,
			Dur:   seg.dur,
		}
		s.periodN++
		s.period = p
	}
	seg.view.Period = p
	p.End = max(p.End, seg.dts+seg.dur)
	for _, f := range seg.frag {
		if f != nil {
			p.End = max(p.End, f.eptEnd)
		}
	}
}
