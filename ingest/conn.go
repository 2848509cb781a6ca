package ingest

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/ingest/internal/readpacer"
	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

// readBufferSize is each connection's read buffer; it only has to hold one chunk
// header plus whatever one read brings, since payload bytes are copied out as
// they arrive.
const readBufferSize = 64 << 10

// maxReadSlack bounds how late past ReadTimeout a silent publisher is closed:
// the read deadline is moved at most once per slack, not on every read.
const maxReadSlack = time.Second

// conn is one client connection, served by one goroutine (serve). Only stop and
// kick are called from other goroutines.
type conn struct {
	srv    *Server
	nc     net.Conn // replaced (under mu) by the read pacer's connection once publishing
	log    zerolog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	stopped error      // why another goroutine ended the connection (Kick, Shutdown)
	stream  liveStream // the publish session as other goroutines see it

	// reconnectDue is set by RequestReconnect or Shutdown, read after each
	// read batch: a ReconnectRequest is to be sent (reconnect.go).
	reconnectDue atomic.Bool

	readTimeout, writeTimeout time.Duration
	handshakeTimeout          time.Duration
	accepted                  time.Time // the setup deadline (handshake, then up to publish) counts from here
	published                 bool      // a publish succeeded once: the setup deadline no longer applies
	paced                     bool      // usePacer ran
	window                    uint32    // our Window Acknowledgement Size, sent on connect
	chunkSize                 int       // our outgoing chunk size, sent on connect

	rbuf       []byte
	rpos, rend int
	r          *rtmp.ChunkReader
	w          rtmp.ChunkWriter
	inBytes    uint64
	ackedAt    uint64
	peerWindow uint32 // the window the peer announced; 0 until it does
	digest     bool   // the client used the digest handshake

	connected  bool
	caps       clientCaps // what connect said the client supports (Enhanced RTMP)
	app, tcURL string
	tcQuery    string
	kick       func() // PublishRequest.Kick, built once

	// framesUncounted are frames handed to the Writer since the last add to
	// Server.stats: the shared counter is touched once per read batch, not per frame.
	framesUncounted int64

	// The publish session; writer is nil when none is live.
	pub pubState
}

// pubState is the per-publish part of a connection, reset by each publish.
type pubState struct {
	writer        remux.Writer
	name          string
	unpublishing  bool         // FCUnpublish seen: an EOF after it is a normal end
	kinds         [2]kindState // video, audio
	unsupported   [2]int       // messages dropped for an unsupported codec: video, audio
	early         int          // frames dropped for arriving before their sequence header
	keyMismatch   int          // frames whose FLV frame type disagreed with the bitstream (the bitstream won)
	reconnectSent bool         // the ReconnectRequest went out
	frames        int
	bytes         int64
	started       time.Time
	tl            timeline
	frame         remux.Frame // reused for every WriteFrame call
	pkts          [flv.MaxTracks]flv.TrackPacket
	md            remux.Metadata    // the last onMetaData, for renditions opened later
	renditions    []*renditionTrack // the other video and audio tracks served (multitrack), at most MaxTracks-1 of each
}

func newConn(s *Server, nc net.Conn) *conn {
	c := &conn{
		srv:              s,
		nc:               nc,
		readTimeout:      orDefault(s.ReadTimeout, DefaultReadTimeout),
		writeTimeout:     orDefault(s.WriteTimeout, DefaultWriteTimeout),
		handshakeTimeout: orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout),
		accepted:         time.Now(),
		window:           s.WindowAckSize,
		chunkSize:        s.ChunkSize,
		rbuf:             make([]byte, readBufferSize),
		r: rtmp.NewChunkReader(
			uint32(orDefault(s.MaxMessageSize, DefaultMaxMessageSize)),
			uint32(orDefault(s.MaxChunkSize, DefaultMaxChunkSize)),
			orDefault(s.MaxChunkStreams, DefaultMaxChunkStreams)),
		w: rtmp.ChunkWriter{ChunkSize: rtmp.DefaultChunkSize},
	}
	if c.window == 0 {
		c.window = DefaultWindowAckSize
	}
	if c.chunkSize <= 0 || c.chunkSize > 0x7fffffff {
		c.chunkSize = DefaultChunkSize
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.log = s.Logger.With().Str("remote", nc.RemoteAddr().String()).Logger()
	c.kick = func() { c.stop(ErrKicked) }
	return c
}

func orDefault[T int | time.Duration](v, def T) T {
	if v <= 0 {
		return def
	}
	return v
}

// stop ends the connection from any goroutine: the socket is closed, which
// unblocks the serving goroutine's read or write, and the context a Handler got
// is cancelled, which unblocks a slow OnPublish. The first cause wins.
func (c *conn) stop(cause error) {
	c.mu.Lock()
	if c.stopped == nil {
		c.stopped = cause
	}
	nc := c.nc
	c.mu.Unlock()
	c.cancel()
	nc.Close()
}

// usePacer moves a publishing connection to the server's read pacer, once, with
// its read deadline; with none (ReadInterval 0, or not Linux) it stays on its
// net.Conn.
func (c *conn) usePacer(readBy time.Time) error {
	c.paced = true
	p := c.srv.readPacer()
	if p == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped != nil {
		return nil // the socket is closed: the next read says so
	}
	nc, ok, err := p.Adopt(c.nc)
	if ok {
		c.nc = nc
	}
	if errors.Is(err, readpacer.ErrClosed) {
		return ErrServerClosed
	}
	if err != nil {
		return err
	}
	return c.nc.SetReadDeadline(readBy)
}

func (c *conn) stopCause() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopped
}

// serve runs the connection to its end and releases everything it holds.
func (c *conn) serve() {
	err := c.safely(c.run)
	c.nc.Close()
	cause := c.endCause(err)
	c.endPublish(cause)
	c.cancel()
	c.countFrames()

	var pe *ProtocolError
	switch {
	case errors.As(err, &pe):
		c.srv.stats.protocolError(pe.Kind)
		c.log.Warn().Str("kind", pe.Kind).Err(err).Msg("protocol error")
	case cause != nil:
		c.log.Info().Err(cause).Msg("disconnect")
	default:
		c.log.Info().Msg("disconnect")
	}
}

// safely runs f, turning a panic into an error: the last line of defence that
// keeps one bad connection from taking the process down.
func (c *conn) safely(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("ingest: panic: %v", p)
			c.srv.stats.panics.Add(1)
			c.log.Error().Str("stack", string(debug.Stack())).Err(err).Msg("panic recovered")
			if c.srv.OnPanic != nil {
				c.srv.OnPanic()
			}
		}
	}()
	return f()
}

// endCause decides what the Writer's Close is told: a stop from outside wins over
// the read error it provoked, and an EOF after FCUnpublish is a normal end.
func (c *conn) endCause(err error) error {
	if cause := c.stopCause(); cause != nil {
		return cause
	}
	if errors.Is(err, io.EOF) {
		if c.pub.unpublishing {
			return nil
		}
		return fmt.Errorf("ingest: publisher disconnected without unpublish: %w", err)
	}
	return err
}

// countFrames adds the frames written since the last call to the server's counter.
func (c *conn) countFrames() {
	if c.framesUncounted != 0 {
		c.srv.stats.frames.Add(c.framesUncounted)
		c.framesUncounted = 0
	}
}

// endPublish closes the live publish session's Writer, if any, exactly once.
func (c *conn) endPublish(cause error) {
	w := c.pub.writer
	if w == nil {
		return
	}
	c.pub.writer = nil
	c.mu.Lock()
	c.stream = liveStream{}
	c.mu.Unlock()
	c.srv.stats.publishing.Add(-1)
	ev := c.log.Info()
	if cause != nil {
		ev = ev.AnErr("reason", cause)
	} else {
		ev = ev.Str("reason", "unpublish")
	}
	ev.Int("frames", c.pub.frames).Int64("bytes", c.pub.bytes).
		Int("early_frames_dropped", c.pub.early).
		Int("unsupported_video", c.pub.unsupported[0]).Int("unsupported_audio", c.pub.unsupported[1]).
		Int("renditions", len(c.pub.renditions)).
		Int("other_tracks_dropped", c.pub.kinds[0].ignored+c.pub.kinds[1].ignored).
		Int("key_flag_mismatches", c.pub.keyMismatch).
		Int("ts_clamped", c.pub.tl.Clamped).Int("ts_jumps", c.pub.tl.Jumps).
		Dur("duration", time.Since(c.pub.started)).Msg("unpublish")
	// The renditions end first: they belong to this publish, whose Writer
	// may not outlive them.
	for _, r := range c.pub.renditions {
		if err := c.safely(func() error { return r.w.Close(cause) }); err != nil {
			c.log.Warn().Err(err).Uint8("track_id", r.id).Msg("rendition writer close")
		}
	}
	c.pub.renditions = nil
	if err := c.safely(func() error { return w.Close(cause) }); err != nil {
		c.log.Warn().Err(err).Msg("writer close")
	}
}

// run does the handshake, then reads and handles messages until an error.
//
// Two deadlines bound a peer that trickles bytes (slowloris): until its first
// publish succeeds, the whole setup (handshake, connect, createStream, publish)
// must finish within HandshakeTimeout of accept; and at any time a connection
// must complete a message within ReadTimeout of the last one, so single bytes
// that never add up to a message do not keep it open.
//
// Once publishing, a connection reads dozens of times a second: the read
// deadline is then moved only when it falls due within ReadTimeout (to
// ReadTimeout plus readSlack), not on every read, since each move is a runtime
// timer update. And with ReadInterval set, the connection moves to the server's
// read pacer (internal/readpacer), which paces its reads.
func (c *conn) run() error {
	if err := c.handshake(); err != nil {
		return err
	}
	setupBy := c.accepted.Add(c.handshakeTimeout)
	progress := time.Now()
	slack := min(c.readTimeout/8, maxReadSlack)
	var readBy time.Time // the read deadline set
	for {
		completed := false
		for c.rpos < c.rend {
			n, msg, err := c.r.Parse(c.rbuf[c.rpos:c.rend])
			if err != nil {
				return &ProtocolError{Kind: KindChunk, Err: err}
			}
			c.rpos += n
			if msg != nil {
				completed = true
				if err := c.handle(msg); err != nil {
					// Replies that explain the end (BadName, Play.Failed) go out first;
					// a failure to send them changes nothing.
					_ = c.flush()
					return err
				}
			} else if n == 0 {
				break
			}
		}
		c.countFrames()
		if c.reconnectDue.Load() {
			c.sendReconnect()
		}
		if err := c.flush(); err != nil {
			return err
		}
		if c.rpos == c.rend {
			c.rpos, c.rend = 0, 0
		} else if len(c.rbuf)-c.rend < rtmp.MaxChunkHeader {
			c.rend = copy(c.rbuf, c.rbuf[c.rpos:c.rend])
			c.rpos = 0
		}
		var now time.Time
		if completed || c.published {
			now = time.Now()
		}
		if completed {
			progress = now
		}
		setup := !c.published
		if setup {
			deadline := progress.Add(c.readTimeout)
			if setupBy.Before(deadline) {
				deadline = setupBy
			} else {
				setup = false
			}
			readBy = deadline
			if err := c.nc.SetReadDeadline(deadline); err != nil {
				return err
			}
		} else if due := progress.Add(c.readTimeout); readBy.Before(due) {
			readBy = due.Add(slack)
			if err := c.nc.SetReadDeadline(readBy); err != nil {
				return err
			}
		}
		if c.published && !c.paced {
			if err := c.usePacer(readBy); err != nil {
				return err
			}
		}
		n, err := c.nc.Read(c.rbuf[c.rend:])
		c.rend += n
		c.received(n)
		if err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				if setup {
					return &ProtocolError{Kind: KindTimeout, Err: fmt.Errorf("no publish within %v of accept: %w", c.handshakeTimeout, err)}
				}
				return &ProtocolError{Kind: KindTimeout, Err: fmt.Errorf("no complete message for %v: %w", c.readTimeout, err)}
			}
			return fmt.Errorf("ingest: read: %w", err)
		}
	}
}

// received counts bytes and queues an Acknowledgement each time a window is
// crossed (spec 5.4.3), using the window the peer announced or else ours.
func (c *conn) received(n int) {
	if n <= 0 {
		return
	}
	c.srv.stats.bytesIn.Add(int64(n))
	c.inBytes += uint64(n)
	window := c.peerWindow
	if window == 0 {
		window = c.window
	}
	if c.inBytes-c.ackedAt >= uint64(window) {
		c.ackedAt = c.inBytes
		c.w.AppendControl(rtmp.MsgAck, uint32(c.inBytes))
	}
}

// flush writes queued replies.
func (c *conn) flush() error {
	if len(c.w.Buf) == 0 {
		return nil
	}
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(c.w.Buf)
	c.w.Buf = c.w.Buf[:0]
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return &ProtocolError{Kind: KindTimeout, Err: fmt.Errorf("write stalled for %v: %w", c.writeTimeout, err)}
		}
		return fmt.Errorf("ingest: write: %w", err)
	}
	return nil
}

// handshake runs C0/C1/C2 against S0/S1/S2 under one deadline for the whole
// exchange.
func (c *conn) handshake() error {
	timeout := c.handshakeTimeout
	if err := c.nc.SetDeadline(c.accepted.Add(timeout)); err != nil {
		return err
	}
	c0c1 := c.rbuf[:1+rtmp.HandshakeSize]
	if err := c.readHandshake("C0", c0c1[:1]); err != nil {
		return err
	}
	if c0c1[0] != rtmp.Version {
		return protoErr(KindHandshake, "version %d, want %d", c0c1[0], rtmp.Version)
	}
	if err := c.readHandshake("C1", c0c1[1:]); err != nil {
		return err
	}
	reply, digest, err := rtmp.HandshakeReply(c0c1, uint32(time.Now().UnixMilli()), rand.Reader)
	if err != nil {
		return err
	}
	c.digest = digest
	if _, err := c.nc.Write(reply); err != nil {
		return handshakeIOErr("write S0+S1+S2", timeout, err)
	}
	if err := c.readHandshake("C2", c.rbuf[:rtmp.HandshakeSize]); err != nil {
		return err
	}
	c.inBytes = 1 + 2*rtmp.HandshakeSize
	return c.nc.SetDeadline(time.Time{})
}

// readHandshake fills p from the connection, counting the bytes as they come.
func (c *conn) readHandshake(part string, p []byte) error {
	n, err := io.ReadFull(c.nc, p)
	if n > 0 {
		c.srv.stats.bytesIn.Add(int64(n))
	}
	if err != nil {
		return handshakeIOErr("read "+part, c.handshakeTimeout, err)
	}
	return nil
}

func handshakeIOErr(part string, timeout time.Duration, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return protoErr(KindTimeout, "handshake not done within %v: %s: %w", timeout, part, err)
	}
	return fmt.Errorf("ingest: handshake: %s: %w", part, err)
}

// handle dispatches one message.
func (c *conn) handle(m *rtmp.Message) error {
	p := m.Payload
	switch m.Type {
	case rtmp.MsgSetChunkSize:
		if len(p) < 4 {
			return protoErr(KindChunk, "set chunk size: %d-byte payload", len(p))
		}
		if err := c.r.SetChunkSize(binary.BigEndian.Uint32(p)); err != nil {
			return &ProtocolError{Kind: KindChunk, Err: err}
		}
	case rtmp.MsgAbort:
		if len(p) < 4 {
			return protoErr(KindChunk, "abort: %d-byte payload", len(p))
		}
		c.r.Abort(binary.BigEndian.Uint32(p))
	case rtmp.MsgWindowAckSize:
		if len(p) < 4 {
			return protoErr(KindChunk, "window acknowledgement size: %d-byte payload", len(p))
		}
		c.peerWindow = binary.BigEndian.Uint32(p)
	case rtmp.MsgUserControl:
		if len(p) >= 6 && binary.BigEndian.Uint16(p) == rtmp.EventPingRequest {
			c.w.AppendUserControl(rtmp.EventPingResponse, binary.BigEndian.Uint32(p[2:]))
		}
	case rtmp.MsgAudio, rtmp.MsgVideo:
		return c.media(m)
	case rtmp.MsgCommandAMF0:
		return c.command(m.StreamID, p)
	case rtmp.MsgCommandAMF3, rtmp.MsgDataAMF3:
		// AMF3 command and data messages start with a 0 byte and then carry AMF0
		// values, as every encoder we know sends them.
		if len(p) == 0 {
			return nil
		}
		if p[0] != 0 {
			return protoErr(KindAMF, "AMF3 message type %d: format byte %d, want 0", m.Type, p[0])
		}
		if m.Type == rtmp.MsgCommandAMF3 {
			return c.command(m.StreamID, p[1:])
		}
		return c.data(p[1:])
	case rtmp.MsgDataAMF0:
		return c.data(p)
	}
	// Acknowledgement, Set Peer Bandwidth, aggregate and unknown types carry
	// nothing a publisher needs from us.
	return nil
}
