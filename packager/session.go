package packager

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/rtmpgate/rtmpgate/remux"
)

// session is the remux.Writer of one publish. Its methods run on the publisher's
// goroutine only; it starts no goroutines. Its output goes to its sink (the
// Stream), which takes it under the stream's lock and only while the session
// owns the stream.
type session struct {
	out    sink
	cfg    *Config
	mkMux  func(video, audio *remux.Track) muxer
	log    zerolog.Logger
	kick   func()
	remote string
	begin  time.Time // publish time: the anchor of EXT-X-PROGRAM-DATE-TIME

	lastWrite  atomic.Int64 // unix ns of the last Write call, read by Publish for takeover
	superseded atomic.Bool  // set by Publish when a newcomer takes the key over

	md           remux.Metadata
	mdSeen       bool
	video, audio *remux.Track // announced by sequence headers
	pend         pending

	started            bool    // tracks settled and the muxer exists
	awaitKey           bool    // a video track is in the set but no keyframe has come yet
	keyWait            pending // audio held while awaitKey or joinAtKey, so a segment starts on the keyframe
	joinAtKey          bool    // an audio change waits for the next video keyframe (see WriteTrack)
	mux                muxer
	muxVideo, muxAudio *remux.Track // the track set the muxer was built for
	seg                remux.Segmenter
	target             int64 // the stream's fixed EXT-X-TARGETDURATION, s; 0 until known

	buf        []byte // the open segment's TS bytes; handed to the segment when it closes
	bufHint    int    // size of the last TS segment: the next buffer's is made from it
	spare      []byte // the next segment's TS buffer, written once already (prepareSpares)
	open       bool
	segStart   int64    // first DTS of the open segment, ms
	segEnd     [2]int64 // per kind (0 video, 1 audio): where the open segment's media ends, ms (see frame)
	segVCTS    int32    // composition offset of the open segment's first video frame
	segVSeen   bool     // the open segment has a video frame
	segFrames  int
	segDisc    bool // the open segment follows a discontinuity
	discNext   bool // the next segment follows a discontinuity
	segRegrid  bool // the open segment starts a new DASH Period without a discontinuity (remux.Decision.Regrid)
	regridNext bool // the segment about to open does
	anchored   bool
	lastDTS    [2]int64 // per kind: the last muxed frame's DTS (see inOrder)
	keyPTS     int64    // presentation time of the track set's first keyframe
	firstSeg   bool     // the open segment is the first since that keyframe
	dtsSeen    [2]bool
	anchorDTS  int64 // the session's first DTS, paired with begin
	// parent is the publish's own session when this one serves one of its
	// other video tracks (OpenTrack): both take one anchor, so the same DTS
	// has the same EXT-X-PROGRAM-DATE-TIME in every rendition.
	parent *session
	// follows marks an audio track's rendition: it cuts its segments where
	// parent cuts its own (see followCut) instead of on its own rules, so that
	// it is numbered and timed like the video it plays beside.
	follows     bool
	followed    int64 // the parent's segment start this rendition last cut at
	followedSet bool

	cm      [2]cmafTrack // per track of the set, indexed by vIdx and aIdx
	held    *segment     // closed, waiting for its fragments' ends (see cmafTrack)
	heldCut int64        // DTS of the cut that closed held, ms

	cmafDropped    int64
	audioIrregular bool // audio came off its estimated end once: its fragments end at its next frame (see cmafTrack)

	frames, segments, dropped int64
	closed                    bool
}

var errSessionClosed = errors.New("packager: write after Close")

// newSession starts a publish into out, whose target duration is target (0
// until fixed); mkMux builds its TS muxers.
func newSession(cfg *Config, out sink, log zerolog.Logger, mkMux func(video, audio *remux.Track) muxer, target int64, remote string, kick func(), now time.Time) *session {
	s := &session{
		out:    out,
		cfg:    cfg,
		mkMux:  mkMux,
		log:    log.With().Str("remote", remote).Logger(),
		kick:   kick,
		remote: remote,
		begin:  now,
		target: target,
	}
	s.lastWrite.Store(now.UnixNano())
	return s
}

func (s *session) lastWriteTime() time.Time { return time.Unix(0, s.lastWrite.Load()) }

// check refuses writes after Close or a takeover and records the write for the
// takeover rule.
func (s *session) check() error {
	if s.closed {
		return errSessionClosed
	}
	if s.superseded.Load() {
		return fmt.Errorf("packager: %s: %w", s.out.key(), ErrTakenOver)
	}
	s.lastWrite.Store(s.cfg.Now().UnixNano())
	return nil
}

// WriteMetadata records what onMetaData said about the tracks to come.
func (s *session) WriteMetadata(m *remux.Metadata) error {
	if err := s.check(); err != nil {
		return err
	}
	if m == nil {
		return nil
	}
	s.md, s.mdSeen = *m, true
	if st, ok := s.out.(*Stream); ok && s.parent == nil {
		labels := m.AudioLabels
		st.labels.Store(&labels)
	}
	if !s.started && s.ready() {
		return s.startMux()
	}
	return nil
}

// WriteTrack takes a sequence header. The same configuration (and colour) sent
// again is ignored; a different one before the first frame replaces the track,
// mid-stream it closes the open segment and starts a new track set after a
// discontinuity.
func (s *session) WriteTrack(t *remux.Track) error {
	if err := s.check(); err != nil {
		return err
	}
	if t == nil {
		return fmt.Errorf("packager: %s: nil track", s.out.key())
	}
	cur := &s.audio
	switch t.Kind() {
	case remux.KindVideo:
		cur = &s.video
	case remux.KindAudio:
	default:
		return fmt.Errorf("packager: %s: track codec %v: unsupported", s.out.key(), t.Codec)
	}
	if *cur != nil && (*cur).Codec == t.Codec && bytes.Equal((*cur).Config, t.Config) && sameColor((*cur).Color, t.Color) {
		return nil
	}
	*cur = t
	if !s.started {
		if s.ready() {
			return s.startMux()
		}
		return nil
	}
	if t.Kind() == remux.KindAudio && s.muxVideo != nil && s.open && !s.awaitKey {
		// Audio joining (or changing) beside video: switching track sets now
		// would close the segment mid-GOP, and the video up to the next keyframe
		// could not start a segment of its own. The video goes on in the current
		// set; the new audio waits in keyWait for the keyframe (see frame).
		s.joinAtKey = true
		return nil
	}
	s.changeTracks(nil)
	return nil
}

// sameColor reports whether two colour descriptions are equal: a track whose
// colour changes (Enhanced RTMP colorInfo) needs a new init segment.
func sameColor(a, b *remux.Color) bool {
	return a == b || a != nil && b != nil && *a == *b
}

// WriteFrame takes one access unit; f.Data is copied before WriteFrame returns.
func (s *session) WriteFrame(f *remux.Frame) error {
	if err := s.check(); err != nil {
		return err
	}
	if f == nil || f.Track == nil {
		return fmt.Errorf("packager: %s: frame without track", s.out.key())
	}
	s.out.received(len(f.Data))
	if s.started {
		return s.frame(f)
	}
	if s.announced(f.Track.Kind()) == nil {
		s.dropped++ // no sequence header yet: nothing could decode it
		return nil
	}
	if len(s.pend.frames) >= pendingFrames || len(s.pend.data)+len(f.Data) > s.cfg.PendingBytes {
		err := s.startMux()
		if ferr := s.frame(f); err == nil {
			err = ferr
		}
		return err
	}
	s.pend.add(f)
	if s.ready() {
		return s.startMux()
	}
	return nil
}

// Close flushes the open segment, ends the stream (EXT-X-ENDLIST) unless this
// session was superseded, and logs the unpublish.
func (s *session) Close(cause error) error {
	if s.closed {
		return nil
	}
	var err error
	if !s.started && len(s.pend.frames) > 0 && !s.superseded.Load() {
		err = s.startMux()
	}
	if s.joinAtKey {
		s.dropped += int64(len(s.keyWait.frames)) // audio whose track set never started
		s.joinAtKey = false
	}
	if s.started && s.awaitKey {
		s.awaitKey = false // no keyframe ever came: keep the held audio
		if ferr := s.keyWait.each(s.frame); err == nil {
			err = ferr
		}
	}
	if s.started && s.open {
		s.closeSegment(0, true)
	}
	s.settleAll()
	s.closed = true
	ended := s.out.endPublish(s)
	reason := "unpublish"
	switch {
	case !ended:
		reason = "superseded"
	case cause != nil:
		reason = "error"
	}
	// ingest logs the unpublish itself; this line adds the packaging totals for debugging.
	s.log.Debug().Err(cause).Str("reason", reason).Int64("frames", s.frames).Int64("segments", s.segments).
		Int64("dropped", s.dropped).Int64("cmaf_dropped", s.cmafDropped).Dur("duration", s.cfg.Now().Sub(s.begin)).Msg("session ended")
	s.buf, s.mux, s.cm = nil, nil, [2]cmafTrack{}
	s.pend.release()
	s.keyWait.release()
	return err
}

// OpenTrack publishes video track id of this multitrack publish as the
// stream TrackStreamName(name, id), a rendition of this stream's ladder
// (Hub.Ladder). It counts against MaxStreams and the store's admission like
// any publish. The caller closes it.
func (s *session) OpenTrack(id uint8) (remux.Writer, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	st, ok := s.out.(*Stream)
	if !ok || id == 0 {
		return nil, fmt.Errorf("packager: %s: no rendition for video track %d", s.out.key(), id)
	}
	sess, err := st.hub.publish(st.app, TrackStreamName(st.name, id), s.remote, s.kick, st, id, false)
	if err != nil {
		return nil, err
	}
	sess.parent = s
	return sess, nil
}

// OpenAudioTrack publishes audio track id of this multitrack publish as the
// stream AudioTrackStreamName(name, id), an audio rendition of this stream's
// ladder. Its segments are cut where this session cuts its own (follows), so
// every rendition of the ladder has the same segments by number. It counts
// against MaxStreams and the store's admission like any publish. The caller
// closes it.
func (s *session) OpenAudioTrack(id uint8) (remux.Writer, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	st, ok := s.out.(*Stream)
	if !ok || id == 0 {
		return nil, fmt.Errorf("packager: %s: no rendition for audio track %d", s.out.key(), id)
	}
	sess, err := st.hub.publish(st.app, AudioTrackStreamName(st.name, id), s.remote, s.kick, st, id, true)
	if err != nil {
		return nil, err
	}
	sess.parent, sess.follows = s, true
	return sess, nil
}

var (
	_ remux.TrackOpener      = (*session)(nil)
	_ remux.AudioTrackOpener = (*session)(nil)
)

func (s *session) announced(k remux.Kind) *remux.Track {
	switch k {
	case remux.KindVideo:
		return s.video
	case remux.KindAudio:
		return s.audio
	}
	return nil
}

// ready reports whether the track set is settled: every track the metadata
// promised (both when it said nothing) has its sequence header, or the frames
// buffered meanwhile span TrackWait.
func (s *session) ready() bool {
	if s.video == nil && s.audio == nil {
		return false
	}
	wantVideo, wantAudio := true, true
	if s.mdSeen && (s.md.HasVideo || s.md.HasAudio) {
		wantVideo, wantAudio = s.md.HasVideo, s.md.HasAudio
	}
	if (!wantVideo || s.video != nil) && (!wantAudio || s.audio != nil) {
		return true
	}
	// A track the metadata names is a promise: a relay that joined mid-GOP (nginx-rtmp
	// push) sends the video sequence header only with the next keyframe, up to a GOP
	// later. Starting without it would open the stream audio-only and switch track
	// sets a moment later, so the wait for a promised track is a whole segment cap.
	wait := s.cfg.TrackWait
	if s.mdSeen && (s.md.HasVideo || s.md.HasAudio) {
		wait = max(wait, s.cfg.MaxSegmentDuration)
	}
	return s.pend.span() >= wait.Milliseconds()
}

// maxDuration is the hard cap on a segment: MaxSegmentDuration until the stream's
// target duration T is fixed, then T s + 499 ms, the longest duration that still
// rounds to T. Segments of a GOP longer than that are cut mid-GOP (see
// remux.Segmenter).
func (s *session) maxDuration() time.Duration {
	if s.target > 0 {
		return time.Duration(s.target)*time.Second + 499*time.Millisecond
	}
	return s.cfg.MaxSegmentDuration
}

func (s *session) tracks() []*remux.Track {
	var ts []*remux.Track
	if s.video != nil {
		ts = append(ts, s.video)
	}
	if s.audio != nil {
		ts = append(ts, s.audio)
	}
	return ts
}

// startMux settles the track set, builds the muxer and replays the buffered frames.
func (s *session) startMux() error {
	if s.video == nil && s.audio == nil {
		return nil
	}
	s.started = true
	s.muxVideo, s.muxAudio = s.video, s.audio
	s.mux = s.mkMux(s.video, s.audio)
	s.seg = remux.Segmenter{
		Target:      s.cfg.SegmentDuration,
		MaxDuration: s.maxDuration(),
		// The segmenter counts media bytes; TS packetization adds a few percent
		// (more for tiny frames, which frame() bounds by the buffer itself).
		MaxBytes: max(s.cfg.MaxSegmentBytes/8*7, 1),
		Video:    s.video != nil,
		// Low-latency DASH addresses segments by a nominal duration: cut on its grid.
		Grid: !s.cfg.DisableLowLatency,
	}
	if s.follows {
		// The parent's cuts are this rendition's (followCut): the segmenter
		// only enforces the caps.
		s.seg.Target, s.seg.Grid = math.MaxInt64, false
	}
	s.awaitKey = s.video != nil
	s.logTracks("tracks known")
	s.out.setTracks(s, s.tracks(), s.newCMAF())
	err := s.pend.each(s.frame)
	s.pend.release()
	return err
}

// changeTracks closes the open segment and restarts muxing with the new track
// set; the next segment follows a discontinuity. With at, the keyframe that
// opens the new set, the segment ends exactly there (its video fragment at
// at's DTS); without, at its media's end. Audio held for a deferred join stays
// held for the keyframe.
func (s *session) changeTracks(at *remux.Frame) {
	s.discNext = true // before the close: the closing segment ends its DASH Period
	switch {
	case s.open && at != nil:
		s.closeSegment(at.DTS, false)
		s.settle(at) // the old set's fragments end before its CMAF state goes
		s.settleAll()
	case s.open:
		s.closeSegment(0, true)
	}
	s.muxVideo, s.muxAudio = s.video, s.audio
	s.mux = s.mkMux(s.video, s.audio)
	s.seg.Reset()
	s.seg.Regrid()
	s.seg.Video = s.video != nil
	s.awaitKey = s.video != nil
	if !s.joinAtKey {
		s.keyWait.release()
	}
	s.joinAtKey = false
	s.logTracks("tracks changed")
	s.out.setTracks(s, s.tracks(), s.newCMAF())
}

func (s *session) logTracks(msg string) {
	ev := s.log.Info()
	if v := s.video; v != nil {
		ev = ev.Stringer("video", v.Codec).Str("video_codecs", v.CodecString).Int("width", v.Width).Int("height", v.Height)
	}
	if a := s.audio; a != nil {
		ev = ev.Stringer("audio", a.Codec).Str("audio_codecs", a.CodecString).Int("sample_rate", a.SampleRate).Int("channels", a.Channels)
	}
	ev.Msg(msg)
}

// frame segments and muxes one frame of a settled session.
func (s *session) frame(f *remux.Frame) error {
	if f.DTS < 0 {
		// CMAF decode times are unsigned: a frame before the timeline's zero
		// (a track that first appears after the other's timestamps jumped)
		// has no place in the fragments the other outputs share.
		s.dropped++
		return nil
	}
	kind := f.Track.Kind()
	if s.joinAtKey {
		switch {
		case kind == remux.KindAudio && s.keyWait.fits(f, s.cfg):
			s.keyWait.add(f)
			return nil
		case kind == remux.KindAudio:
			s.changeTracks(nil) // no keyframe within bounds: switch now, as for a keyframe-less stream
		case kind == remux.KindVideo && f.Key:
			s.changeTracks(f) // the keyframe closes the segment and opens the new set
		}
	}
	if (kind == remux.KindVideo && s.muxVideo == nil) || (kind == remux.KindAudio && s.muxAudio == nil) || kind == remux.KindUnknown {
		s.dropped++ // a track that is not in the set: no sequence header before the set settled
		return nil
	}
	if s.awaitKey {
		held, err := s.holdForKeyframe(f)
		if held || err != nil {
			return err
		}
	}
	if !s.inOrder(f, kind) || kind == remux.KindAudio && s.firstSeg && f.DTS < s.keyPTS-audioLead {
		// The second: audio that comes after the set's first keyframe but
		// belongs before it is dropped as if it had come before (holdForKeyframe):
		// a Period starts where its video does.
		s.dropped++
		return nil
	}
	followed := false
	if s.follows {
		var wait bool
		if followed, wait = s.followCut(f); wait {
			s.dropped++
			return nil
		}
		if followed {
			s.seg.Reset()
		}
	}
	if s.open && len(s.buf) >= s.cfg.MaxSegmentBytes {
		s.seg.Reset() // the TS outgrew the cap before the media count did: cut here
	}
	s.settle(f)
	if d := s.seg.Push(f); d.Cuts() {
		s.regridNext = d.Regrid
		if followed {
			s.regridNext = s.parent.segRegrid
		}
		if s.open {
			s.closeSegment(f.DTS, false)
		}
		if !s.anchored && s.parent != nil {
			s.numberLikeParent(f)
		}
		s.openSegment(f.DTS)
		s.settle(f) // f is the first frame of its track after the cut
	}
	out, err := s.mux.AppendFrame(s.buf, f)
	if err != nil {
		return fmt.Errorf("packager: %s: %w", s.out.key(), err)
	}
	s.buf = out
	s.addCMAF(f)
	s.segFrames++
	s.frames++
	// A track's media ends where its latest presented frame ends, counted from
	// the segment's first DTS: with B-frames, the last frame decoded is not
	// the last presented, and after an encoder stopped without flushing its
	// last P-frame is presented past the last decoded frame plus one.
	end := f.DTS + s.frameDuration(kind)
	if kind == remux.KindVideo {
		if !s.segVSeen {
			s.segVCTS, s.segVSeen = f.CTS, true
		}
		end += int64(f.CTS) - int64(s.segVCTS)
	}
	if i := endIndex(kind); end > s.segEnd[i] {
		s.segEnd[i] = end
	}
	return nil
}

// followCut reports whether audio frame f of a follower starts its next
// segment: the parent opened a segment since this rendition last followed
// one, and f starts at or after the parent's cut, less half a frame (the
// frame nearest the cut opens the segment). wait reports that the parent has
// not opened its first segment yet: frames before it are dropped, as the
// parent drops its own audio before its first keyframe, so that segment n of
// every rendition is the same instant's.
func (s *session) followCut(f *remux.Frame) (cut, wait bool) {
	p := s.parent
	if p == nil || !p.anchored {
		return false, p != nil
	}
	if !p.open || s.followedSet && p.segStart == s.followed {
		return false, false
	}
	if f.DTS+s.frameDuration(remux.KindAudio)/2 < p.segStart && s.open {
		return false, false
	}
	s.followed, s.followedSet = p.segStart, true
	return s.open, false
}

// inOrder reports whether f may be muxed after its track's previous frame.
// Decode times within a track only go forward in an fMP4 fragment; the ingest
// repairs RTMP timestamps so, but a writer that jumps back is met here: a frame
// that could start a segment (a video keyframe, or any frame without video)
// cuts one that follows a discontinuity and restarts every track's order, and
// any other frame behind its track is dropped.
func (s *session) inOrder(f *remux.Frame, kind remux.Kind) bool {
	i := endIndex(kind)
	if s.dtsSeen[i] && f.DTS < s.lastDTS[i] {
		if !(kind == remux.KindVideo && f.Key || s.muxVideo == nil) {
			return false
		}
		s.dtsSeen = [2]bool{}
		if s.open {
			s.seg.Reset()
		}
	}
	s.dtsSeen[i], s.lastDTS[i] = true, f.DTS
	return true
}

// holdForKeyframe keeps a segment from starting before the first video keyframe of
// a track set: a relay that joins mid-GOP (nginx-rtmp push) sends audio at once but
// video only from the next keyframe. Video before that keyframe cannot decode and is
// dropped; audio is held, and when the keyframe comes the audio from up to
// audioLead before the keyframe's presentation time on is muxed after it, the older
// audio dropped, so every segment starts on a keyframe with audio beside it. (An
// encoder's own first audio frame often leads its first video frame by a few tens
// of ms; that audio is kept.) If no keyframe comes within MaxSegmentDuration of media the
// wait is given up and the held audio muxed as it is. held reports whether f was
// consumed.
const audioLead = 100 // ms

func (s *session) holdForKeyframe(f *remux.Frame) (held bool, err error) {
	if f.Track.Kind() == remux.KindVideo {
		if !f.Key {
			s.dropped++
			return true, nil
		}
		s.awaitKey = false
		if err := s.frame(f); err != nil {
			return true, err
		}
		s.keyPTS, s.firstSeg = f.PTS(), true
		err := s.keyWait.each(func(a *remux.Frame) error {
			if a.DTS < f.PTS()-audioLead {
				s.dropped++
				return nil
			}
			return s.frame(a)
		})
		s.keyWait.release()
		return true, err
	}
	if s.keyWait.fits(f, s.cfg) {
		s.keyWait.add(f)
		return true, nil
	}
	s.awaitKey = false
	err = s.keyWait.each(s.frame)
	s.keyWait.release()
	return false, err
}

// frameDuration estimates one frame's duration, ms: the last interval seen, else
// what the track or the metadata implies.
func (s *session) frameDuration(k remux.Kind) int64 {
	if step := s.seg.Step(k); step > 0 {
		return step
	}
	if k == remux.KindAudio {
		if a := s.muxAudio; a != nil && a.SampleRate > 0 {
			return a.FrameMillis()
		}
		return 23
	}
	if fr := s.md.FrameRate; fr >= 1 && fr <= 1000 {
		return int64(1000/fr + 0.5)
	}
	return 40
}

func (s *session) openSegment(dts int64) {
	if !s.anchored {
		s.anchored, s.anchorDTS = true, dts
		if p := s.parent; p != nil {
			if !p.anchored {
				p.anchored, p.anchorDTS = true, dts
			}
			s.begin, s.anchorDTS = p.begin, p.anchorDTS
		}
	}
	s.open = true
	s.segStart, s.segEnd, s.segFrames = dts, [2]int64{dts, dts}, 0
	s.segVCTS, s.segVSeen = 0, false
	s.segDisc, s.discNext = s.discNext, false
	s.segRegrid, s.regridNext = s.regridNext && !s.segDisc, false
	if s.buf == nil {
		s.buf, s.spare = s.spare, nil
	}
	if s.buf == nil {
		first := 64 << 10
		if s.bufHint == 0 && s.mdSeen {
			first = s.firstSegmentBytes(s.md.VideoBitrate+s.md.AudioBitrate, first)
		}
		s.buf = make([]byte, 0, bufSize(s.bufHint, first))
	}
	s.buf = s.mux.AppendSegmentStart(s.buf[:0])
}

// numberLikeParent gives a rendition of one of the parent's other tracks,
// before its first segment, the number of the parent's segment that segment
// plays beside: the one the parent is producing (which comes after a closed
// one still held), or for a video track whose first keyframe f the parent has
// not reached yet, the next one when the parent's own keyframe there will cut
// (a copy of its segmenter is asked). A track that opens mid-stream would
// otherwise keep the number the parent had when the track was announced.
func (s *session) numberLikeParent(f *remux.Frame) {
	p := s.parent
	ps, ok := p.out.(*Stream)
	st, ok2 := s.out.(*Stream)
	if !ok || !ok2 || !p.open {
		return
	}
	n := ps.nextNumber()
	if p.held != nil {
		n++
	}
	if !s.follows && f.DTS > p.segStart {
		probe := p.seg
		if probe.Push(&remux.Frame{Track: f.Track, DTS: f.DTS, CTS: f.CTS, Key: f.Key}).Cuts() {
			n++
		}
	}
	st.numberFrom(s, n)
}

// firstSegmentBytes is a first segment's buffer size for kbps of media (the
// data rates onMetaData announced, 0 when it did not): a segment target's worth
// and a fifth (TS packets, a first GOP past the target), at least fallback and
// at most MaxSegmentBytes. From fallback alone the buffers of a 1.1 Mbit/s
// stream's first segment regrew six or seven times, each a copy into fresh
// memory: ~2.3 MB made for 0.6 MB of segment.
func (s *session) firstSegmentBytes(kbps float64, fallback int) int {
	if !(kbps > 0) {
		return fallback
	}
	n := kbps * 1000 / 8 * s.cfg.SegmentDuration.Seconds() * 1.2
	return int(max(float64(fallback), min(n, float64(s.cfg.MaxSegmentBytes))))
}

// bufSize is the capacity for a segment buffer whose previous one held last
// bytes (first when there was none): room for the same again and a sixteenth,
// so that a steady stream fills one buffer per segment without regrowing it,
// while the spare capacity the store keeps stays small. (An eighth plus 4 KiB
// kept 14 % of a 1.1 Mbit/s stream's window unused, 25 % of its audio, and
// regrew no fewer buffers on the bench clip.)
func bufSize(last, first int) int {
	if last <= 0 {
		return first
	}
	return last + last/16 + 1<<10
}

// detach ends the use of a segment buffer as the segment's bytes and returns
// them with the bytes the buffer keeps allocated. Large spare capacity (the
// buffer regrew by doubling) goes by a copy; a little stays, counted, as a
// copy of every segment would cost more CPU than it saves memory.
func detach(b []byte) (data []byte, alloc int) {
	if cap(b)-len(b) > len(b)/4+8<<10 {
		c := bytes.Clone(b)
		return c, cap(c)
	}
	return b[:len(b):len(b)], cap(b)
}

// prepareSpares makes the next segment's buffers now, just after a segment was
// listed, and writes a byte in each page of them. Fresh memory faults on its
// first write, and with the heap in huge pages one fault can fill 2 MiB the
// host has not backed yet (a one-off test on the bench VM: 1 GiB of such
// memory took 1.9 to 2.6 s to write, 4 to 5 ms per 2 MiB). Made at the cut,
// as they were, the buffers put such faults between a keyframe's arrival and
// its segment's listing: at 200 streams 4 % of segments were listed 5 to 15 ms
// late, and made here, the cluster went (p99 0.5 ms). Here it lands on a frame
// that closes nothing, ~2 s before the buffers are needed; they hold about a
// TS and a CMAF segment more per stream meanwhile.
func (s *session) prepareSpares() {
	if s.spare == nil && s.bufHint > 0 {
		s.spare = prefaulted(bufSize(s.bufHint, 64<<10))
	}
	for i := range s.cm {
		if c := &s.cm[i]; c.spare == nil && c.lastSize > 0 {
			c.spare = prefaulted(bufSize(c.lastSize, 16<<10))
		}
	}
}

// prefaulted is an empty buffer of capacity n whose pages have been written.
func prefaulted(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 4096 {
		b[i] = 0
	}
	return b[:0]
}

func endIndex(k remux.Kind) int {
	if k == remux.KindVideo {
		return 0
	}
	return 1
}

// mediaEnd is where the open segment's media ends: its last video frame plus one
// frame duration, or its last audio frame's end when it has no video. Video leads
// because it decides the cuts, so every EXTINF measures the same track; an AAC
// track that runs a few frames past the video (encoder padding) does not stretch
// the last segment.
func (s *session) mediaEnd() int64 {
	if s.muxVideo != nil && s.segEnd[0] > s.segStart {
		return s.segEnd[0]
	}
	return max(s.segEnd[0], s.segEnd[1])
}

// closeSegment closes the open segment and hands it to hold, which publishes it
// once its CMAF fragments have their ends. Its duration is next minus its first
// DTS; for the last segment of a track set (last), or when timestamps jumped so
// that this would be negative or past the cap, it is the media actually in the
// segment (mediaEnd), and a jump marks the next segment discontinuous.
func (s *session) closeSegment(next int64, last bool) {
	s.open, s.firstSeg = false, false
	if s.segFrames == 0 {
		s.settleAll()
		s.discNext = true // nothing muxed (every frame failed): leave a gap, not a lie
		return
	}
	limit := s.maxDuration().Milliseconds()
	dur := next - s.segStart
	if last || dur <= 0 || dur > limit {
		if !last {
			s.discNext = true
			s.seg.Regrid() // the segment the jump opened starts the new timeline
		}
		dur = min(max(s.mediaEnd()-s.segStart, 1), limit)
	}
	// The buffer becomes the segment's: nothing writes to it again, and the next
	// segment starts in a new one.
	data, alloc := detach(s.buf)
	seg := &segment{
		data:   data,
		alloc:  int64(alloc),
		dts:    s.segStart,
		dur:    dur,
		pdt:    s.begin.Add(time.Duration(s.segStart-s.anchorDTS) * time.Millisecond),
		disc:   s.segDisc,
		regrid: s.segRegrid,
		// The last of its DASH Period: the session ends, or a discontinuity or
		// a new grid follows (a jump, a track change, a cut off the grid).
		ends: last || s.discNext || s.regridNext,
	}
	if s.muxVideo != nil && s.muxAudio != nil {
		seg.spill = s.frameDuration(remux.KindAudio) + 1
	}
	if !last {
		seg.cutIn = s.lastWrite.Load()
	}
	s.bufHint, s.buf = len(s.buf), nil
	s.hold(seg, next, last)
}

// publish adds a segment, its fragments ended, to the stream.
func (s *session) publish(seg *segment) {
	target, ok := s.out.publishSegment(s, seg)
	if !ok {
		return
	}
	s.segments++
	if s.target == 0 {
		s.target = target
		s.seg.MaxDuration = s.maxDuration()
	}
}
