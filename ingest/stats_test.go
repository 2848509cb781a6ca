package ingest

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

// logBuffer collects a server's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) count(substr string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Count(b.buf.String(), substr)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// closedWithin reads from nc until the server closes it, and says how long that
// took; a connection still open after limit fails the test.
func closedWithin(t *testing.T, nc net.Conn, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	nc.SetReadDeadline(start.Add(limit))
	buf := make([]byte, 4096)
	for {
		if _, err := nc.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				t.Fatalf("connection still open after %v", limit)
			}
			return time.Since(start)
		}
	}
}

func TestStats(t *testing.T) {
	cp := loadCapture(t)
	h := newRecHandler()
	h.refuse["denied"] = &PublishError{Code: StatusPublishDenied, Err: errors.New("bad token")}
	s := &Server{Handler: h, HandshakeTimeout: 200 * time.Millisecond, Logger: testLogger(t)}
	addr := startServer(t, s)

	c := dialClient(t, addr)
	c.publish("live", "counted")
	w := h.next(t)
	must(t, c.send(rtmp.MsgVideo, 1, 0, cp.avcSeq))
	must(t, c.send(rtmp.MsgAudio, 1, 0, cp.aacSeq))
	const frames = 5
	for i := 0; i < frames; i++ {
		must(t, c.send(rtmp.MsgVideo, 1, uint32(i*33), cp.avcKey))
	}
	waitFor(t, "frames at the writer", func() bool { n, _ := w.count(remux.TrackVideo); return n == frames })
	waitFor(t, "frames counted", func() bool { return s.Stats().Frames == frames })
	st := s.Stats()
	if st.ConnsAccepted != 1 || st.ConnsActive != 1 || st.Publishing != 1 {
		t.Fatalf("live publish: %+v", st)
	}
	// Handshake (1+2*1536) plus at least the media payloads.
	if min := int64(1 + 2*rtmp.HandshakeSize + frames*len(cp.avcKey)); st.BytesIn < min {
		t.Fatalf("BytesIn %d < %d", st.BytesIn, min)
	}

	t.Run("denied publish", func(t *testing.T) {
		d := dialClient(t, addr)
		must(t, d.command(0, "connect", 1, rtmp.Object{{Key: "app", Value: "live"}}))
		d.expectCommand("_result")
		must(t, d.command(1, "publish", 2, nil, "denied", "live"))
		st := d.expectCommand("onStatus")
		if code := rtmp.StatusCode(st); code != StatusPublishDenied {
			t.Fatalf("code %q, want %q", code, StatusPublishDenied)
		}
		if desc, _ := st[3].(rtmp.Object).GetString("description"); desc != "bad token" {
			t.Fatalf("description %q", desc)
		}
		d.expectClosed(5 * time.Second)
		waitFor(t, "refusal counted", func() bool { return s.Stats().PublishRefused == 1 })
	})
	t.Run("handshake timeout", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		must(t, err)
		defer nc.Close()
		c0c1 := make([]byte, 1+rtmp.HandshakeSize/2)
		c0c1[0] = rtmp.Version
		_, err = nc.Write(c0c1)
		must(t, err)
		closedWithin(t, nc, 2*time.Second)
		waitFor(t, "timeout counted", func() bool { return s.Stats().ProtocolErrors[KindTimeout] == 1 })
		if n := s.Stats().ProtocolErrors[KindHandshake]; n != 0 {
			t.Fatalf("a stalled handshake counted as %d handshake errors, want a timeout", n)
		}
	})
	t.Run("chunk error", func(t *testing.T) {
		d := dialClient(t, addr)
		must(t, d.send(rtmp.MsgSetChunkSize, 0, 0, []byte{0, 0, 0, 0}))
		d.expectClosed(5 * time.Second)
		waitFor(t, "chunk error counted", func() bool { return s.Stats().ProtocolErrors[KindChunk] == 1 })
	})

	c.nc.Close()
	w.wait(t)
	waitFor(t, "session and connections gone", func() bool {
		st := s.Stats()
		return st.Publishing == 0 && st.ConnsActive == 0
	})
	st = s.Stats()
	if st.ConnsAccepted != 4 || st.ConnsRefused != 0 || st.Panics != 0 || st.Frames != frames {
		t.Fatalf("at the end: %+v", st)
	}
	for _, k := range []string{KindHandshake, KindChunk, KindAMF, KindCommand, KindMedia, KindTimeout} {
		if _, ok := st.ProtocolErrors[k]; !ok {
			t.Fatalf("ProtocolErrors lacks %q: %v", k, st.ProtocolErrors)
		}
	}
}

func TestMaxConnsPerIP(t *testing.T) {
	logs := &logBuffer{}
	s := &Server{Handler: newRecHandler(), MaxConnsPerIP: 2, Logger: zerolog.New(logs)}
	addr := startServer(t, s)
	dialFrom := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		nc, err := d.Dial("tcp", addr)
		must(t, err)
		t.Cleanup(func() { nc.Close() })
		return nc
	}
	held := []net.Conn{dialFrom("127.0.0.1"), dialFrom("127.0.0.1")}
	waitFor(t, "two connections accepted", func() bool { return s.Stats().ConnsActive == 2 })

	for i := 0; i < 5; i++ {
		if d := closedWithin(t, dialFrom("127.0.0.1"), 2*time.Second); d > time.Second {
			t.Fatalf("refused connection %d closed after %v", i, d)
		}
	}
	if st := s.Stats(); st.ConnsRefused != 5 || st.ConnsAccepted != 2 {
		t.Fatalf("after 5 over the limit: %+v", st)
	}
	if n := logs.count("connection refused"); n != 1 {
		t.Fatalf("%d refusal log lines for one IP, want 1:\n%s", n, logs)
	}

	// Another address is not limited by the first one's connections.
	other := dialFrom("127.0.0.2")
	waitFor(t, "the other address accepted", func() bool { return s.Stats().ConnsActive == 3 })
	other.Close()

	// A slot freed is a slot usable again.
	held[0].Close()
	waitFor(t, "a slot freed", func() bool { return s.Stats().ConnsActive == 1 })
	again := dialFrom("127.0.0.1")
	waitFor(t, "accepted again", func() bool { return s.Stats().ConnsActive == 2 })
	if st := s.Stats(); st.ConnsRefused != 5 {
		t.Fatalf("refused %d after a slot was freed", st.ConnsRefused)
	}
	again.Close()
}

func TestMaxConns(t *testing.T) {
	logs := &logBuffer{}
	s := &Server{Handler: newRecHandler(), MaxConns: 2, Logger: zerolog.New(logs)}
	addr := startServer(t, s)
	var held []net.Conn
	for _, local := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.3"} {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		nc, err := d.Dial("tcp", addr)
		must(t, err)
		defer nc.Close()
		held = append(held, nc)
		if len(held) <= 2 {
			waitFor(t, "accepted", func() bool { return s.Stats().ConnsActive == int64(len(held)) })
		}
	}
	// Past the total, whatever the address: closed at accept.
	for _, nc := range held[2:] {
		if d := closedWithin(t, nc, 2*time.Second); d > time.Second {
			t.Fatalf("closed after %v", d)
		}
	}
	if st := s.Stats(); st.ConnsRefused != 2 || st.ConnsAccepted != 2 || st.ConnsActive != 2 {
		t.Fatalf("%+v", st)
	}
	if n := logs.count("too many connections"); n != 1 {
		t.Fatalf("%d refusal lines for one refused IP, want 1:\n%s", n, logs)
	}
}

// panicWriter panics on its first frame, as a buggy Writer would.
type panicWriter struct{ recWriter }

func (w *panicWriter) WriteFrame(*remux.Frame) error { panic("test: WriteFrame exploded") }

// panicHandler hands a panicWriter to the stream named "boom", else a recWriter.
type panicHandler struct{ *recHandler }

func (h panicHandler) OnPublish(ctx context.Context, req PublishRequest) (remux.Writer, error) {
	if req.Name == "boom" {
		return &panicWriter{recWriter{req: req, closed: make(chan struct{})}}, nil
	}
	return h.recHandler.OnPublish(ctx, req)
}

// TestPanicBoundary makes a Writer panic mid-stream: only its connection ends,
// the panic is logged once with the stack and counted, and another publisher's
// frames keep arriving.
func TestPanicBoundary(t *testing.T) {
	cp := loadCapture(t)
	logs := &logBuffer{}
	rh := newRecHandler()
	var panics int
	var mu sync.Mutex
	s := &Server{Handler: panicHandler{rh}, Logger: zerolog.New(logs), OnPanic: func() { mu.Lock(); panics++; mu.Unlock() }}
	addr := startServer(t, s)

	good := dialClient(t, addr)
	good.publish("live", "good")
	gw := rh.next(t)
	must(t, good.send(rtmp.MsgVideo, 1, 0, cp.avcSeq))
	must(t, good.send(rtmp.MsgVideo, 1, 0, cp.avcKey))
	waitFor(t, "the good stream's first frame", func() bool { n, _ := gw.count(remux.TrackVideo); return n == 1 })

	bad := dialClient(t, addr)
	bad.publish("live", "boom")
	must(t, bad.send(rtmp.MsgVideo, 1, 0, cp.avcSeq))
	must(t, bad.send(rtmp.MsgVideo, 1, 0, cp.avcKey))
	bad.expectClosed(5 * time.Second)
	waitFor(t, "the panic counted", func() bool { return s.Stats().Panics == 1 })

	for i := 1; i <= 10; i++ {
		must(t, good.send(rtmp.MsgVideo, 1, uint32(i*33), cp.avcKey))
	}
	waitFor(t, "the good stream's frames after the panic", func() bool { n, _ := gw.count(remux.TrackVideo); return n == 11 })
	if st := s.Stats(); st.Publishing != 1 || st.ConnsActive != 1 {
		t.Fatalf("after the panic: %+v", st)
	}
	mu.Lock()
	if panics != 1 {
		t.Fatalf("OnPanic called %d times", panics)
	}
	mu.Unlock()
	if n := logs.count("panic recovered"); n != 1 {
		t.Fatalf("%d panic log lines, want 1:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "WriteFrame exploded") || !strings.Contains(logs.String(), "panicWriter") {
		t.Fatalf("panic log lacks the value or the stack:\n%s", logs)
	}
}

// TestRefusalLogBounded: one line per IP per interval, and a flood from many
// addresses neither grows the map past its bound nor blocks logging for good.
func TestRefusalLogBounded(t *testing.T) {
	s := &Server{}
	now := time.Unix(1_800_000_000, 0)
	if !s.refusalLogDue("10.0.0.1", now) || s.refusalLogDue("10.0.0.1", now.Add(59*time.Second)) {
		t.Fatal("want one log per IP per minute")
	}
	if !s.refusalLogDue("10.0.0.1", now.Add(refusalLogInterval)) {
		t.Fatal("no log a minute later")
	}
	for i := 0; i < 10000; i++ {
		s.refusalLogDue(net.IPv4(10, 1, byte(i>>8), byte(i)).String(), now.Add(refusalLogInterval))
	}
	if n := len(s.refusalLog); n > 4096 {
		t.Fatalf("%d entries after a flood from 10000 addresses", n)
	}
	if !s.refusalLogDue("10.9.9.9", now.Add(3*refusalLogInterval)) {
		t.Fatal("stale entries were not pruned: a new address cannot be logged")
	}
	if n := len(s.refusalLog); n > 4096 {
		t.Fatalf("%d entries after pruning", n)
	}
}
