package ingest

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
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
	connect = rtmp.AppendAMF0(connect, "connect")
	connect = rtmp.AppendAMF0(connect, 1.0)
	connect = rtmp.AppendAMF0(connect, rtmp.Object{{Key: "app", Value: "live"}})
	trickle := func(c *testClient) time.Duration {
		c.w.Buf = c.w.Buf[:0]
		c.w.AppendMessage(3, rtmp.MsgCommandAMF0, 0, 0, append(connect, make([]byte, 200)...))
		start := time.Now()
		for i := 0; i < 60 && i < len(c.w.Buf); i++ {
			if _, err := c.nc.Write(c.w.Buf[i : i+1]); err != nil {
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

// With ReadInterval, frames an encoder writes one at a time reach the Writer in
// groups, one per interval, none held much past it; without it, one by one.
func TestReadInterval(t *testing.T) {
	cp := loadCapture(t)
	for _, tc := range []struct {
		interval     time.Duration
		minGr, maxGr int
		maxHeld      time.Duration
	}{
		{0, 15, 40, 100 * time.Millisecond},
		{100 * time.Millisecond, 3, 6, 250 * time.Millisecond},
	} {
		t.Run(tc.interval.String(), func(t *testing.T) {
			h := newRecHandler()
			addr := startServer(t, &Server{Handler: h, ReadInterval: tc.interval, Logger: testLogger(t)})
			c := dialClient(t, addr)
			c.publish("live", "paced")
			w := h.next(t)
			must(t, c.send(rtmp.MsgAudio, 1, 0, cp.aacSeq))
			// 40 frames, one write each, 10 ms apart: 400 ms.
			sent := make([]time.Time, 40)
			for i := range sent {
				sent[i] = time.Now()
				must(t, c.send(rtmp.MsgAudio, 1, uint32(i*10), cp.aacFrame))
				time.Sleep(10 * time.Millisecond)
			}
			waitFor(t, "40 frames", func() bool { n, _ := w.count(remux.TrackAudio); return n == 40 })
			w.mu.Lock()
			frames := append([]recFrame(nil), w.frames...)
			w.mu.Unlock()
			groups := 0
			var last time.Time
			for i, f := range frames {
				if held := f.At.Sub(sent[i]); held > tc.maxHeld {
					t.Errorf("frame %d reached the Writer %v after it was sent", i, held)
				}
				if f.At.Sub(last) > 3*time.Millisecond {
					groups++
				}
				last = f.At
			}
			if groups < tc.minGr || groups > tc.maxGr {
				t.Errorf("40 frames 10 ms apart reached the Writer in %d groups, want %d to %d", groups, tc.minGr, tc.maxGr)
			}
			t.Logf("interval %v: %d groups", tc.interval, groups)
		})
	}
}
