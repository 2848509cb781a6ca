package packager

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/rtmpgate/rtmpgate/remux"
)

// Hub is the registry of streams by app and name. It is safe for concurrent use.
//
// Lock order: Hub.mu before Stream.mu; a session holds neither while calling the
// other.
type Hub struct {
	cfg      Config
	log      zerolog.Logger
	newMuxer func(video, audio *remux.Track) muxer

	total atomic.Int64 // segment bytes of all streams

	lastBudgetScan atomic.Int64 // unix ns of the last over-budget scan

	// Parts published and the sum and maximum of their publish delays: from the
	// arrival of a part's last frame to the part being fetchable, ns.
	parts, partDelay, partDelayMax atomic.Int64
	// Segments published and their availability delays (noteSegment).
	segAvail delayHistogram

	ladders    ladderCache     // the multivariant playlists of Config.Variants' ladders
	ladderMPDs ladderTimelines // their MPDs' Periods

	// members counts changes of the stream set and of multitrack streams'
	// track ids, which are what a ladder's membership is made of; bumped
	// under mu (see Stream.ladderReports).
	members atomic.Uint64

	mu        sync.Mutex
	streams   map[string]*Stream
	lastEpoch int64
	closed    bool

	stop      chan struct{}
	done      chan struct{}
	budget    chan struct{} // wakes the janitor to enforce the store budget now
	closeOnce sync.Once
}

// NewHub returns a hub and starts its janitor, which evicts streams ended longer
// than Linger ago and enforces MaxStoreBytes. Close stops it.
func NewHub(cfg Config, log zerolog.Logger) *Hub {
	h := &Hub{
		cfg:      cfg.withDefaults(),
		log:      log,
		newMuxer: newTSMuxer,
		streams:  make(map[string]*Stream),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		budget:   make(chan struct{}, 1),
	}
	go h.janitor()
	return h
}

// Close stops the janitor and waits for it. Live sessions are ended by ingest
// before; streams stay readable until the process exits.
func (h *Hub) Close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.mu.Unlock()
		close(h.stop)
		<-h.done
	})
}

func (h *Hub) janitor() {
	defer close(h.done)
	t := time.NewTicker(h.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.Sweep()
		case <-h.budget:
			h.enforceBudget()
		}
	}
}

// StoreBytes is the segment bytes held by all streams.
func (h *Hub) StoreBytes() int64 { return h.total.Load() }

// StoreCommitted is what the store is headed for once every live stream and
// one more have filled their windows (see admissionLocked): over
// MaxStoreBytes, Publish refuses new streams.
func (h *Hub) StoreCommitted() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.admissionLocked(h.cfg.Now())
}

func streamKey(app, name string) string { return app + "/" + name }

// checkName accepts what can be one URL path segment without escaping surprises.
func checkName(s string) error {
	if s == "" || s == "." || s == ".." || len(s) > 128 {
		return fmt.Errorf("%w: %q", ErrInvalidName, s)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '?' || c == '#' || c == '%' {
			return fmt.Errorf("%w: %q", ErrInvalidName, s)
		}
	}
	return nil
}

// Publish starts a publish session on app/name and returns its writer, to be fed
// from the publisher's goroutine. A key with a live session is refused with
// ErrStreamBusy unless that session wrote nothing for TakeoverAfter: then its kick
// is called (outside any lock), it is superseded (its later writes and Close leave
// the stream alone, and its unflushed partial segment is lost) and the newcomer
// continues the stream. A republish of an ended, lingering key continues its
// playlist after an EXT-X-DISCONTINUITY. kick may be nil.
func (h *Hub) Publish(app, name, remote string, kick func()) (remux.Writer, error) {
	if err := checkName(app); err != nil {
		return nil, err
	}
	if err := checkName(name); err != nil {
		return nil, err
	}
	sess, err := h.publish(app, name, remote, kick, nil, 0, false)
	if err != nil {
		return nil, err // not a nil *session in a non-nil interface
	}
	return sess, nil
}

// publish is Publish of a checked name; with parent set it is the publish
// of parent's video track id (TrackStreamName), or audio track id with audio
// (AudioTrackStreamName), whose stream is told to parent on creation and
// starts at parent's next media sequence number.
func (h *Hub) publish(app, name, remote string, kick func(), parent *Stream, id uint8, audio bool) (*session, error) {
	now := h.cfg.Now()
	key := streamKey(app, name)

	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil, ErrClosed
	}
	if parent != nil && h.streams[parent.key()] != parent {
		h.mu.Unlock()
		return nil, fmt.Errorf("packager: publish %s: %w", key, ErrNotFound) // evicted meanwhile
	}
	st := h.streams[key]
	created := st == nil
	if st == nil {
		if len(h.streams) >= h.cfg.MaxStreams && !h.evictOldestEndedLocked() {
			h.mu.Unlock()
			return nil, fmt.Errorf("packager: publish %s: %w (limit %d)", key, ErrTooManyStreams, h.cfg.MaxStreams)
		}
		for h.admissionLocked(now) > h.cfg.MaxStoreBytes && h.evictOldestEndedLocked() {
		}
		if c := h.admissionLocked(now); c > h.cfg.MaxStoreBytes {
			h.mu.Unlock()
			return nil, fmt.Errorf("packager: publish %s: %w (%d bytes held, %d once live streams and this one fill their windows, limit %d)",
				key, ErrStoreFull, h.total.Load(), c, h.cfg.MaxStoreBytes)
		}
		epoch := max(now.UnixNano(), h.lastEpoch+1)
		h.lastEpoch = epoch
		st = newStream(h, app, name, now, epoch)
		h.streams[key] = st
		h.members.Add(1)
		if parent != nil {
			// The renditions of one publish are cut at the same instants:
			// numbered alike, the same segment is the same media everywhere.
			parent.mu.Lock()
			st.nextSeq = parent.nextSeq
			parent.mu.Unlock()
		}
	}
	if parent != nil {
		ids := &parent.trackIDs
		if audio {
			ids = &parent.audioIDs
		}
		if !slices.Contains(*ids, id) {
			*ids = append(*ids, id)
			slices.Sort(*ids)
			h.members.Add(1)
		}
	}
	st.mu.Lock()
	old := st.owner
	if old != nil {
		if idle := now.Sub(old.lastWriteTime()); idle < h.cfg.TakeoverAfter {
			st.mu.Unlock()
			h.mu.Unlock()
			return nil, fmt.Errorf("packager: publish %s: %w (publisher %s wrote %v ago)", key, ErrStreamBusy, old.remote, idle.Round(time.Millisecond))
		}
	}
	if old != nil {
		old.superseded.Store(true)
	}
	sess := newSession(&h.cfg, st, st.log, h.newMuxer, st.target, remote, kick, now) // st.mu is held: st.target is current
	st.owner = sess
	st.remote = remote
	st.ended = false
	st.endedNow.Store(false)
	st.liveSince.Store(now.UnixNano())
	// The new session's timestamps start over: its first segment is discontinuous
	// with whatever the playlist holds.
	republish := !created && st.nextSeq > 0
	st.discNext = republish
	st.open = nil // a superseded session's unfinished parts go with it
	render := renderNone
	if st.window != nil {
		render = renderAll
	}
	st.publishLocked(render)
	st.mu.Unlock()
	h.mu.Unlock()

	if old != nil {
		sess.log.Warn().Str("old_remote", old.remote).Time("old_last_write", old.lastWriteTime()).Msg("takeover of a silent publisher")
		if old.kick != nil {
			old.kick()
		}
	}
	sess.log.Debug().Bool("republish", republish).Msg("publish")
	return sess, nil
}

// Stream returns the stream of app/name, live or lingering, or ErrNotFound.
func (h *Hub) Stream(app, name string) (*Stream, error) {
	h.mu.Lock()
	st := h.streams[streamKey(app, name)]
	h.mu.Unlock()
	if st == nil {
		return nil, fmt.Errorf("packager: %s/%s: %w", app, name, ErrNotFound)
	}
	return st, nil
}

// ErrNotLive is returned by Kick for a stream with no publisher on it.
var ErrNotLive = errors.New("packager: stream has no publisher")

// Kick ends the live publisher of app/name (an operator's DELETE): its connection
// is closed and the stream ends as on any disconnect, lingering with ENDLIST.
func (h *Hub) Kick(app, name string) error {
	st, err := h.Stream(app, name)
	if err != nil {
		return err
	}
	st.mu.Lock()
	owner := st.owner
	st.mu.Unlock()
	if owner == nil {
		return fmt.Errorf("packager: %s/%s: %w", app, name, ErrNotLive)
	}
	if owner.kick != nil {
		owner.kick()
	}
	return nil
}

// Streams returns every stream, live or lingering, sorted by app then name.
func (h *Hub) Streams() []*Stream {
	h.mu.Lock()
	out := make([]*Stream, 0, len(h.streams))
	for _, st := range h.streams {
		out = append(out, st)
	}
	h.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].app != out[j].app {
			return out[i].app < out[j].app
		}
		return out[i].name < out[j].name
	})
	return out
}

// Sweep runs one janitor pass at Config.Now: evicts streams ended at least Linger
// ago, deletes kept segments whose time is up, and enforces MaxStoreBytes. The
// janitor calls it every SweepInterval; tests with a fake clock call it directly.
func (h *Hub) Sweep() {
	now := h.cfg.Now()
	// The hub lock is held only to list the streams and to evict: taking every
	// stream's lock under it made new publishes wait for the whole sweep, and on
	// a saturated machine (1000 streams) each stream lock costs a trip through
	// the run queue: publishes stalled 10 to 43 s and their clients gave up.
	h.mu.Lock()
	all := make([]keyedStream, 0, len(h.streams))
	for key, st := range h.streams {
		all = append(all, keyedStream{key, st})
	}
	h.mu.Unlock()
	var done []keyedStream
	for _, e := range all {
		// A busy live stream has a publisher adding a segment, which drops its
		// own expired segments (addSegment): skip it rather than queue for its
		// lock. An ended stream's lock is only ever held briefly: wait for it.
		if !e.st.endedNow.Load() {
			if !e.st.mu.TryLock() {
				continue
			}
		} else {
			e.st.mu.Lock()
		}
		if e.st.lingeredLocked(now, h.cfg.Linger) {
			done = append(done, e)
		} else if e.st.dropExpiredLocked(now) {
			e.st.publishLocked(renderNone)
		}
		e.st.mu.Unlock()
	}
	if len(done) > 0 {
		h.mu.Lock()
		for _, e := range done {
			if h.streams[e.key] != e.st {
				continue // evicted or replaced meanwhile
			}
			e.st.mu.Lock()
			if e.st.lingeredLocked(now, h.cfg.Linger) { // not republished meanwhile
				h.evictLocked(e.key, e.st, "linger")
			}
			e.st.mu.Unlock()
		}
		h.mu.Unlock()
	}
	h.enforceBudget()
}

type keyedStream struct {
	key string
	st  *Stream
}

// lingeredLocked reports whether the stream ended at least linger ago; the
// caller holds s.mu.
func (s *Stream) lingeredLocked(now time.Time, linger time.Duration) bool {
	return s.ended && now.Sub(s.endedAt) >= linger
}

// evictLocked removes a stream; the caller holds h.mu and st.mu.
func (h *Hub) evictLocked(key string, st *Stream, reason string) {
	freed := st.bytes
	st.evictLocked()
	delete(h.streams, key)
	h.members.Add(1)
	st.log.Info().Str("reason", reason).Int64("bytes", freed).Dur("ended_for", h.cfg.Now().Sub(st.endedAt)).Msg("evicted")
}

// evictOldestEndedLocked evicts the stream that ended first, to make room for a
// new one; the caller holds h.mu.
func (h *Hub) evictOldestEndedLocked() bool {
	var (
		victim    *Stream
		victimKey string
	)
	for key, st := range h.streams {
		// Live streams are not candidates: skipping them without taking their
		// locks keeps the hub lock (which Publish needs) short; waiting for each
		// busy publisher's lock in turn took seconds at 1000 streams.
		if !st.endedNow.Load() {
			continue
		}
		st.mu.Lock()
		if st.ended && (victim == nil || st.endedAt.Before(victim.endedAt)) {
			victim, victimKey = st, key
		}
		st.mu.Unlock()
	}
	if victim == nil {
		return false
	}
	victim.mu.Lock()
	h.evictLocked(victimKey, victim, "max streams")
	victim.mu.Unlock()
	return true
}

// admissionLocked is what the store is headed for if one more stream comes:
// what it holds, plus the growth each live stream still has before its window
// and kept segments fill (2 windows and a segment after it started), projected
// from its bytes so far, plus the newcomer's share. A stream too young to tell,
// the newcomer included, counts the mean of the others, or newStreamReserve when
// none is known; with no live stream the newcomer counts nothing, so a budget
// smaller than one stream still takes one. Admission against what is held alone
// let a burst of new streams in while their windows were empty, and together
// they then grew past the budget and, with the budget a share of the memory
// limit, past that. Call with h.mu held; it takes no stream's lock.
func (h *Hub) admissionLocked(now time.Time) int64 {
	committed, reserve := h.projectLocked(now)
	return committed + reserve
}

// projectLocked returns what the live streams will hold once their windows
// fill (the store's other bytes included) and the newcomer's share.
func (h *Hub) projectLocked(now time.Time) (committed, reserve int64) {
	steady := time.Duration(2*h.cfg.WindowSegments+1) * h.cfg.SegmentDuration
	known := 2 * h.cfg.SegmentDuration // long enough to have listed segments: a bitrate to project from
	var growth, projected, young, counted int64
	for _, st := range h.streams {
		since := st.liveSince.Load()
		if since == 0 {
			continue
		}
		age, b := now.Sub(time.Unix(0, since)), st.bytesNow.Load()
		switch {
		case age >= steady:
			projected += b
			counted++
		case age >= known:
			full := int64(float64(b) * float64(steady) / float64(age))
			growth += full - b
			projected += full
			counted++
		default:
			young++
			growth -= b // reserved in full below
		}
	}
	reserve = h.newStreamReserve()
	if counted > 0 {
		reserve = projected / counted
	}
	committed = h.total.Load() + growth + young*reserve
	if counted+young == 0 {
		reserve = 0
	}
	return committed, reserve
}

// newStreamReserve is the store a stream of unknown bitrate is expected to
// take: about 4 × its window (TS and CMAF, the window and the segments kept
// after it) at 1 Mbit/s.
func (h *Hub) newStreamReserve() int64 {
	return 4 * int64(h.cfg.WindowSegments) * int64(h.cfg.SegmentDuration/time.Millisecond) * 1_000_000 / 8 / 1000
}

// budgetScanEvery bounds how often an over-budget store is scanned for bytes to free.
const budgetScanEvery = 100 * time.Millisecond

// enforceBudget brings the store back within MaxStoreBytes where that costs no
// live viewer anything: first by deleting segments that already left their
// playlists, then by evicting ended streams, oldest first. A live stream never
// loses a segment still in its window: when live windows alone exceed the budget
// the store stays over it, /readyz says so, and Publish refuses new streams
// (ErrStoreFull) until it is back under.
func (h *Hub) enforceBudget() {
	limit := h.cfg.MaxStoreBytes
	if h.total.Load() <= limit {
		return
	}
	for _, st := range h.Streams() {
		st.mu.Lock()
		if st.dropRetiredLocked(len(st.retired)) {
			st.publishLocked(renderNone)
		}
		st.mu.Unlock()
		if h.total.Load() <= limit {
			return
		}
	}
	h.mu.Lock()
	for h.total.Load() > limit {
		if !h.evictOldestEndedLocked() {
			break
		}
	}
	h.mu.Unlock()
	if h.total.Load() > limit+limit/storeCeilingShare {
		h.endNewestLive()
	}
}

// storeCeilingShare sets the store's hard ceiling, the budget plus a quarter:
// live windows alone can pass the budget only when their streams' bitrates
// rise after admission, and past the ceiling the newest live stream is ended
// rather than the process running into its memory limit, where the kernel would
// end every stream at once.
const storeCeilingShare = 4

// endNewestLive disconnects the publisher of the live stream that started last.
// Its segments stay served as an ended stream's until the budget needs them.
func (h *Hub) endNewestLive() {
	var newest *Stream
	h.mu.Lock()
	for _, st := range h.streams {
		if since := st.liveSince.Load(); since != 0 && (newest == nil || since > newest.liveSince.Load()) {
			newest = st
		}
	}
	h.mu.Unlock()
	if newest == nil {
		return
	}
	newest.mu.Lock()
	owner := newest.owner
	newest.mu.Unlock()
	if owner == nil || owner.kick == nil {
		return
	}
	newest.log.Warn().Int64("store_bytes", h.total.Load()).Int64("max_store_bytes", h.cfg.MaxStoreBytes).
		Msg("store over its ceiling: the newest live stream is ended")
	owner.kick()
}

// enforceBudgetSoon is enforceBudget for the segment path: every segment publish
// calls it, and while the store is over budget it wakes the janitor to scan, at
// most every budgetScanEvery, so streams over a budget that only live windows
// fill do not lock every other stream on every segment.
func (h *Hub) enforceBudgetSoon() {
	if h.total.Load() <= h.cfg.MaxStoreBytes {
		return
	}
	now := time.Now().UnixNano()
	if last := h.lastBudgetScan.Load(); now-last < int64(budgetScanEvery) || !h.lastBudgetScan.CompareAndSwap(last, now) {
		return
	}
	// The janitor scans, not this publisher: a scan visits every stream, and
	// the publisher's own connection must not stall meanwhile.
	select {
	case h.budget <- struct{}{}:
	default:
	}
}

// notePart records a part published now whose last frame arrived at lastIn
// (unix ns).
func (h *Hub) notePart(lastIn int64) {
	if lastIn == 0 || h.cfg.DisableLowLatency {
		return
	}
	d := h.cfg.Now().UnixNano() - lastIn
	if d < 0 {
		return
	}
	h.parts.Add(1)
	h.partDelay.Add(d)
	for {
		m := h.partDelayMax.Load()
		if d <= m || h.partDelayMax.CompareAndSwap(m, d) {
			return
		}
	}
}

// PartStats are the parts published by all streams and the time from the
// arrival of each part's last frame to the part being fetchable. That time is
// at least one frame interval: a part ends where the track's next frame
// starts, so it is cut when that frame arrives.
type PartStats struct {
	Parts    int64
	DelaySum time.Duration
	DelayMax time.Duration
}

// PartStats returns the totals since the hub started.
func (h *Hub) PartStats() PartStats {
	return PartStats{Parts: h.parts.Load(), DelaySum: time.Duration(h.partDelay.Load()), DelayMax: time.Duration(h.partDelayMax.Load())}
}

// noteSegment records a segment listed now whose closing frame (the keyframe
// that cut it) arrived at cutIn (unix ns). Audio beside it does not hold it
// back; a track that must wait for its next frame (see cmafTrack) is in the
// delay.
func (h *Hub) noteSegment(cutIn int64) {
	if cutIn == 0 {
		return
	}
	if d := h.cfg.Now().UnixNano() - cutIn; d >= 0 {
		h.segAvail.observe(d)
	}
}

// SegmentAvailability is the histogram of segment availability delays, all
// streams: from the arrival of the keyframe that closes a segment to the
// segment being listed in the playlists (a snapshot holding it is out; its
// documents render on request). Segments closed by an unpublish or a track
// change are not counted: no keyframe closed them.
func (h *Hub) SegmentAvailability() Histogram { return h.segAvail.snapshot() }

// availBuckets are the histogram's upper bounds, seconds: fine below the 5 ms
// the delay should stay under, coarse above up to the audio frame wait (~23 ms)
// and beyond.
var availBuckets = [...]float64{0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 1}

// delayHistogram counts delays into availBuckets with atomics: the publisher
// goroutines observe, a metrics scrape reads.
type delayHistogram struct {
	counts [len(availBuckets) + 1]atomic.Uint64 // per bucket; the last is +Inf
	sum    atomic.Int64                         // ns
}

func (d *delayHistogram) observe(ns int64) {
	s := float64(ns) / 1e9
	i := 0
	for i < len(availBuckets) && s > availBuckets[i] {
		i++
	}
	d.counts[i].Add(1)
	d.sum.Add(ns)
}

func (d *delayHistogram) snapshot() Histogram {
	h := Histogram{Buckets: make(map[float64]uint64, len(availBuckets))}
	for i, le := range availBuckets {
		h.Count += d.counts[i].Load()
		h.Buckets[le] = h.Count
	}
	h.Count += d.counts[len(availBuckets)].Load()
	h.Sum = time.Duration(d.sum.Load()).Seconds()
	return h
}

// Histogram is a cumulative histogram of durations in seconds, shaped as
// prometheus.MustNewConstHistogram takes it.
type Histogram struct {
	Count   uint64
	Sum     float64            // seconds
	Buckets map[float64]uint64 // upper bound, s: observations at or below it
}

// Quantile estimates the q-quantile (0 < q < 1) in seconds the way Prometheus'
// histogram_quantile does: linear within the bucket it falls in. It is NaN with
// no observations and the highest bound when it falls in +Inf.
func (h Histogram) Quantile(q float64) float64 {
	if h.Count == 0 {
		return math.NaN()
	}
	rank := q * float64(h.Count)
	lo, below := 0.0, uint64(0)
	for _, le := range availBuckets {
		n, ok := h.Buckets[le]
		if !ok {
			continue
		}
		if float64(n) >= rank {
			if n == below {
				return le
			}
			return lo + (le-lo)*(rank-float64(below))/float64(n-below)
		}
		lo, below = le, n
	}
	return lo
}
