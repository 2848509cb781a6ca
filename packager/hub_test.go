package packager_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

var gop2s = media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}}

func TestBusyKeyAndTakeover(t *testing.T) {
	h, c := newHub(t, packager.Config{TakeoverAfter: 3 * time.Second})
	kicked := 0
	old, err := h.Publish("live", "a", "10.0.0.1:1", func() { kicked++ })
	if err != nil {
		t.Fatal(err)
	}
	m := gop2s
	m.until = 5000
	publish(t, old, m)

	c.Advance(2900 * time.Millisecond)
	if _, err := h.Publish("live", "a", "10.0.0.2:2", nil); !errors.Is(err, packager.ErrStreamBusy) {
		t.Fatalf("second publisher within TakeoverAfter: %v, want ErrStreamBusy", err)
	}
	if kicked != 0 {
		t.Fatal("kick called for a refused newcomer")
	}
	// A write resets the silence clock.
	if err := old.WriteMetadata(&remux.Metadata{}); err != nil {
		t.Fatal(err)
	}
	c.Advance(2900 * time.Millisecond)
	if _, err := h.Publish("live", "a", "10.0.0.2:2", nil); !errors.Is(err, packager.ErrStreamBusy) {
		t.Fatalf("after a write: %v, want ErrStreamBusy", err)
	}
	c.Advance(200 * time.Millisecond)
	nw, err := h.Publish("live", "a", "10.0.0.2:2", nil)
	if err != nil {
		t.Fatalf("takeover after 3.1 s of silence: %v", err)
	}
	if kicked != 1 {
		t.Fatalf("kick called %d times, want 1", kicked)
	}
	st := mustStream(t, h, "live", "a")
	before := st.Snapshot()
	if !before.Live || before.Remote != "10.0.0.2:2" {
		t.Fatalf("after takeover: live %v remote %q", before.Live, before.Remote)
	}
	// The old session is cut off: writes fail, Close leaves the stream alone.
	if err := old.WriteFrame(&remux.Frame{Track: videoA, DTS: 5000, Key: true, Data: []byte{1}}); !errors.Is(err, packager.ErrTakenOver) {
		t.Fatalf("old session write: %v, want ErrTakenOver", err)
	}
	if err := old.Close(errors.New("kicked")); err != nil {
		t.Fatal(err)
	}
	after := st.Snapshot()
	if after != before || !after.Live {
		t.Fatal("the superseded session's Close changed the stream")
	}
	// The newcomer continues the playlist after a discontinuity.
	publish(t, nw, m)
	closeWriter(t, nw)
	p := snapshotPlaylist(t, st)
	if !p.ended || len(p.segs) != 5 || !p.segs[2].disc || p.segs[0].disc {
		t.Fatalf("after takeover and close: %+v", p)
	}
}

func TestLingerEviction(t *testing.T) {
	h, c := newHub(t, packager.Config{Linger: 30 * time.Second})
	w := mustPublish(t, h, "live", "a")
	m := gop2s
	m.until = 5000
	publish(t, w, m)
	st := mustStream(t, h, "live", "a")
	seg := "ts/" + snapshotPlaylist(t, st).segs[0].name
	closeWriter(t, w)
	if h.StoreBytes() == 0 || st.Snapshot().Bytes != h.StoreBytes() {
		t.Fatalf("store bytes %d, stream bytes %d", h.StoreBytes(), st.Snapshot().Bytes)
	}
	c.Advance(29 * time.Second)
	h.Sweep()
	if _, err := h.Stream("live", "a"); err != nil {
		t.Fatalf("evicted before the linger: %v", err)
	}
	if _, ok := st.Object(seg); !ok {
		t.Fatal("segment gone before the linger")
	}
	c.Advance(time.Second)
	h.Sweep()
	if _, err := h.Stream("live", "a"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("after the linger: %v, want ErrNotFound", err)
	}
	if _, ok := st.Object(seg); ok {
		t.Fatal("segment still served after eviction")
	}
	if _, ok := st.Object(packager.PlaylistPath); ok {
		t.Fatal("playlist still served after eviction")
	}
	if n := h.StoreBytes(); n != 0 {
		t.Fatalf("store bytes %d after eviction", n)
	}
	if len(h.Streams()) != 0 {
		t.Fatal("Streams lists an evicted stream")
	}

	// Re-created, the stream starts a new playlist whose names differ from the
	// evicted one's, so a CDN cannot serve a stale copy.
	w = mustPublish(t, h, "live", "a")
	publish(t, w, m)
	closeWriter(t, w)
	st2 := mustStream(t, h, "live", "a")
	p := snapshotPlaylist(t, st2)
	if p.msn != 0 || p.segs[0].disc {
		t.Fatalf("re-created stream: %+v", p)
	}
	if "ts/"+p.segs[0].name == seg {
		t.Fatalf("segment name %s reused after re-creation", seg)
	}
}

func TestRepublishWithinLinger(t *testing.T) {
	h, c := newHub(t, packager.Config{Linger: 30 * time.Second})
	m := gop2s
	m.until = 4000
	w := mustPublish(t, h, "live", "a")
	publish(t, w, m)
	closeWriter(t, w)
	c.Advance(20 * time.Second)
	w = mustPublish(t, h, "live", "a")
	c.Advance(20 * time.Second)
	h.Sweep() // the first end's linger has passed, but the stream is live again
	publish(t, w, m)
	st := mustStream(t, h, "live", "a")
	p := snapshotPlaylist(t, st)
	if p.ended || len(p.segs) != 3 || !p.segs[2].disc {
		t.Fatalf("republish: %+v", p)
	}
	// PROGRAM-DATE-TIME anchors at the republish.
	if want := t0.Add(20 * time.Second); !p.segs[2].pdt.Equal(want) {
		t.Fatalf("republish PDT %v, want %v", p.segs[2].pdt, want)
	}
	closeWriter(t, w)
}

func TestWindowSequences(t *testing.T) {
	h, c := newHub(t, packager.Config{WindowSegments: 3})
	m := gop2s
	m.until = 5000 // 3 segments: 2 s, 2 s, 1 s
	total, discs := 0, 0
	removedDiscs := 0
	var discAt []bool // per media sequence number
	for round := 0; round < 6; round++ {
		w := mustPublish(t, h, "live", "a")
		publish(t, w, m)
		closeWriter(t, w)
		c.Advance(10 * time.Second)
		for i := 0; i < 3; i++ {
			discAt = append(discAt, round > 0 && i == 0)
		}
		total += 3
		if round > 0 {
			discs++
		}
		p := snapshotPlaylist(t, mustStream(t, h, "live", "a"))
		removed := total - len(p.segs)
		if p.msn != int64(removed) {
			t.Fatalf("round %d: media sequence %d, want %d removed", round, p.msn, removed)
		}
		removedDiscs = 0
		for _, d := range discAt[:removed] {
			if d {
				removedDiscs++
			}
		}
		if p.discSeq != int64(removedDiscs) {
			t.Fatalf("round %d: discontinuity sequence %d, want %d", round, p.discSeq, removedDiscs)
		}
		var listed int64
		for i, s := range p.segs {
			if s.disc != discAt[removed+i] {
				t.Fatalf("round %d: segment %d discontinuity %v", round, removed+i, s.disc)
			}
			listed += s.dur
		}
		// RFC 8216 6.2.2: at least three target durations stay listed.
		if removed > 0 && listed < 3*p.target*1000 {
			t.Fatalf("round %d: %d ms listed < 3 x %d s", round, listed, p.target)
		}
	}
	if removedDiscs == 0 || discs != 5 {
		t.Fatalf("test did not roll discontinuities out: %d removed of %d", removedDiscs, discs)
	}
}

func TestRemovedSegmentsServedThenDeleted(t *testing.T) {
	h, c := newHub(t, packager.Config{WindowSegments: 3})
	w := mustPublish(t, h, "live", "a")
	st := mustStream(t, h, "live", "a")
	var first string
	frames := func(from, until int64) {
		m := gop2s
		m.start, m.until = from, until
		writeFrames(t, w, m.frames())
	}
	if err := w.WriteTrack(videoA); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTrack(audioA); err != nil {
		t.Fatal(err)
	}
	frames(0, 8100) // segments 0..3 closed, window keeps 1..3
	p := snapshotPlaylist(t, st)
	first = "ts/" + strings.TrimSuffix(p.segs[0].name, "1.ts") + "0.ts"
	if p.msn != 1 {
		t.Fatalf("media sequence %d, want 1", p.msn)
	}
	if _, ok := st.Object(first); !ok {
		t.Fatal("segment 0 not served right after leaving the window")
	}
	before := h.StoreBytes()
	// It stays for its duration plus the playlist's (2 s + 8 s).
	c.Advance(9 * time.Second)
	h.Sweep()
	if _, ok := st.Object(first); !ok {
		t.Fatal("segment 0 deleted too early")
	}
	c.Advance(time.Second)
	h.Sweep()
	if _, ok := st.Object(first); ok {
		t.Fatal("segment 0 still served 10 s after leaving the window")
	}
	if after := h.StoreBytes(); after >= before {
		t.Fatalf("store bytes %d -> %d", before, after)
	}
	if o, ok := st.Object(packager.PlaylistPath); !ok || o.ContentType != packager.ContentTypePlaylist {
		t.Fatal("playlist object missing")
	}
	for _, bad := range []string{"", "ts/", "ts/../x", "x/index.m3u8", "ts/nope.ts", "v/", "a/nope.m4s", "v/init-0-0.mp4", "index.mpd/"} {
		if _, ok := st.Object(bad); ok {
			t.Errorf("Object(%q) found", bad)
		}
	}
	closeWriter(t, w)
}

func TestStoreBudget(t *testing.T) {
	// Each synthetic segment holds about 2 s of 5-byte video and 2-byte audio
	// frames plus record headers: a little over 2 KB.
	const limit = 20000
	h, c := newHub(t, packager.Config{MaxStoreBytes: limit, WindowSegments: 6, Linger: time.Hour})
	m := gop2s
	m.until = 20000
	// Ended streams are evicted first, oldest first.
	for _, name := range []string{"a", "b", "c"} {
		w := mustPublish(t, h, "live", name)
		publish(t, w, m)
		closeWriter(t, w)
		c.Advance(time.Second)
		if n := h.StoreBytes(); n > limit {
			t.Fatalf("after %s: store %d > %d", name, n, limit)
		}
	}
	if _, err := h.Stream("live", "a"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("oldest ended stream not evicted: %v", err)
	}
	// A live stream over budget on its own keeps every segment of its window
	// (viewers are never cut off), and while the store is over budget a new
	// stream is refused.
	w := mustPublish(t, h, "live", "big")
	m.until = 200000
	publish(t, w, m)
	st := mustStream(t, h, "live", "big")
	if s := st.Snapshot(); s.Segments != 6 || s.Bytes > h.StoreBytes() {
		t.Fatalf("live stream over budget: %d segments (want the whole window of 6), %d bytes", s.Segments, s.Bytes)
	}
	if h.StoreBytes() <= limit {
		t.Fatalf("store %d: the test needs the live window alone over the %d budget", h.StoreBytes(), limit)
	}
	if _, err := h.Publish("live", "new", "", nil); !errors.Is(err, packager.ErrStoreFull) {
		t.Fatalf("new stream while over budget: %v, want ErrStoreFull", err)
	}
	closeWriter(t, w)
	c.Advance(2 * time.Hour)
	h.Sweep()
	if n := h.StoreBytes(); n != 0 {
		t.Fatalf("store %d after every stream was evicted", n)
	}
}

// TestStoreAdmissionCountsGrowth: streams that have just started hold nothing
// yet, but each will fill a window; a burst of them is admitted only as far as
// their expected windows fit the budget.
func TestStoreAdmissionCountsGrowth(t *testing.T) {
	// 2 s segments and a 3-segment window: a stream of unknown bitrate reserves
	// 4 × 6 s at 1 Mbit/s = 3 000 000 bytes.
	const reserve = 3_000_000
	h, _ := newHub(t, packager.Config{MaxStoreBytes: 2*reserve + reserve/2, WindowSegments: 3, Linger: time.Hour})
	for _, name := range []string{"a", "b"} {
		mustPublish(t, h, "live", name)
	}
	if _, err := h.Publish("live", "c", "", nil); !errors.Is(err, packager.ErrStoreFull) {
		t.Fatalf("a third new stream beside two young ones, reserving %d of %d: %v, want ErrStoreFull", 3*reserve, 2*reserve+reserve/2, err)
	}
	if c := h.StoreCommitted(); c != 3*reserve {
		t.Fatalf("committed %d, want %d", c, 3*reserve)
	}
	if h.StoreBytes() != 0 {
		t.Fatalf("store %d: the refusal must come from the projection, not from bytes held", h.StoreBytes())
	}

}

// TestStoreCeilingEndsTheNewestLiveStream: live windows that grow a quarter past
// the budget after admission get the newest stream's publisher kicked; the
// older stream keeps its publisher.
func TestStoreCeilingEndsTheNewestLiveStream(t *testing.T) {
	m := gop2s
	m.until = 12000 // a window's worth: nothing retired yet
	// What one steady stream of 2 s GOPs holds, measured on a hub of its own.
	probe, _ := newHub(t, packager.Config{WindowSegments: 6})
	publish(t, mustPublish(t, probe, "live", "probe"), m)
	steady := probe.StoreBytes()
	// Room for two such streams, not for more.
	limit := steady*2 + steady/5
	h, c := newHub(t, packager.Config{MaxStoreBytes: limit, WindowSegments: 6, Linger: time.Hour})
	kicked := map[string]int{}
	publishKickable := func(name string) remux.Writer {
		t.Helper()
		w, err := h.Publish("live", name, "127.0.0.1:5000", func() { kicked[name]++ })
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// A steady stream, then a newcomer admitted on its figures that sends forty
	// times the frames (1000 fps video): its window alone passes the ceiling.
	old := publishKickable("old")
	publish(t, old, m)
	c.Advance(time.Minute)
	young := publishKickable("young")
	m.vStep, m.gops = 1, []int64{2000}
	publish(t, young, m)
	if n := h.StoreBytes(); n <= limit+limit/4 {
		t.Fatalf("store %d: the test needs it over the %d ceiling", n, limit+limit/4)
	}
	h.Sweep()
	// A kick is idempotent (it closes the connection), and every scan until the
	// session ends repeats it.
	if kicked["young"] == 0 || kicked["old"] != 0 {
		t.Fatalf("kicks %v, want the newer stream's only (store %d after the sweep, limit %d)", kicked, h.StoreBytes(), limit)
	}
}

func TestMaxStreams(t *testing.T) {
	h, _ := newHub(t, packager.Config{MaxStreams: 2})
	a := mustPublish(t, h, "live", "a")
	b := mustPublish(t, h, "live", "b")
	if _, err := h.Publish("live", "c", "", nil); !errors.Is(err, packager.ErrTooManyStreams) {
		t.Fatalf("third stream: %v, want ErrTooManyStreams", err)
	}
	closeWriter(t, a)
	// An ended stream makes room.
	cw, err := h.Publish("live", "c", "", nil)
	if err != nil {
		t.Fatalf("after one ended: %v", err)
	}
	var names []string
	for _, st := range h.Streams() {
		names = append(names, st.Snapshot().Name)
	}
	if strings.Join(names, ",") != "b,c" {
		t.Fatalf("streams %v", names)
	}
	closeWriter(t, b)
	closeWriter(t, cw)
}

func TestSnapshotChanged(t *testing.T) {
	h, _ := newHub(t, packager.Config{})
	w := mustPublish(t, h, "live", "a")
	st := mustStream(t, h, "live", "a")
	s0 := st.Snapshot()
	select {
	case <-s0.Changed:
		t.Fatal("changed before any change")
	default:
	}
	if s0.TSPlaylist != nil || !s0.Live {
		t.Fatalf("fresh stream: %+v", s0)
	}
	m := gop2s
	m.until = 2100
	publish(t, w, m)
	select {
	case <-s0.Changed:
	default:
		t.Fatal("Changed not closed after the first segment")
	}
	if st.Snapshot().TSPlaylist == nil {
		t.Fatal("no playlist after the first segment")
	}
	closeWriter(t, w)
}

func TestJanitorAndClose(t *testing.T) {
	h, c := newHub(t, packager.Config{Linger: time.Second, SweepInterval: 5 * time.Millisecond})
	w := mustPublish(t, h, "live", "a")
	closeWriter(t, w)
	c.Advance(2 * time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := h.Stream("live", "a"); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("janitor did not evict")
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.Close()
	h.Close()
	if _, err := h.Publish("live", "a", "", nil); !errors.Is(err, packager.ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
}
