package ingest

import (
	"context"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
)

// replayConn is a net.Conn that plays back what a client sent: prefix once, then
// body loops times, then EOF. Writes are discarded. onBody runs once, when the
// first body byte is read, so a benchmark can start measuring there.
type replayConn struct {
	prefix, body []byte
	loops        int
	pos          int
	inBody       bool
	onBody       func()
	onLoop       func(left int) // called as each loop after the first starts
	closed       atomic.Bool
}

func (c *replayConn) Read(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	if !c.inBody {
		if c.pos < len(c.prefix) {
			n := copy(p, c.prefix[c.pos:])
			c.pos += n
			return n, nil
		}
		c.inBody, c.pos = true, 0
		if c.onBody != nil {
			c.onBody()
		}
	}
	for c.loops > 0 {
		if c.pos < len(c.body) {
			n := copy(p, c.body[c.pos:])
			c.pos += n
			return n, nil
		}
		c.loops--
		c.pos = 0
		if c.onLoop != nil && c.loops > 0 {
			c.onLoop(c.loops)
		}
	}
	return 0, io.EOF
}

func (c *replayConn) Write(p []byte) (int, error) {
	if c.closed.Load() {
		return 0, net.ErrClosed
	}
	return len(p), nil
}

func (c *replayConn) Close() error { c.closed.Store(true); return nil }
func (c *replayConn) LocalAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1935}
}
func (c *replayConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *replayConn) SetDeadline(time.Time) error      { return nil }
func (c *replayConn) SetReadDeadline(time.Time) error  { return nil }
func (c *replayConn) SetWriteDeadline(time.Time) error { return nil }

// countingWriter counts what it gets and keeps nothing.
type countingWriter struct {
	tracks, frames, metadata, closes int
}

func (w *countingWriter) WriteMetadata(*remux.Metadata) error { w.metadata++; return nil }
func (w *countingWriter) WriteTrack(*remux.Track) error       { w.tracks++; return nil }
func (w *countingWriter) WriteFrame(*remux.Frame) error       { w.frames++; return nil }
func (w *countingWriter) Close(error) error                   { w.closes++; return nil }

type oneWriter struct{ w remux.Writer }

func (h oneWriter) OnPublish(context.Context, PublishRequest) (remux.Writer, error) { return h.w, nil }

// mallocs reads the process's allocation count.
func mallocs() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.Mallocs
}

// newWriters hands out a new countingWriter per publish. It is used from one
// connection goroutine and read after that goroutine ended.
// With renditions set, its writers serve a multitrack publish's other video
// and audio tracks (remux.TrackOpener, remux.AudioTrackOpener) with
// countingWriters listed alike.
type newWriters struct {
	writers    []*countingWriter
	renditions bool
}

func (h *newWriters) OnPublish(context.Context, PublishRequest) (remux.Writer, error) {
	w := &countingWriter{}
	h.writers = append(h.writers, w)
	if h.renditions {
		return openingWriter{w, h}, nil
	}
	return w, nil
}

type openingWriter struct {
	*countingWriter
	h *newWriters
}

func (w openingWriter) OpenTrack(uint8) (remux.Writer, error) {
	r := &countingWriter{}
	w.h.writers = append(w.h.writers, r)
	return r, nil
}

func (w openingWriter) OpenAudioTrack(id uint8) (remux.Writer, error) { return w.OpenTrack(id) }
