package ingest

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux"
)

// movingPublisher publishes a fixture's tags and, when the server asks it to
// reconnect, does what E-RTMP v2 asks of a client: it goes on to the next
// video key frame, unpublishes, connects to the URL the request named and
// publishes again from that key frame, metadata and sequence starts first.
type movingPublisher struct {
	t     *testing.T
	ctx   context.Context
	tags  []fixture.Tag
	pub   *rtmpclient.Publisher
	moves int
}

func (m *movingPublisher) dial(url string) {
	m.t.Helper()
	p, err := rtmpclient.Dial(m.ctx, url, rtmpclient.Options{Reconnect: true})
	if err != nil {
		m.t.Fatal(err)
	}
	m.pub = p
	for _, tag := range m.tags { // metadata and sequence starts, as an encoder resends them
		if tag.Type == rtmpclient.TagScript {
			must(m.t, p.WriteMetadata(tag.Body))
		} else if isConfig(tag) {
			m.write(tag)
		}
	}
}

func (m *movingPublisher) write(tag fixture.Tag) {
	m.t.Helper()
	var err error
	if tag.Type == rtmpclient.TagVideo {
		err = m.pub.WriteVideo(tag.TS, tag.Body)
	} else {
		err = m.pub.WriteAudio(tag.TS, tag.Body)
	}
	must(m.t, err)
}

// isConfig tells the sequence starts (and metadata bodies) of the fixtures:
// Enhanced RTMP video packet types 0 and 4, audio 0 and 4, legacy AAC 0.
func isConfig(tag fixture.Tag) bool {
	b := tag.Body
	switch {
	case tag.Type == rtmpclient.TagVideo && b[0]&0x80 != 0:
		return b[0]&0x0f == 0 || b[0]&0x0f == 4
	case tag.Type == rtmpclient.TagAudio && b[0]>>4 == 9:
		return b[0]&0x0f == 0 || b[0]&0x0f == 4
	case tag.Type == rtmpclient.TagAudio:
		return len(b) > 1 && b[1] == 0
	}
	return false
}

// run publishes every coded frame; onFrame(i) runs before frame i is sent.
func (m *movingPublisher) run(url string, onFrame func(i int)) {
	m.t.Helper()
	m.dial(url)
	i := 0
	for _, tag := range m.tags {
		if tag.Type == rtmpclient.TagScript || isConfig(tag) {
			continue
		}
		onFrame(i)
		i++
		key := tag.Type == rtmpclient.TagVideo && tag.Body[0]>>4&7 == 1
		select {
		case <-m.pub.ReconnectRequested():
			if key {
				to, err := m.pub.ReconnectURL()
				must(m.t, err)
				must(m.t, m.pub.Close())
				m.moves++
				m.dial(to)
			}
		default:
		}
		m.write(tag)
	}
	must(m.t, m.pub.Close())
}

// TestReconnectRequest asks a publisher to reconnect through
// Server.RequestReconnect: it gets the onStatus, moves at its next key frame,
// and the two sessions together carry every frame once, the second starting
// with a key frame one frame after the first ended.
func TestReconnectRequest(t *testing.T) {
	h := newRecHandler()
	s := &Server{Handler: h, Logger: testLogger(t)}
	addr := startServer(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if err := s.RequestReconnect("live", "move", ""); !errors.Is(err, ErrNotPublishing) {
		t.Fatalf("no publisher: %v", err)
	}
	m := &movingPublisher{t: t, ctx: ctx, tags: fixture.Tags(t, "hevc-aac.flv")}
	m.run("rtmp://"+addr+"/live/move", func(i int) {
		switch {
		case i == 60: // within the first GOP
			if err := s.RequestReconnect("live", "move", ""); err != nil {
				t.Fatal(err)
			}
		case i > 60 && m.moves == 0:
			// Paced from here, as an encoder is, so that the request (sent
			// with the server's next read) arrives before the clip ends.
			time.Sleep(3 * time.Millisecond)
		}
	})
	if m.moves != 1 {
		t.Fatalf("%d moves", m.moves)
	}
	w1, w2 := h.next(t), h.next(t)
	w1.wait(t)
	w2.wait(t)
	if w1.cause != nil || w2.cause != nil {
		t.Fatalf("Close causes %v, %v", w1.cause, w2.cause)
	}
	n1, k1 := w1.count(remux.TrackVideo)
	n2, k2 := w2.count(remux.TrackVideo)
	if n1+n2 != 150 || k1+k2 != 3 || n1 == 0 || n2 == 0 {
		t.Fatalf("video frames %d+%d, keys %d+%d", n1, n2, k1, k2)
	}
	var last1 int64
	for _, f := range w1.frames {
		if f.Track == remux.TrackVideo {
			last1 = f.DTS
		}
	}
	for _, f := range w2.frames {
		if f.Track == remux.TrackVideo {
			if !f.Key || f.DTS != last1+40 {
				t.Fatalf("second session starts with key=%v at %d ms, first ended at %d ms", f.Key, f.DTS, last1)
			}
			break
		}
	}

	t.Run("publisher without the capability", func(t *testing.T) {
		p, err := rtmpclient.Dial(ctx, "rtmp://"+addr+"/live/plain", rtmpclient.Options{})
		must(t, err)
		defer p.Close()
		h.next(t)
		if err := s.RequestReconnect("live", "plain", ""); !errors.Is(err, ErrNoReconnect) {
			t.Fatalf("got %v, want ErrNoReconnect", err)
		}
	})
}

// TestShutdownReconnect shuts the server down with two publishers: the one
// that announced Reconnect is asked to reconnect and goes on publishing until
// it leaves; the other is ended at once. A publisher that ignores the request
// is ended when ReconnectGrace passes.
func TestShutdownReconnect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cp := loadCapture(t)
	for _, obey := range []bool{true, false} {
		h := newRecHandler()
		s := &Server{Handler: h, Logger: testLogger(t), ReconnectGrace: 10 * time.Second}
		if !obey {
			s.ReconnectGrace = 300 * time.Millisecond
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		must(t, err)
		served := make(chan error, 1)
		go func() { served <- s.Serve(ln) }()
		url := "rtmp://" + ln.Addr().String() + "/live/"

		mover, err := rtmpclient.Dial(ctx, url+"mover", rtmpclient.Options{Reconnect: true})
		must(t, err)
		wm := h.next(t)
		plain, err := rtmpclient.Dial(ctx, url+"plain", rtmpclient.Options{})
		must(t, err)
		wp := h.next(t)
		must(t, mover.WriteVideo(0, cp.avcSeq))

		shut := make(chan error, 1)
		start := time.Now()
		go func() { shut <- s.Shutdown(ctx) }()
		wp.wait(t)
		if !errors.Is(wp.cause, ErrServerClosed) {
			t.Fatalf("plain publisher closed with %v", wp.cause)
		}
		// The mover keeps publishing until the request arrives (it goes out
		// with the mover's next bytes), then leaves.
		sent := 0
		for asked := false; !asked; {
			select {
			case <-mover.ReconnectRequested():
				asked = true
			case <-time.After(20 * time.Millisecond):
				must(t, mover.WriteVideo(uint32(40*(sent+1)), cp.avcKey))
				sent++
			}
		}
		if obey {
			must(t, mover.Close())
		}
		if err := <-shut; err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		elapsed := time.Since(start)
		wm.wait(t)
		if n, _ := wm.count(remux.TrackVideo); n != sent {
			t.Fatalf("mover: %d frames written, %d sent", n, sent)
		}
		if obey && (wm.cause != nil || elapsed > 5*time.Second) {
			t.Fatalf("mover closed with %v after %v", wm.cause, elapsed)
		}
		if !obey && (!errors.Is(wm.cause, ErrServerClosed) || elapsed < s.ReconnectGrace) {
			t.Fatalf("mover ignoring the request closed with %v after %v", wm.cause, elapsed)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve: %v", err)
		}
		if !obey {
			mover.Close()
		}
		plain.Close()
	}
}
