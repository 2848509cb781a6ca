// Package ingest is rtmpgate's RTMP edge: it accepts publishers, runs the
// handshake (simple and digest), reassembles the chunk stream within fixed limits,
// answers the AMF0 command exchange, and hands each publish session's tracks and
// frames to a remux.Writer obtained from the Handler.
//
// Every connection is served by one goroutine that reads, parses and calls the
// Writer synchronously: there are no per-frame channels, and message buffers are
// reused so that steady-state media costs no allocation in this package.
package ingest

import (
	"context"
	"errors"
	"net"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/ingest/internal/readpacer"
	"github.com/rtmpgate/rtmpgate/remux"
)

// ErrServerClosed is returned by Serve and ListenAndServe after Shutdown or Close,
// and is the cause a Writer's Close gets when the server ends its session.
var ErrServerClosed = errors.New("ingest: server closed")

// ErrKicked is the cause a Writer's Close gets when PublishRequest.Kick ended it.
var ErrKicked = errors.New("ingest: publisher kicked")

// Handler is asked for a Writer when a client publishes.
type Handler interface {
	// OnPublish returns the Writer for the session, or an error that refuses the
	// publish: the client gets NetStream.Publish.BadName with the error text, or
	// the code of a *PublishError in the error's chain.
	// ctx ends when the connection does.
	OnPublish(ctx context.Context, req PublishRequest) (remux.Writer, error)
}

// Renamed is implemented by a Writer that serves a publish under another name
// than the one the client sent (a secret publish key mapped to its public
// stream): ingest's log lines name the stream, never the key.
type Renamed interface{ PublicName() string }

// PublishRequest describes a publish attempt.
type PublishRequest struct {
	App, Name string // from connect's app (without query) and publish's name (without query)
	Query     string // raw query string from the publish name, else from tcUrl
	Remote    net.Addr
	Kick      func() // ends this publish session from any goroutine: closes the connection; idempotent
}

// Defaults for the Server fields left zero.
const (
	DefaultAddr             = ":1935"
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultReadTimeout      = 30 * time.Second
	DefaultWriteTimeout     = 10 * time.Second
	DefaultMaxMessageSize   = 8 << 20
	DefaultMaxChunkSize     = 1<<24 - 1 // no message is longer (24-bit length), so larger chunks mean nothing
	DefaultMaxChunkStreams  = 64
	DefaultMaxTracks        = 8
	DefaultWindowAckSize    = 2_500_000
	DefaultChunkSize        = 4096
	DefaultMaxConns         = 1024
	DefaultMaxConnsPerIP    = 32
)

// refusalLogInterval bounds the "connection refused" log lines to one per remote
// IP per interval, so a connection flood cannot become a log flood.
const refusalLogInterval = time.Minute

// Server accepts RTMP publishers. Its fields configure it and must not change
// after Serve is called; the zero value of each field selects its default.
type Server struct {
	Addr    string // for ListenAndServe; DefaultAddr (":1935") if empty
	Handler Handler
	// Logger receives one line per lifecycle event (connect, publish, unpublish,
	// protocol error), never one per frame. The zero value discards everything,
	// like zerolog.Nop().
	Logger zerolog.Logger
	// HandshakeTimeout (default 10 s) bounds a connection's setup: the RTMP
	// handshake, and then the command exchange up to a successful publish, must
	// both finish within it of accept. Encoders need milliseconds.
	HandshakeTimeout time.Duration
	// ReadTimeout (default 30 s) closes a connection that completes no message
	// for this long; bytes that never add up to a message do not count.
	ReadTimeout  time.Duration
	WriteTimeout time.Duration // default 10 s: bound on each write of our replies
	// ReadInterval (default 0: off) paces publishing connections' reads (Linux):
	// once per interval one epoll call finds every publisher with bytes waiting,
	// and each of those reads once, taking every frame that arrived meanwhile.
	// Frames then reach the Writer up to this much later; in exchange the whole
	// server costs one wakeup per interval and a read per connection with data,
	// instead of a wakeup and two reads (the second finding nothing) for each
	// frame every encoder writes. Off, each connection is read as bytes arrive.
	ReadInterval   time.Duration
	MaxMessageSize int // default 8 MiB; a larger declared message length is a ProtocolError
	// MaxChunkSize bounds the peer's Set Chunk Size; default 16 MiB - 1, the
	// largest message RTMP can describe. Chunks are copied as they arrive, so a
	// large chunk size costs no memory by itself. 0, above the limit, or the top
	// bit set is a ProtocolError.
	MaxChunkSize    int
	MaxChunkStreams int // default 64 chunk stream ids per connection; one more is a ProtocolError
	// MaxTracks bounds the video tracks, and apart the audio tracks, of one
	// Enhanced RTMP multitrack publish served as renditions, track 0 included
	// (default 8): each other track is a stream of its own
	// (remux.TrackOpener, remux.AudioTrackOpener), and a track past the bound
	// is refused with one log line, the others going on.
	MaxTracks     int
	WindowAckSize uint32 // default 2_500_000, sent on connect; we acknowledge every window received
	ChunkSize     int    // our outgoing chunk size, default 4096, sent on connect
	// MaxConns bounds concurrent connections (default 1024); connections past
	// it are closed right after accept.
	MaxConns int
	// MaxConnsPerIP bounds concurrent connections from one remote IP (default
	// 32), so one host cannot take every slot; past it a connection is closed
	// right after accept. An encoder needs one connection per stream.
	MaxConnsPerIP int
	// ReconnectGrace bounds how long Shutdown keeps ingesting from publishers
	// it asked to reconnect (those that announced the Enhanced RTMP Reconnect
	// capability) before it ends them; default half of what Shutdown's context
	// leaves (5 s without a deadline).
	ReconnectGrace time.Duration
	// OnPanic, if set, is called (from the connection's goroutine) after a panic
	// in a connection was recovered and logged, e.g. to count a metric.
	OnPanic func()

	stats serverStats

	mu         sync.Mutex
	listeners  map[net.Listener]struct{}
	conns      map[*conn]struct{}
	perIP      map[string]int       // live connections by remote IP
	refusalLog map[string]time.Time // last refusal logged, by remote IP
	closed     bool
	wg         sync.WaitGroup

	pacerOnce sync.Once
	pacer     *readpacer.Pacer // nil: ReadInterval off, not Linux, or epoll failed
}

// readPacer returns the server's read pacer, made on first use; nil if none.
func (s *Server) readPacer() *readpacer.Pacer {
	s.pacerOnce.Do(func() {
		if s.ReadInterval <= 0 {
			return
		}
		p, err := readpacer.New(s.ReadInterval)
		if err != nil {
			s.Logger.Warn().Err(err).Msg("read pacing off: connections are read as bytes arrive")
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			if p != nil {
				p.Close()
			}
			return
		}
		s.pacer = p
	})
	return s.pacer
}

// ListenAndServe listens on s.Addr (TCP) and serves it.
func (s *Server) ListenAndServe() error {
	addr := s.Addr
	if addr == "" {
		addr = DefaultAddr
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return s.Serve(ln)
}

// Serve accepts connections on ln until Shutdown or Close, serving each on its own
// goroutine. It closes ln when it returns, and returns ErrServerClosed after
// Shutdown or Close.
func (s *Server) Serve(ln net.Listener) error {
	if s.Handler == nil {
		ln.Close()
		return errors.New("ingest: Server.Handler is nil")
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	if s.listeners == nil {
		s.listeners = make(map[net.Listener]struct{})
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if temporaryAcceptError(err) {
				// Out of descriptors or memory for a moment: back off, as net/http
				// does, rather than stop taking publishers for good.
				if backoff == 0 {
					s.Logger.Warn().Err(err).Msg("rtmp accept failing: backing off")
				}
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		if !s.track(nc) {
			continue
		}
	}
}

// temporaryAcceptError reports an accept failure that passes: a timeout, a
// connection aborted before it was taken, or the process or system out of
// descriptors or buffers (EMFILE when HTTP clients hold every descriptor).
func temporaryAcceptError(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range []error{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.ECONNABORTED} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// track registers a new connection and starts its goroutine; it refuses it when
// the server is closed, full, or full for the connection's IP.
func (s *Server) track(nc net.Conn) bool {
	maxConns := orDefault(s.MaxConns, DefaultMaxConns)
	maxPerIP := orDefault(s.MaxConnsPerIP, DefaultMaxConnsPerIP)
	ip := remoteIP(nc.RemoteAddr())
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	var why string
	switch {
	case len(s.conns) >= maxConns:
		why = "too many connections"
	case s.perIP[ip] >= maxPerIP:
		why = "too many connections from this IP"
	}
	if why != "" {
		logIt := s.refusalLogDue(ip, time.Now())
		s.mu.Unlock()
		s.stats.refused.Add(1)
		nc.Close()
		if logIt {
			s.Logger.Warn().Str("remote", nc.RemoteAddr().String()).Int("max_conns", maxConns).
				Int("max_conns_per_ip", maxPerIP).Int64("refused_total", s.stats.refused.Load()).
				Msg("connection refused: " + why + " (logged once a minute per IP)")
		}
		return false
	}
	if s.conns == nil {
		s.conns = make(map[*conn]struct{})
		s.perIP = make(map[string]int)
	}
	c := newConn(s, nc)
	s.conns[c] = struct{}{}
	s.perIP[ip]++
	s.wg.Add(1)
	s.mu.Unlock()
	s.stats.accepted.Add(1)
	s.stats.active.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.conns, c)
			if s.perIP[ip]--; s.perIP[ip] <= 0 {
				delete(s.perIP, ip)
			}
			s.mu.Unlock()
			s.stats.active.Add(-1)
		}()
		c.serve()
	}()
	return true
}

// refusalLogDue says whether a refusal for ip should be logged now, and notes it.
// The map is pruned of stale entries as it grows, so a flood from many addresses
// keeps it bounded by the addresses seen within one interval. s.mu is held.
func (s *Server) refusalLogDue(ip string, now time.Time) bool {
	if last, ok := s.refusalLog[ip]; ok && now.Sub(last) < refusalLogInterval {
		return false
	}
	if s.refusalLog == nil {
		s.refusalLog = make(map[string]time.Time)
	}
	if len(s.refusalLog) >= 4096 {
		for k, t := range s.refusalLog {
			if now.Sub(t) >= refusalLogInterval {
				delete(s.refusalLog, k)
			}
		}
		if len(s.refusalLog) >= 4096 {
			return false
		}
	}
	s.refusalLog[ip] = now
	return true
}

// remoteIP is the key for MaxConnsPerIP: the IP of a TCP peer, else the address
// as the transport prints it.
func remoteIP(a net.Addr) string {
	if a == nil {
		return ""
	}
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// closeAll stops accepting and ends every connection with cause ErrServerClosed.
func (s *Server) closeAll() error {
	s.mu.Lock()
	s.closed = true
	var err error
	for ln := range s.listeners {
		if e := ln.Close(); e != nil && err == nil {
			err = e
		}
	}
	for c := range s.conns {
		c.stop(ErrServerClosed)
	}
	s.mu.Unlock()
	s.pacerOnce.Do(func() {}) // no pacer is made after this
	if s.pacer != nil {
		s.pacer.Close()
	}
	return err
}

// Shutdown stops accepting and ends every connection (each Writer gets Close
// with ErrServerClosed), then waits for all connection goroutines, or for ctx.
//
// Publishers that announced the Enhanced RTMP Reconnect capability are first
// sent NetConnection.Connect.ReconnectRequest and go on publishing until they
// leave (their Writer's Close then gets the cause of their own end) or
// ReconnectGrace passes, so an encoder moves to another instance with no gap
// but a discontinuity.
func (s *Server) Shutdown(ctx context.Context) error {
	done := make(chan struct{})
	asked, err := s.drain()
	go func() {
		s.wg.Wait()
		close(done)
	}()
	if asked > 0 {
		grace := time.NewTimer(s.reconnectGrace(ctx))
		select {
		case <-done:
		case <-grace.C:
		case <-ctx.Done():
		}
		grace.Stop()
	}
	if e := s.closeAll(); e != nil && err == nil {
		err = e
	}
	select {
	case <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting and ends every connection without waiting for them.
func (s *Server) Close() error {
	return s.closeAll()
}
