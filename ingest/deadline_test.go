package ingest

import (
	"errors"
	"os"
	"testing"
	"time"
)

// TestSlowloris trickles bytes that never make a message, before and after a
// publish: neither keeps a connection open past its deadline, and both are
// counted as timeouts.
func TestSlowloris(t *testing.T) {
	h := newRecHandler()
	s := &Server{Handler: h, HandshakeTimeout: 600 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, Logger: testLogger(t)}
	addr := startServer(t, s)
	// One byte of a connect command every 50 ms, for at most 3 s.
	var connect []byte
	connect = appendAMF0(connect, "connect")
	connect = appendAMF0(connect, 1.0)
	connect = appendAMF0(connect, amfObject{{Key: "app", Value: "live"}})
	trickle := func(c *testClient) time.Duration {
		c.w.buf = c.w.buf[:0]
		c.w.appendMessage(3, msgCommandAMF0, 0, 0, append(connect, make([]byte, 200)...))
		start := time.Now()
		for i := 0; i < 60 && i < len(c.w.buf); i++ {
			if _, err := c.nc.Write(c.w.buf[i : i+1]); err != nil {
				return time.Since(start)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Fatal("connection still open after 3 s of trickling")
		return 0
	}
	t.Run("before publish", func(t *testing.T) {
		before := s.Stats().ProtocolErrors[KindTimeout]
		c := dialClient(t, addr)
		if d := trickle(c); d > 600*time.Millisecond+time.Second {
			t.Fatalf("closed after %v, setup deadline is 600 ms", d)
		}
		waitFor(t, "timeout counted", func() bool { return s.Stats().ProtocolErrors[KindTimeout] == before+1 })
	})
	t.Run("after publish", func(t *testing.T) {
		before := s.Stats().ProtocolErrors[KindTimeout]
		c := dialClient(t, addr)
		c.publish("live", "trickled")
		w := h.next(t)
		// The setup deadline is gone once published: this runs past 600 ms of
		// accept and is closed by the read timeout instead.
		time.Sleep(300 * time.Millisecond)
		if d := trickle(c); d > 400*time.Millisecond+time.Second {
			t.Fatalf("closed after %v, read timeout is 400 ms", d)
		}
		w.wait(t)
		var pe *ProtocolError
		if !errors.As(w.cause, &pe) || pe.Kind != KindTimeout || !errors.Is(w.cause, os.ErrDeadlineExceeded) {
			t.Fatalf("writer closed with %v, want a timeout", w.cause)
		}
		waitFor(t, "timeout counted", func() bool { return s.Stats().ProtocolErrors[KindTimeout] == before+1 })
	})
}
