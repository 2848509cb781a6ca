package ingest

import (
	"os"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// Paced connections end every way a publisher can (kicked, hung up, silent past
// ReadTimeout, server shut down) and each gives back its descriptor; frames keep
// flowing to the ones still live meanwhile.
func TestPacedReadsReleaseEveryConnection(t *testing.T) {
	cp := loadCapture(t)
	before := openFDs(t)
	h := newRecHandler()
	s := &Server{Handler: h, ReadInterval: 10 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, Logger: testLogger(t)}
	addr := startServer(t, s)

	const n = 12
	clients := make([]*testClient, n)
	writers := make([]*recWriter, n)
	for i := range clients {
		clients[i] = dialClient(t, addr)
		clients[i].publish("live", "paced")
		writers[i] = h.next(t)
		must(t, clients[i].send(rtmp.MsgAudio, 1, 0, cp.aacSeq))
	}
	// Every connection is on the pacer now; frames reach each Writer.
	for ts := uint32(0); ts < 200; ts += 20 {
		for _, c := range clients {
			must(t, c.send(rtmp.MsgAudio, 1, ts, cp.aacFrame))
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, w := range writers {
		waitFor(t, "10 frames on every connection", func() bool { n, _ := w.count(remux.TrackAudio); return n == 10 })
	}
	if s.pacer == nil || s.pacer.Len() != n {
		t.Fatalf("pacer %v, want %d connections on it", s.pacer, n)
	}

	// Kicked, hung up, silent: four each, while the last four keep publishing.
	for i := 0; i < 4; i++ {
		writers[i].req.Kick()
		clients[i].expectClosed(2 * time.Second)
		clients[4+i].nc.Close()
	}
	deadline := time.Now().Add(2 * time.Second)
	for ts := uint32(200); time.Now().Before(deadline); ts += 20 {
		for _, c := range clients[8:] {
			must(t, c.send(rtmp.MsgAudio, 1, ts, cp.aacFrame))
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := 0; i < 8; i++ {
		writers[i].wait(t)
	}
	// 8..11 stayed alive past ReadTimeout because they kept sending.
	for _, w := range writers[8:] {
		if n, _ := w.count(remux.TrackAudio); n < 50 {
			t.Errorf("a live paced publisher delivered %d frames in 2 s, want ≥ 50", n)
		}
	}
	// Now silent: closed after ReadTimeout (0.5 s) plus its slack and a scan.
	for _, c := range clients[8:] {
		c.expectClosed(3 * time.Second)
	}
	for _, w := range writers[8:] {
		w.wait(t)
	}
	waitFor(t, "pacer empty", func() bool { return s.pacer.Len() == 0 })
	for _, c := range clients {
		c.nc.Close()
	}
	// The listener and the pacer's epoll set stay until the server's cleanup.
	waitFor(t, "descriptors back to the count before", func() bool { return openFDs(t) <= before+2 })
}
