package packager

import (
	"errors"
	"time"
)

// ErrTooFarAhead answers a blocking playlist request for a segment or part so far
// past the live edge that RFC 8216bis 6.2.5.2 has the server refuse it (400)
// rather than hold it.
var ErrTooFarAhead = errors.New("packager: requested segment or part too far ahead of the live edge")

// advancePartLimit is RFC 8216bis 6.2.5.2's Advance Part Limit: a request may name
// a part at most this many past the last one listed. It is three divided by the
// PART-TARGET in seconds when that is under a second (three seconds of parts: 15
// at 200 ms), three otherwise. hls.js outside its low-latency mode asks for the
// segment being produced up to the highest part index earlier segments had
// (about 10 at 200 ms parts), which a limit of three parts refused with a 400.
func (snap *Snapshot) advancePartLimit() int {
	pt := snap.hub.cfg.PartTarget
	if pt <= 0 || pt >= time.Second {
		return 3
	}
	return int(3 * time.Second / pt)
}

// LowLatency reports whether the stream serves parts and LL-HLS playlists.
func (snap *Snapshot) LowLatency() bool { return snap.ll }

// TargetDuration is the playlists' EXT-X-TARGETDURATION, 0 until the first
// segment; blocking requests wait at most three of it (RFC 8216bis 6.2.5.2).
func (snap *Snapshot) TargetDuration() time.Duration { return time.Duration(snap.target) * time.Second }

// Ended reports whether the playlists carry EXT-X-ENDLIST: nothing more will
// come, so no request should wait.
func (snap *Snapshot) Ended() bool { return snap.ended || !snap.Live }

func rendition(path string) int {
	switch path {
	case VideoPlaylistPath:
		return vIdx
	case AudioPlaylistPath:
		return aIdx
	}
	return -1
}

// PlaylistReady reports whether the fMP4 media playlist at path already answers a
// blocking reload for media sequence number msn and, when part >= 0, part index
// part of it (_HLS_msn, _HLS_part). A request beyond the two segments (or the
// Advance Part Limit of parts) after the live edge gets ErrTooFarAhead. A stream
// with no publisher answers at once: what is listed is all there is for now.
func (snap *Snapshot) PlaylistReady(path string, msn uint64, part int) (bool, error) {
	i := rendition(path)
	if i < 0 || !snap.ll || snap.Ended() {
		return true, nil
	}
	if snap.target == 0 || !snap.listed[i] {
		return false, nil // the first segment is on its way
	}
	next := snap.nextMSN
	have := 0
	if snap.open != nil {
		have = len(snap.open.parts[i])
	}
	switch {
	case msn > next+1:
		return false, ErrTooFarAhead
	case msn < next:
		return true, nil
	case part < 0:
		return false, nil
	case msn == next && part < have:
		return true, nil
	case msn == next && part > have+snap.advancePartLimit(), msn == next+1 && part > snap.advancePartLimit():
		return false, ErrTooFarAhead
	}
	return false, nil
}

// DeltaPlaylist is the LL-HLS delta update (_HLS_skip=YES) of the media playlist
// at path; ok is false when there is nothing to skip (serve the full one).
func (snap *Snapshot) DeltaPlaylist(path string) (Object, bool) {
	i := rendition(path)
	if i < 0 || !snap.listed[i] || snap.docs.get().delta[i] == nil {
		return Object{}, false
	}
	return Object{Data: snap.docs.get().delta[i], ModTime: snap.modTime, ContentType: ContentTypePlaylist}, true
}

// Upcoming reports whether path names the next part of the segment being
// produced (the one a preload hint names), the first part of the segment after
// it, or one of those two segments: a request for it may wait for it.
func (snap *Snapshot) Upcoming(path string) bool {
	i := -1
	switch {
	case len(path) > 2 && path[:2] == trackDir[vIdx]:
		i = vIdx
	case len(path) > 2 && path[:2] == trackDir[aIdx]:
		i = aIdx
	}
	if i < 0 || !snap.ll || snap.Ended() {
		return false
	}
	msn, n, ok := parsePartName(path[2:], snap.epoch)
	if !ok {
		return false
	}
	have := 0
	if snap.open != nil {
		have = len(snap.open.parts[i])
	}
	switch {
	case n < 0:
		return msn == snap.nextMSN || msn == snap.nextMSN+1
	case msn == snap.nextMSN:
		return n == have
	case msn == snap.nextMSN+1:
		return n == 0
	}
	return false
}

// SegmentSoFar returns the bytes of the CMAF segment at path while it is being
// produced: its styp and the parts cut so far, in order. What a later snapshot
// returns extends this, and the finished segment's bytes (Object) begin with
// all of it, so a response can stream the segment as it grows (low-latency
// DASH's chunked transfer). ok is false when path is not the segment being
// produced.
func (snap *Snapshot) SegmentSoFar(path string) (chunks [][]byte, ok bool) {
	if !snap.ll || snap.open == nil || len(path) < 3 {
		return nil, false
	}
	i := -1
	switch path[:2] {
	case trackDir[vIdx]:
		i = vIdx
	case trackDir[aIdx]:
		i = aIdx
	default:
		return nil, false
	}
	msn, n, ok := parsePartName(path[2:], snap.epoch)
	if !ok || n >= 0 || msn != snap.nextMSN || snap.open.init[i] == nil {
		return nil, false
	}
	parts := snap.open.parts[i]
	if len(parts) == 0 {
		return nil, true
	}
	chunks = make([][]byte, 0, len(parts)+1)
	chunks = append(chunks, snap.open.styp[i])
	for _, p := range parts {
		chunks = append(chunks, p.Data)
	}
	return chunks, true
}

// part finds part n of segment msn of track i: in the window, the segments kept
// after it, or the segment being produced.
func (snap *Snapshot) part(i int, msn uint64, n int) *part {
	if o := snap.open; o != nil && msn == snap.nextMSN {
		if n < len(o.parts[i]) {
			return o.parts[i][n]
		}
		return nil
	}
	for _, seg := range snap.objects {
		if seg.seq == msn {
			if n < len(seg.parts[i]) {
				return seg.parts[i][n]
			}
			return nil
		}
	}
	return nil
}

// maxWaitKeys bounds the distinct conditions a stream keeps channels for;
// beyond it, waiters fall back to the snapshot's Changed channel.
const maxWaitKeys = 256

type waitKey struct {
	rendition int
	msn       uint64
	part      int
}

// Wait returns a channel closed as soon as the fMP4 media playlist at path (or
// "v/", "a/" for its parts) answers PlaylistReady for msn and part, or refuses
// it, or the stream ends. Waiters for the same condition share one channel, so
// a change that does not concern them wakes none of them: thousands of parked
// requests cost the publisher one channel close per part they asked for, not
// one wake-up each per change.
func (s *Stream) Wait(path string, msn uint64, part int) <-chan struct{} {
	i := rendition(path)
	if i < 0 {
		switch {
		case len(path) >= 2 && path[:2] == trackDir[vIdx]:
			i = vIdx
		case len(path) >= 2 && path[:2] == trackDir[aIdx]:
			i = aIdx
		default:
			return s.snap.Load().Changed
		}
	}
	k := waitKey{i, msn, part}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := s.snap.Load()
	if ready, err := snap.PlaylistReady(playlistPath[i], msn, part); ready || err != nil {
		return closedChan
	}
	ch := s.waiters[k]
	if ch == nil {
		if len(s.waiters) >= maxWaitKeys {
			return snap.Changed
		}
		if s.waiters == nil {
			s.waiters = make(map[waitKey]chan struct{})
		}
		ch = make(chan struct{})
		s.waiters[k] = ch
	}
	return ch
}

var closedChan = func() chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}()

var playlistPath = [2]string{VideoPlaylistPath, AudioPlaylistPath}

// wakeLocked closes the channels of the conditions snap satisfies.
func (s *Stream) wakeLocked(snap *Snapshot) {
	for k, ch := range s.waiters {
		if ready, err := snap.PlaylistReady(playlistPath[k.rendition], k.msn, k.part); ready || err != nil {
			close(ch)
			delete(s.waiters, k)
		}
	}
}

// WaitObject is Wait for a part or segment path under "v/" or "a/": a part
// waits for itself; a segment waits for its part index have, the first its
// requester does not have yet (or for the segment to be finished).
func (s *Stream) WaitObject(path string, have int) <-chan struct{} {
	if len(path) < 2 || (path[:2] != trackDir[vIdx] && path[:2] != trackDir[aIdx]) {
		return s.snap.Load().Changed
	}
	msn, n, ok := parsePartName(path[2:], s.epoch)
	if !ok {
		return s.snap.Load().Changed
	}
	if n < 0 {
		n = have
	}
	return s.Wait(path[:2], msn, n)
}
