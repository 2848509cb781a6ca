package packager

import (
	"time"

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
// cut only the cutting track knows that instant; the other track learns it from
// its first frame after the cut. Audio beside a video cut does not wait for
// that frame: its fragment ends one audio frame after its last sample, where
// the next frame is due, and that frame is then placed exactly there (snap)
// when it lands within half a frame of it, as frames of a fixed size (AAC's
// 1024 samples, AC-3's 1536, Track.FrameSamples) always do: the ms timestamps
// of RTMP only round them. So the segment is
// listed the moment the keyframe cutting it arrives, instead of up to one audio
// frame (21 to 23 ms) later. Audio whose next frame lands elsewhere (irregular
// timestamps) costs that fragment boundary a gap, or that frame a shift of up
// to one frame, and has the session go back to the exact rule. Other
// cases (video beside an audio cut) hold the closed segment, its TS bytes
// ready, until every track that had samples in it has seen its next frame, and
// only then publish it. settleWait and Close bound that wait.
//
// Parts follow the same rule one level down: a track's part ends at the DTS of
// the track's next frame, the first of its next part, so parts are gapless too
// and no end is ever estimated while frames flow. Each track cuts its own parts
// (partDue): audio frames do not line up with video ones, and cutting audio at
// video instants would let audio parts run past the part target.
type cmafTrack struct {
	frag        *cmaf.Fragmenter
	init        *initSeg
	seq         uint32 // mfhd sequence number of the next chunk
	n           int    // samples buffered: the open part
	first, last int64  // DTS of the first and last buffered sample, ms
	key         bool   // the first buffered sample is a sync sample
	firstCTS    int32  // its composition offset
	pending     bool   // the buffered samples belong to the held segment
	floor       int64  // end of the track's last part, ms: the next one starts no earlier
	snap        int64  // > 0: the last fragment ended at floor by estimate; the next frame moves there (see addCMAF), and more than snap ms off it makes the session's audio irregular
	lastIn      int64  // unix ns when the open part's last sample arrived
	firstIn     int64  // unix ns when its first sample arrived: the part's prft time

	// The segment the parts belong to (the held one while pending). Its bytes
	// are built in buf, the styp then each part as the fragmenter appends it;
	// parts are views into buf. Bytes a view covers are never written again:
	// appends only go past them, and when buf must grow the new buffer is a copy
	// (regrown: the views cut before still point into the old one).
	buf       []byte
	regrown   bool
	parts     []*part
	slab      []part // where the parts' structs come from, a segment's worth at a time
	segFirst  int64
	segMaxPTS int64 // the latest presentation time (DTS + CTS) of the segment's samples, ms
	segKey    bool
	segCTS    int32
	segFrames int
	segCC     bool // a sample of the segment carried closed captions

	// Sizes of the track's last segment, for the next one's buffers and parts.
	lastSize, lastParts, lastFrames int
	firstSize                       int    // the first segment's buffer (firstSegmentBytes)
	lastDur                         int64  // ms
	spare                           []byte // the next segment's buffer, written once already (prepareSpares)
}

// styp is the open segment's styp box, nil before its first part.
func (c *cmafTrack) styp() []byte {
	if len(c.buf) < cmaf.StypSize {
		return nil
	}
	return c.buf[:cmaf.StypSize:cmaf.StypSize]
}

// newPart returns a part struct from the slab, which is made per segment for
// as many parts as the last one had; a part is never reused.
func (c *cmafTrack) newPart() *part {
	if len(c.slab) == cap(c.slab) {
		c.slab = make([]part, 0, max(c.lastParts+2, 4))
	}
	c.slab = c.slab[:len(c.slab)+1]
	return &c.slab[len(c.slab)-1]
}

// reserve makes room in buf for n more bytes.
func (c *cmafTrack) reserve(n int) {
	if cap(c.buf)-len(c.buf) >= n {
		return
	}
	if c.buf == nil {
		if cap(c.spare) >= n {
			c.buf, c.spare = c.spare, nil
			return
		}
		c.buf = make([]byte, 0, max(bufSize(c.lastSize, c.firstSize), n))
		return
	}
	nb := make([]byte, len(c.buf), max(2*cap(c.buf), len(c.buf)+n))
	copy(nb, c.buf)
	c.buf, c.regrown = nb, true
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
		var kbps float64
		if s.mdSeen {
			kbps = s.md.AudioBitrate
			if t.Kind() == remux.KindVideo {
				kbps = s.md.VideoBitrate
			}
		}
		s.cm[i] = cmafTrack{frag: fr, init: inits[i], seq: 1, firstSize: s.firstSegmentBytes(kbps, 16<<10)}
	}
	return inits
}

// addCMAF buffers a frame the TS muxer took, first closing the track's open part
// when the frame starts the next one. A frame the fragmenter refuses (timestamps
// going backwards, a full fragment) is left out of the CMAF output only.
func (s *session) addCMAF(f *remux.Frame) {
	i := endIndex(f.Track.Kind())
	c := &s.cm[i]
	if c.frag == nil {
		return
	}
	if c.n > 0 && !c.pending && !s.cfg.DisableLowLatency && s.partDue(i, f.DTS) {
		lastIn := c.lastIn
		if s.cutPart(i, f.DTS) {
			s.exposeOpen()
			s.out.partDone(lastIn)
		}
	}
	fr := *f
	fr.Track = nil // the set's track, whatever *Track a repeated sequence header made
	if c.snap > 0 {
		// The frame the estimated end was due for starts the next fragment
		// there: gapless. Earlier (but after the last sample) it moves to the
		// end as well, as a step back would be dropped; much later is a gap in
		// the audio, left as it is.
		d := fr.DTS - c.floor
		if fr.DTS > c.last && d <= c.snap {
			fr.DTS = c.floor
		}
		if d < -c.snap || d > c.snap {
			s.audioIrregular = true
		}
		c.snap = 0
	}
	if c.n == 0 && fr.DTS < c.floor && !s.segDisc {
		// Timestamps stepped back across a cut by less than makes a
		// discontinuity: the fragment would overlap its predecessor, which the
		// DASH timeline and tfdt continuity forbid.
		s.cmafDropped++
		return
	}
	if err := c.frag.Add(&fr); err != nil {
		s.cmafDropped++
		s.log.Debug().Err(err).Msg("frame left out of CMAF")
		return
	}
	if c.n == 0 {
		c.first, c.key, c.firstCTS = fr.DTS, f.Key, f.CTS
		c.firstIn = s.lastWrite.Load()
		if len(c.parts) == 0 {
			c.segFirst, c.segKey, c.segCTS, c.segFrames = fr.DTS, f.Key, f.CTS, 0
			c.segMaxPTS = fr.DTS + int64(f.CTS)
		}
	}
	c.n++
	c.segFrames++
	if i == vIdx && !c.segCC {
		c.segCC = remux.CarriesCaptions(f.Data, f.Track.NALULengthSize)
	}
	c.last = fr.DTS
	c.segMaxPTS = max(c.segMaxPTS, fr.DTS+int64(f.CTS))
	c.lastIn = s.lastWrite.Load()
}

// partDue reports whether a frame of track i at dts starts the track's next
// part: the segment's frames are spread over its parts as evenly as the part
// target allows (remux.PartDue), expecting as many as the track's last segment
// had at its mean frame interval, or a segment target's worth at first.
func (s *session) partDue(i int, dts int64) bool {
	c := &s.cm[i]
	step := s.frameDuration(c.frag.Track().Kind())
	expect := c.lastFrames
	if t := c.frag.Track(); expect == 0 && i == aIdx && t.SampleRate > 0 {
		spf := int64(t.FrameSamples)
		if spf <= 0 {
			spf = 1024 // AAC
		}
		expect = int((s.cfg.SegmentDuration.Milliseconds()*int64(t.SampleRate) + spf*500) / (spf * 1000))
	} else if expect == 0 && step > 0 {
		expect = int((s.cfg.SegmentDuration.Milliseconds() + step/2) / step)
	}
	return remux.PartDue(remux.PartPlan{
		Target:     s.cfg.PartTarget,
		PartStart:  c.first,
		PartKey:    c.key,
		PartFrames: c.n,
		Parts:      len(c.parts),
		Frames:     c.segFrames,
		Expect:     expect,
		FullPart:   remux.FullPart(s.cfg.PartTarget, c.lastFrames, c.lastDur),
		Sync:       i == aIdx,
	}, dts, step)
}

// cutPart writes track i's buffered samples as the segment's next part, ending
// at end (ms), and reports whether a part was added.
func (s *session) cutPart(i int, end int64) bool {
	c := &s.cm[i]
	if c.n == 0 {
		return false
	}
	if end < c.last {
		end = s.estimateEnd(i) // the next frame went back in time
	}
	n, first, key := c.n, c.first, c.key
	c.n = 0
	var (
		out []byte
		err error
	)
	// With low latency every chunk maps its first sample's presentation time
	// to the wall-clock time the gateway received it (prft), from which
	// players measure latency; the low-latency MPD refers to these boxes.
	if !s.cfg.DisableLowLatency {
		c.frag.SetProducerTime(time.Unix(0, c.firstIn))
	}
	start := len(c.buf)
	if start == 0 {
		c.reserve(c.frag.FragmentSize())
		out, err = c.frag.Flush(c.buf, c.seq, end) // the segment's first chunk carries its styp
		start = cmaf.StypSize
	} else {
		c.reserve(c.frag.FragmentSize() - cmaf.StypSize)
		out, err = c.frag.FlushChunk(c.buf, c.seq, end)
	}
	if err != nil {
		c.frag.Reset()
		c.segFrames -= n
		s.cmafDropped += int64(n)
		s.log.Warn().Err(err).Msg("CMAF part dropped")
		return false
	}
	c.buf = out
	c.seq++
	c.floor = end
	ts := c.frag.Track().Timescale
	p := c.newPart()
	*p = part{
		Data:  out[start:len(out):len(out)],
		Start: first,
		Dur:   ticksToMillis(toTicks(end, ts)-toTicks(first, ts), ts),
		Indep: key || i == aIdx,
	}
	if c.parts == nil {
		c.parts = make([]*part, 0, max(c.lastParts+2, 4))
	}
	c.parts = append(c.parts, p)
	return true
}

// hold takes a closed segment: tracks with samples wait for their end.
func (s *session) hold(seg *segment, cut int64, last bool) {
	s.settleAll() // a held segment whose tracks never continued
	seg.init = [2]*initSeg{s.cm[vIdx].init, s.cm[aIdx].init}
	s.held, s.heldCut = seg, cut
	for i := range s.cm {
		s.cm[i].pending = s.cm[i].n > 0 || len(s.cm[i].parts) > 0
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
	i := endIndex(f.Track.Kind())
	if s.cm[i].pending {
		lastIn := s.cm[i].lastIn
		s.flushTrack(i, f.DTS, f.CTS, false)
		defer s.out.partDone(lastIn) // once the held segment is out
	}
	if a := &s.cm[aIdx]; i == vIdx && a.pending && !s.audioIrregular {
		// Video went on past the cut: audio ends where its next frame is due.
		end := s.estimateEnd(aIdx)
		lastIn := a.lastIn
		s.flushTrack(aIdx, end, 0, false)
		a.snap = max((end-a.last)/2, 1)
		defer s.out.partDone(lastIn)
	}
	if f.DTS > s.heldCut+settleWait {
		for i := range s.cm {
			if s.cm[i].pending {
				s.flushTrack(i, s.estimateEnd(i), s.cm[i].segCTS, true)
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
			s.flushTrack(i, s.estimateEnd(i), s.cm[i].segCTS, true)
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
	s.exposeOpen()
	s.prepareSpares()
}

// estimateEnd is the end of a track's last sample when no next sample tells it:
// one audio frame (Track.FrameMillis: 1024 samples unless the codec says
// otherwise) for audio, one frame interval for video.
func (s *session) estimateEnd(i int) int64 {
	c := &s.cm[i]
	if i == aIdx {
		if t := c.frag.Track(); t.SampleRate > 0 {
			return c.last + t.FrameMillis()
		}
		return c.last + s.frameDuration(remux.KindAudio)
	}
	return c.last + s.frameDuration(remux.KindVideo)
}

// flushTrack ends track i's fragment of the held segment at end (ms), the DTS of
// the track's next sample, whose composition offset is endCTS: its last part is
// cut, and the fragment is the track's segment buffer, styp and parts, handed
// over as it is; the parts are views into it already, unless it regrew.
//
// DASH times a segment by its earliest presentation time, not its decode time: with
// B-frames the IDR that opens a fragment is presented its composition offset after
// it is decoded. So the SegmentTimeline's t is first DTS + first CTS and its d runs to
// the next fragment's, which keeps the timeline gapless and matches what a player
// buffers; EXTINF keeps the decode-time span.
//
// With estimated, no next sample gave the end (the publisher stopped, or the
// track did): the fragment then lasts until its latest presented sample ends,
// which with B-frames can be past its last decoded one plus a frame (an
// encoder stopped without flushing leaves its last P-frame presented after
// the B-frames it never sent), in the timeline and in EXTINF alike.
func (s *session) flushTrack(i int, end int64, endCTS int32, estimated bool) {
	c := &s.cm[i]
	c.pending = false
	if c.n > 0 {
		if end < c.last {
			end = s.estimateEnd(i)
		}
		s.cutPart(i, end)
	}
	parts, buf, regrown := c.parts, c.buf, c.regrown
	first, key, firstCTS, frames, cc := c.segFirst, c.segKey, c.segCTS, c.segFrames, c.segCC
	c.parts, c.buf, c.regrown, c.slab, c.segFrames, c.segCC = nil, nil, false, nil, 0, false
	if len(parts) == 0 {
		return
	}
	end = c.floor // where the last part ended
	c.lastSize, c.lastParts, c.lastFrames, c.lastDur = len(buf), len(parts), frames, end-first
	data, alloc := detach(buf)
	views := parts[:len(parts):len(parts)]
	if regrown || &data[0] != &buf[0] {
		// Views into the final bytes, as new structs: the old ones are in
		// snapshots already and never change.
		views = make([]*part, len(parts))
		fresh := make([]part, len(parts))
		off := cmaf.StypSize
		for k, p := range parts {
			fresh[k] = *p
			fresh[k].Data = data[off : off+len(p.Data) : off+len(p.Data)]
			views[k] = &fresh[k]
			off += len(p.Data)
		}
	}
	ts := c.frag.Track().Timescale
	ept := first + int64(firstCTS)
	eptEnd := max(end+int64(endCTS), ept)
	dur := ticksToMillis(toTicks(end, ts)-toTicks(first, ts), ts)
	if estimated {
		eptEnd = max(eptEnd, c.segMaxPTS+end-c.last)
		dur = max(dur, eptEnd-ept)
	}
	t, e := toTicks(ept, ts), toTicks(eptEnd, ts)
	s.held.frag[i] = &fragment{
		data:     data,
		alloc:    int64(alloc),
		t:        t,
		d:        e - t,
		dur:      dur,
		start:    first,
		ept:      ept,
		eptEnd:   eptEnd,
		end:      end,
		frames:   frames,
		key:      key,
		captions: cc,
	}
	s.held.parts[i] = views
}

// exposeOpen hands the stream the segment being produced: the held one while its
// tracks settle (it is the next to be listed), else the open one.
func (s *session) exposeOpen() {
	if s.cfg.DisableLowLatency || !s.started {
		return
	}
	o := &openSeg{}
	if s.held != nil {
		o.disc, o.init = s.held.disc, s.held.init
		for i := range s.cm {
			if s.cm[i].pending {
				o.parts[i], o.styp[i] = s.cm[i].parts, s.cm[i].styp()
			} else if f := s.held.frag[i]; f != nil {
				o.parts[i], o.styp[i] = s.held.parts[i], f.data[:cmaf.StypSize]
			}
		}
	} else {
		o.disc = s.segDisc || s.discNext && !s.open
		o.init = [2]*initSeg{s.cm[vIdx].init, s.cm[aIdx].init}
		for i := range s.cm {
			o.parts[i], o.styp[i] = s.cm[i].parts, s.cm[i].styp()
		}
	}
	for i := range o.parts {
		o.parts[i] = o.parts[i][:len(o.parts[i]):len(o.parts[i])] // later appends must not reach what the stream holds
	}
	s.out.setOpen(s, o)
}
