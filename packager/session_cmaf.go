package packager

import (
	"bytes"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

// settleWait is how far (ms of media) the other tracks may run past a cut before
// a track that has not continued gets its fragment end estimated: audio that
// really stopped must not hold the segment back for long.
const settleWait = 1000

// cmafTrack is the session's CMAF state for one track of the current set.
//
// Each track's fragment of segment k must end exactly where its fragment of
// segment k+1 starts (tfdt continuity, and DASH's gapless SegmentTimeline). At a
// cut only the cutting track knows that instant; the other track (audio, for a
// video cut) learns it from its first frame after the cut. So a closed segment is
// held, its TS bytes ready, until every track that had samples in it has seen its
// next frame, and only then published. settleWait and Close bound the wait.
type cmafTrack struct {
	frag        *cmaf.Fragmenter
	init        *initSeg
	n           int   // samples buffered
	first, last int64 // DTS of the first and last buffered sample, ms
	key         bool  // the first buffered sample is a sync sample
	firstCTS    int32 // its composition offset: the fragment's earliest presentation is first+firstCTS
	pending     bool  // the buffered samples belong to the held segment
	floor       int64 // end of the track's last fragment, ms: the next one starts no earlier
}

// newCMAF builds a fragmenter and an init segment per track of the set. A track
// CMAF cannot describe gets neither (the TS output goes on without it).
func (s *session) newCMAF() [2]*initSeg {
	var inits [2]*initSeg
	for i, t := range [2]*remux.Track{s.muxVideo, s.muxAudio} {
		s.cm[i] = cmafTrack{}
		if t == nil {
			continue
		}
		data, err := cmaf.AppendInit(nil, t)
		var fr *cmaf.Fragmenter
		if err == nil {
			fr, err = cmaf.NewFragmenter(t)
		}
		if err != nil {
			s.log.Warn().Err(err).Stringer("kind", t.Kind()).Msg("no CMAF output for track")
			continue
		}
		fr.MaxBytes = s.cfg.MaxSegmentBytes
		inits[i] = &initSeg{track: t, data: data}
		s.cm[i] = cmafTrack{frag: fr, init: inits[i]}
	}
	return inits
}

// addCMAF buffers a frame the TS muxer took. A frame the fragmenter refuses
// (timestamps going backwards, a full fragment) is left out of the CMAF output
// only.
func (s *session) addCMAF(f *remux.Frame) {
	c := &s.cm[endIndex(f.Track.Kind())]
	if c.frag == nil {
		return
	}
	if c.n == 0 && f.DTS < c.floor && !s.segDisc {
		// Timestamps stepped back across a cut by less than makes a
		// discontinuity: the fragment would overlap its predecessor, which the
		// DASH timeline and tfdt continuity forbid.
		s.cmafDropped++
		return
	}
	fr := *f
	fr.Track = nil // the set's track, whatever *Track a repeated sequence header made
	if err := c.frag.Add(&fr); err != nil {
		s.cmafDropped++
		s.log.Debug().Err(err).Msg("frame left out of CMAF")
		return
	}
	if c.n == 0 {
		c.first, c.key, c.firstCTS = f.DTS, f.Key, f.CTS
	}
	c.n++
	c.last = f.DTS
}

// hold takes a closed segment: tracks with samples wait for their end.
func (s *session) hold(seg *segment, cut int64, last bool) {
	s.settleAll() // a held segment whose tracks never continued
	seg.init = [2]*initSeg{s.cm[vIdx].init, s.cm[aIdx].init}
	s.fragSeq++
	s.held, s.heldCut = seg, cut
	for i := range s.cm {
		s.cm[i].pending = s.cm[i].n > 0
	}
	if last {
		s.settleAll()
		return
	}
	s.publishHeld()
}

// settle ends the held segment's fragment of f's track at f's DTS, the first
// DTS of that track after the cut, before f joins the next fragment; and gives
// up on tracks that have not continued within settleWait.
func (s *session) settle(f *remux.Frame) {
	if s.held == nil {
		return
	}
	if i := endIndex(f.Track.Kind()); s.cm[i].pending {
		s.flushTrack(i, f.DTS, f.CTS)
	}
	if f.DTS > s.heldCut+settleWait {
		for i := range s.cm {
			if s.cm[i].pending {
				s.flushTrack(i, s.estimateEnd(i), s.cm[i].firstCTS)
			}
		}
	}
	s.publishHeld()
}

// settleAll ends every pending fragment with an estimate and publishes the held
// segment: on Close, a track change, or a new cut.
func (s *session) settleAll() {
	if s.held == nil {
		return
	}
	for i := range s.cm {
		if s.cm[i].pending {
			s.flushTrack(i, s.estimateEnd(i), s.cm[i].firstCTS)
		}
	}
	s.publishHeld()
}

func (s *session) publishHeld() {
	if s.held == nil || s.cm[vIdx].pending || s.cm[aIdx].pending {
		return
	}
	seg := s.held
	s.held = nil
	s.publish(seg)
}

// estimateEnd is the end of a track's last sample when no next sample tells it:
// one AAC frame (1024 samples) for audio, one frame interval for video.
func (s *session) estimateEnd(i int) int64 {
	c := &s.cm[i]
	if i == aIdx {
		if t := c.frag.Track(); t.SampleRate > 0 {
			return c.last + (1024*1000+int64(t.SampleRate)/2)/int64(t.SampleRate)
		}
		return c.last + s.frameDuration(remux.KindAudio)
	}
	return c.last + s.frameDuration(remux.KindVideo)
}

// flushTrack writes track i's fragment of the held segment, ending at end (ms), the
// DTS of the track's next sample, whose composition offset is endCTS.
//
// DASH times a segment by its earliest presentation time, not its decode time: with
// B-frames the IDR that opens a fragment is presented its composition offset after
// it is decoded. So the SegmentTimeline's t is first DTS + first CTS and its d runs to
// the next fragment's, which keeps the timeline gapless and matches what a player
// buffers; EXTINF keeps the decode-time span.
func (s *session) flushTrack(i int, end int64, endCTS int32) {
	c := &s.cm[i]
	c.pending = false
	if c.n == 0 {
		return
	}
	if end < c.last {
		end = s.estimateEnd(i) // the next frame went back in time
	}
	n, first, key, firstCTS := c.n, c.first, c.key, c.firstCTS
	c.n = 0
	out, err := c.frag.Flush(s.fragBuf[:0], s.fragSeq, end)
	if err != nil {
		c.frag.Reset()
		s.cmafDropped += int64(n)
		s.log.Warn().Err(err).Msg("CMAF fragment dropped")
		return
	}
	s.fragBuf = out
	c.floor = end
	ts := c.frag.Track().Timescale
	ept := first + int64(firstCTS)
	eptEnd := max(end+int64(endCTS), ept)
	t, e := toTicks(ept, ts), toTicks(eptEnd, ts)
	s.held.frag[i] = &fragment{
		data:   bytes.Clone(out),
		t:      t,
		d:      e - t,
		dur:    ticksToMillis(toTicks(end, ts)-toTicks(first, ts), ts),
		start:  first,
		ept:    ept,
		eptEnd: eptEnd,
		end:    end,
		frames: n,
		key:    key,
	}
}
