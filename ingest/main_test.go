package ingest

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"go.uber.org/goleak"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// recFrame is what a recWriter keeps of a Frame (Data is only valid during the call).
type recFrame struct {
	Track int
	DTS   int64
	CTS   int32
	Key   bool
	Size  int
	At    time.Time // when the Writer got it
}

// recWriter records everything a session hands it.
type recWriter struct {
	mu       sync.Mutex
	req      PublishRequest
	tracks   []*remux.Track
	frames   []recFrame
	metadata []remux.Metadata
	closes   int
	cause    error
	closed   chan struct{}
}

func (w *recWriter) WriteMetadata(m *remux.Metadata) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.metadata = append(w.metadata, *m)
	return nil
}

func (w *recWriter) WriteTrack(t *remux.Track) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tracks = append(w.tracks, t)
	return nil
}

func (w *recWriter) WriteFrame(f *remux.Frame) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frames = append(w.frames, recFrame{Track: f.Track.ID, DTS: f.DTS, CTS: f.CTS, Key: f.Key, Size: len(f.Data), At: time.Now()})
	return nil
}

func (w *recWriter) Close(cause error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closes++
	w.cause = cause
	if w.closes == 1 {
		close(w.closed)
	}
	return nil
}

// waitFrames waits up to 5 s for n frames to have been written.
func (w *recWriter) waitFrames(n int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		w.mu.Lock()
		got := len(w.frames)
		w.mu.Unlock()
		if got >= n || time.Now().After(deadline) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *recWriter) wait(t *testing.T) {
	t.Helper()
	select {
	case <-w.closed:
	case <-time.After(10 * time.Second):
		t.Fatal("writer not closed within 10 s")
	}
}

func (w *recWriter) count(trackID int) (frames, keys int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, f := range w.frames {
		if f.Track == trackID {
			frames++
			if f.Key {
				keys++
			}
		}
	}
	return
}

// recHandler hands out recWriters, refusing names listed in refuse.
type recHandler struct {
	mu      sync.Mutex
	refuse  map[string]error
	writers []*recWriter
	got     chan *recWriter
}

func newRecHandler() *recHandler {
	return &recHandler{refuse: map[string]error{}, got: make(chan *recWriter, 16)}
}

func (h *recHandler) OnPublish(ctx context.Context, req PublishRequest) (remux.Writer, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if err := h.refuse[req.Name]; err != nil {
		return nil, err
	}
	w := &recWriter{req: req, closed: make(chan struct{})}
	h.writers = append(h.writers, w)
	select {
	case h.got <- w:
	default:
	}
	return w, nil
}

func (h *recHandler) next(t *testing.T) *recWriter {
	t.Helper()
	select {
	case w := <-h.got:
		return w
	case <-time.After(10 * time.Second):
		t.Fatal("no publish within 10 s")
		return nil
	}
}

// startServer serves on 127.0.0.1:0 and shuts down with the test.
func startServer(t *testing.T, s *Server) string {
	t.Helper()
	if s.ReadInterval == 0 {
		s.ReadInterval = pacedReadsForTests(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ln.Addr().String()
}

// pacedReadsForTests is the ReadInterval given to servers whose test does not
// choose one: RTMPGATE_INGEST_READ_INTERVAL (make test runs the package once
// without it, reads as bytes arrive, and once with it, reads through the
// read pacer), else 0.
func pacedReadsForTests(t *testing.T) time.Duration {
	v := os.Getenv("RTMPGATE_INGEST_READ_INTERVAL")
	if v == "" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("RTMPGATE_INGEST_READ_INTERVAL: %v", err)
	}
	return d
}

// testClient is a raw RTMP publisher built on the rtmp codec (the interop tests
// with ffmpeg and GStreamer are what check the server against other clients).
type testClient struct {
	t  *testing.T
	nc net.Conn
	w  rtmp.ChunkWriter
	r  *rtmp.Reader
}

func dialClient(t *testing.T, addr string) *testClient {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	c := &testClient{t: t, nc: nc, w: rtmp.ChunkWriter{ChunkSize: 128}, r: rtmp.NewReader(nc, rtmp.NewChunkReader(1<<24, 1<<24, 64))}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(rtmp.ClientHello()); err != nil {
		t.Fatal(err)
	}
	s := make([]byte, 1+2*rtmp.HandshakeSize)
	if _, err := io.ReadFull(nc, s); err != nil {
		t.Fatalf("read S0S1S2: %v", err)
	}
	c2, err := rtmp.ClientAck(s)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(c2); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *testClient) send(typ uint8, streamID, ts uint32, payload []byte) error {
	c.w.Buf = c.w.Buf[:0]
	csid := uint32(3)
	switch typ {
	case rtmp.MsgVideo:
		csid = 6
	case rtmp.MsgAudio:
		csid = 4
	}
	c.w.AppendMessage(csid, typ, streamID, ts, payload)
	_, err := c.nc.Write(c.w.Buf)
	return err
}

func (c *testClient) command(streamID uint32, values ...any) error {
	var body []byte
	for _, v := range values {
		body = rtmp.AppendAMF0(body, v)
	}
	return c.send(rtmp.MsgCommandAMF0, streamID, 0, body)
}

// expectCommand reads until a command named name arrives and returns its values.
func (c *testClient) expectCommand(name string) []any {
	c.t.Helper()
	for {
		msg, err := c.r.Next()
		if err != nil {
			c.t.Fatalf("waiting for %q: %v", name, err)
		}
		if msg.Type != rtmp.MsgCommandAMF0 {
			continue
		}
		vals, err := rtmp.DecodeAMF0(msg.Payload)
		if err != nil {
			c.t.Fatalf("decode reply: %v", err)
		}
		if len(vals) > 0 && vals[0] == name {
			return vals
		}
	}
}

// expectClosed reads until the server closes the connection, within limit.
func (c *testClient) expectClosed(limit time.Duration) {
	c.t.Helper()
	c.nc.SetDeadline(time.Now().Add(limit))
	for {
		if _, err := c.r.Next(); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				c.t.Fatalf("connection still open after %v", limit)
			}
			return
		}
	}
}

// publish runs connect, createStream and publish, and checks the replies.
func (c *testClient) publish(app, name string) {
	c.t.Helper()
	must(c.t, c.command(0, "connect", 1, rtmp.Object{
		{Key: "app", Value: app},
		{Key: "tcUrl", Value: "rtmp://127.0.0.1/" + app},
		{Key: "fourCcList", Value: []any{"avc1", "hvc1"}},
	}))
	res := c.expectCommand("_result")
	if info, _ := res[3].(rtmp.Object); info == nil {
		c.t.Fatalf("connect _result without info object: %v", res)
	} else if code, _ := info.GetString("code"); code != "NetConnection.Connect.Success" {
		c.t.Fatalf("connect: code %q", code)
	}
	must(c.t, c.command(0, "createStream", 2, nil))
	res = c.expectCommand("_result")
	if len(res) < 4 || res[3] != float64(1) {
		c.t.Fatalf("createStream _result: %v", res)
	}
	must(c.t, c.command(1, "publish", 3, nil, name, "live"))
	st := c.expectCommand("onStatus")
	if code := rtmp.StatusCode(st); code != "NetStream.Publish.Start" {
		c.t.Fatalf("publish: onStatus %q", code)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// testLogger sends the server's log lines to t.Log, so a failing test shows them.
func testLogger(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.ConsoleWriter{Out: testWriter{t}, NoColor: true}).With().Timestamp().Logger()
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
