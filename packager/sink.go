package packager

import "github.com/rtmpgate/rtmpgate/remux"

// sink is where a publish session's output goes: in production its Stream,
// which lists and serves it, with the hub's store and statistics behind. The
// session calls it from the publisher's goroutine only and passes itself as
// owner, so that the stream can ignore a session that no longer owns it (a
// takeover). Being this narrow lets a session be driven in a test without a hub.
type sink interface {
	// setTracks announces the session's track set and its CMAF init segments
	// (nil where a track is absent or has no CMAF output).
	setTracks(owner *session, tracks []*remux.Track, inits [2]*initSeg)
	// setOpen lists the segment being produced: its parts so far.
	setOpen(owner *session, o *openSeg)
	// partDone records a part made available whose last frame arrived at
	// lastIn (unix ns; 0 when unknown).
	partDone(lastIn int64)
	// publishSegment adds a closed segment, its fragments ended, and returns
	// the stream's fixed target duration; ok is false once owner no longer
	// owns the stream.
	publishSegment(owner *session, seg *segment) (target int64, ok bool)
	// endPublish ends owner's publish (the playlists get EXT-X-ENDLIST) and
	// reports whether owner still owned the stream.
	endPublish(owner *session) bool
	// received counts a frame of n media bytes from the publisher.
	received(n int)
	// key is the stream's "app/name", for errors.
	key() string
}

var _ sink = (*Stream)(nil)

func (s *Stream) partDone(lastIn int64) { s.hub.notePart(lastIn) }

func (s *Stream) publishSegment(sess *session, seg *segment) (target int64, ok bool) {
	target, ok = s.addSegment(sess, seg)
	if ok {
		s.hub.noteSegment(seg.cutIn)
		s.hub.enforceBudgetSoon()
	}
	return target, ok
}

func (s *Stream) endPublish(sess *session) bool {
	ended := s.endSession(sess)
	s.hub.enforceBudget() // an ended stream is the first to go when the store is over budget
	return ended
}

func (s *Stream) received(n int) {
	s.framesIn.Add(1)
	s.bytesIn.Add(int64(n))
}
