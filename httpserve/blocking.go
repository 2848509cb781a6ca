package httpserve

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
)

// minWaitCap bounds a blocking request before the stream's target duration is
// known (RFC 8216bis 6.2.5.2 allows three target durations).
const minWaitCap = 6 * time.Second

// waitCap is how long a request may wait for a stream to change: the
// configured MaxBlockingWait, else three target durations.
func (s *server) waitCap(snap *packager.Snapshot) time.Duration {
	if s.cfg.MaxBlockingWait > 0 {
		return s.cfg.MaxBlockingWait
	}
	return max(3*snap.TargetDuration(), minWaitCap)
}

// blockingQuery is an LL-HLS playlist request's delivery directives.
type blockingQuery struct {
	block     bool
	msn       uint64
	part      int // -1 without _HLS_part
	skip      bool
	malformed bool
}

func parseBlockingQuery(r *http.Request) blockingQuery {
	q := blockingQuery{part: -1}
	if r.URL.RawQuery == "" {
		return q
	}
	v := r.URL.Query()
	if s := v.Get("_HLS_msn"); s != "" {
		n, err := strconv.ParseUint(s, 10, 63)
		q.block, q.msn, q.malformed = err == nil, n, err != nil
	}
	if s := v.Get("_HLS_part"); s != "" {
		n, err := strconv.ParseUint(s, 10, 31)
		// _HLS_part without _HLS_msn is an error (RFC 8216bis 6.2.5.2).
		q.part, q.malformed = int(n), q.malformed || err != nil || !q.block
	}
	switch v.Get("_HLS_skip") {
	case "YES", "v2":
		q.skip = true
	}
	return q
}

// servePlaylist serves an fMP4 media playlist honoring LL-HLS delivery
// directives: with _HLS_msn it waits, on the stream's change channel with the
// request's context and a cap, until the playlist lists that segment or part,
// then answers from the snapshot that does. The wait holds no goroutine of its
// own: only the one net/http runs the handler on.
//
// With still, a playlist a blocking request waited for is served only when still
// approves of the stream as it is then (a ladder member that left meanwhile is
// a 404 there, see ladderFile); nil approves of everything.
func (s *server) servePlaylist(w http.ResponseWriter, r *http.Request, st *packager.Stream, path string, still func() bool) {
	q := parseBlockingQuery(r)
	if q.malformed {
		http.Error(w, "bad _HLS_msn or _HLS_part", http.StatusBadRequest)
		return
	}
	snap := st.Snapshot()
	if q.block {
		var ok bool
		if snap, ok = s.waitPlaylist(w, r, st, snap, path, q); !ok {
			return
		}
		if still != nil && !still() {
			notFound(w, r)
			return
		}
	}
	obj, ok := snap.Object(path)
	if !ok {
		notFound(w, r)
		return
	}
	key := path
	if q.skip {
		if d, ok := snap.DeltaPlaylist(path); ok {
			obj, key = d, path+"?_HLS_skip"
		}
	}
	s.serveDoc(w, r, st, key, obj)
}

func (s *server) waitPlaylist(w http.ResponseWriter, r *http.Request, st *packager.Stream, snap *packager.Snapshot, path string, q blockingQuery) (*packager.Snapshot, bool) {
	ready, err := snap.PlaylistReady(path, q.msn, q.part)
	if errors.Is(err, packager.ErrTooFarAhead) {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, false
	}
	if ready {
		return snap, true
	}
	s.metrics.blockingWaits.Inc()
	defer s.metrics.blockingWaits.Dec()
	timer := time.NewTimer(s.waitCap(snap))
	defer timer.Stop()
	for {
		select {
		case <-st.Wait(path, q.msn, q.part):
		case <-r.Context().Done():
			return nil, false
		case <-timer.C:
			// The cap: answer with what there is rather than an error, so a
			// publisher's gap does not turn into a storm of failed reloads.
			return st.Snapshot(), true
		}
		snap = st.Snapshot()
		ready, err = snap.PlaylistReady(path, q.msn, q.part)
		if ready || err != nil {
			// A republish can make a request that waited legitimately look far
			// ahead for an instant; answer it with the playlist, not a 400.
			return snap, true
		}
	}
}

// serveUpcoming answers a request for a part or segment that does not exist yet
// but is the next to be produced: it waits for it on the stream's change
// channel. A segment being produced is sent as its parts arrive (low-latency
// DASH's chunked transfer), each flushed at once. It reports false when path is
// not upcoming, so the caller answers 404.
func (s *server) serveUpcoming(w http.ResponseWriter, r *http.Request, st *packager.Stream, path string) bool {
	snap := st.Snapshot()
	if r.Method != http.MethodGet || !snap.Upcoming(path) {
		return false
	}
	s.metrics.mediaWaits.Inc()
	defer s.metrics.mediaWaits.Dec()
	timer := time.NewTimer(s.waitCap(snap))
	defer timer.Stop()
	stream := r.Header.Get("Range") == "" // a byte range waits for the finished object
	flusher, _ := w.(http.Flusher)
	var (
		started bool
		sent    int // chunks written
		written int // bytes written
	)
	for {
		if obj, ok := snap.Object(path); ok {
			if !started {
				s.serveImmutable(w, r, st, path, obj)
				return true
			}
			if written <= len(obj.Data) {
				_, _ = w.Write(obj.Data[written:])
			}
			return true
		}
		chunks, producing := snap.SegmentSoFar(path)
		switch {
		case producing && stream && len(chunks) > sent:
			if !started {
				started = true
				h := w.Header()
				h.Set("Content-Type", contentTypeOf(path))
				h.Set("Cache-Control", "no-cache") // a CDN must not keep a response cut short
				w.WriteHeader(http.StatusOK)
			}
			for _, c := range chunks[sent:] {
				n, err := w.Write(c)
				written += n
				if err != nil {
					return true
				}
			}
			sent = len(chunks)
			if flusher != nil {
				flusher.Flush()
			}
		case !producing && !snap.Upcoming(path):
			if started {
				// The segment will never be finished (its publisher was
				// taken over): end the response as broken, not as complete.
				panic(http.ErrAbortHandler)
			}
			notFound(w, r)
			return true
		}
		have := 0
		if sent > 0 {
			have = sent - 1 // chunks sent: the styp and that many parts
		}
		select {
		case <-st.WaitObject(path, have):
		case <-r.Context().Done():
			return true
		case <-timer.C:
			if started {
				panic(http.ErrAbortHandler)
			}
			notFound(w, r)
			return true
		}
		snap = st.Snapshot()
	}
}

func contentTypeOf(path string) string {
	if len(path) > 0 && path[0] == 'a' {
		return packager.ContentTypeAudioMP4
	}
	return packager.ContentTypeVideoMP4
}
