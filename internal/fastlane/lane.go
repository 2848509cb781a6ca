// Package fastlane is rtmpgate's optional HTTP/1.1 fast lane (http_fast_lane,
// off by default): a net.Listener in front of an http.Server that answers the
// simplest GET and HEAD requests on its own keep-alive loop and hands every
// other connection, with the bytes it read, to the http.Server. Its framing
// is held to net/http's byte for byte by the conformance tests beside it and
// its parser by FuzzLaneParse; docs/DESIGN.md says what it gains and risks.
package fastlane

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Handler is what the lane serves: an http.Handler that can also tell, from
// a request's head alone, whether the lane may answer it. httpserve's handler
// is one (it takes a stream's files that are there now); a handler that is
// not gets every connection handed straight to net/http.
type Handler interface {
	http.Handler
	// LaneTakes reports whether the lane may answer r, a GET or HEAD the
	// lane's parser took; false hands the connection to net/http with r's bytes.
	LaneTakes(r *http.Request) bool
}

// Lane is the HTTP/1.1 fast lane (issue #6): a net.Listener for an
// http.Server whose Handler is a Handler. Each accepted connection is first
// served by the lane's own keep-alive loop, which answers the requests the
// Handler's LaneTakes accepts by calling that same handler, without
// net/http's per-request machinery (a background read goroutine and its
// abort, a context, a Request and a header map, headers and body in two
// writes). The first request it does not take (see parseRequest and
// LaneTakes) is handed with every byte already read to the http.Server,
// which gets the connection from Accept and serves it from then on, exactly
// as without the lane.
//
// The lane owns the listener it was given: Close and Shutdown close it.
// http.Server.Shutdown and Close close the Lane, which ends idle lane
// connections at once and busy ones after their response; Shutdown waits
// for them (the server does not know them).
type Lane struct {
	inner      net.Listener
	handler    Handler // nil when the http.Server's handler is not one: every connection is handed off
	log        zerolog.Logger
	maxHeader  int           // bytes of request line and header, as net/http's MaxHeaderBytes
	readHeader time.Duration // as ReadHeaderTimeout; 0: none
	idle       time.Duration // between requests; 0: none

	ctx    context.Context // requests' context: cancelled when a Shutdown gives up waiting
	cancel context.CancelFunc

	handoff    chan net.Conn
	done       chan struct{} // closed by Close
	acceptDone chan struct{} // closed when the accept loop ends
	acceptErr  error         // why, unless closed; read after acceptDone
	closeOnce  sync.Once
	shutting   atomic.Bool
	closeErr   error

	mu    sync.Mutex
	conns map[*conn]struct{} // connections the lane serves (not yet handed off)
	wg    sync.WaitGroup     // the accept loop and every lane connection

	served, handedOff atomic.Uint64
	date              atomic.Pointer[dateLine]
}

// defaultIdle bounds a lane connection's wait between requests when the
// http.Server sets neither IdleTimeout nor ReadTimeout.
const defaultIdle = 2 * time.Minute

// New starts accepting on ln for hs, which must then Serve the Lane; log
// gets the lane's accept errors and handler panics. The lane reads its
// limits from hs: MaxHeaderBytes, ReadHeaderTimeout and IdleTimeout (else
// ReadTimeout, as net/http; else two minutes). A handler that is not a
// Handler gets every connection handed straight to hs.
func New(ln net.Listener, hs *http.Server, log zerolog.Logger) *Lane {
	ctx, cancel := context.WithCancel(context.Background())
	h, _ := hs.Handler.(Handler)
	l := &Lane{
		inner:      ln,
		handler:    h,
		log:        log,
		maxHeader:  hs.MaxHeaderBytes,
		readHeader: hs.ReadHeaderTimeout,
		idle:       hs.IdleTimeout,
		ctx:        ctx,
		cancel:     cancel,
		handoff:    make(chan net.Conn),
		done:       make(chan struct{}),
		acceptDone: make(chan struct{}),
		conns:      map[*conn]struct{}{},
	}
	if l.maxHeader <= 0 {
		l.maxHeader = http.DefaultMaxHeaderBytes
	}
	if l.readHeader <= 0 {
		l.readHeader = hs.ReadTimeout
	}
	if l.idle <= 0 {
		l.idle = hs.ReadTimeout
	}
	if l.idle <= 0 {
		l.idle = defaultIdle
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection handed to net/http.
func (l *Lane) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
		// Counted here, before net/http can answer on it, so a client that
		// has its answer sees the count.
		l.handedOff.Add(1)
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-l.acceptDone:
		if l.acceptErr == nil {
			return nil, net.ErrClosed
		}
		return nil, l.acceptErr
	}
}

// Addr is the listener's address.
func (l *Lane) Addr() net.Addr { return l.inner.Addr() }

// Close stops accepting and ends the lane's connections: idle ones at once,
// busy ones after their response.
func (l *Lane) Close() error {
	l.closeOnce.Do(func() {
		l.shutting.Store(true)
		close(l.done)
		l.closeErr = l.inner.Close()
		l.mu.Lock()
		for lc := range l.conns {
			lc.wake()
		}
		l.mu.Unlock()
	})
	return l.closeErr
}

// Shutdown closes the lane and waits for its connections to end; when ctx
// ends first it cancels their requests, closes them, waits for their
// goroutines and returns ctx's error.
func (l *Lane) Shutdown(ctx context.Context) error {
	_ = l.Close()
	idle := make(chan struct{})
	go func() { l.wg.Wait(); close(idle) }()
	select {
	case <-idle:
		l.cancel()
		return nil
	case <-ctx.Done():
	}
	l.cancel()
	l.mu.Lock()
	for lc := range l.conns {
		_ = lc.c.Close()
	}
	l.mu.Unlock()
	<-idle
	return ctx.Err()
}

// Served reports how many requests the lane answered and how many
// connections it handed to net/http.
func (l *Lane) Served() (requests, handedOff uint64) {
	return l.served.Load(), l.handedOff.Load()
}

func (l *Lane) acceptLoop() {
	defer l.wg.Done()
	defer close(l.acceptDone)
	var backoff time.Duration
	for {
		c, err := l.inner.Accept()
		if err != nil {
			select {
			case <-l.done:
				return
			default:
			}
			// Out of descriptors and the like: wait as http.Server would.
			var ne net.Error
			//lint:ignore SA1019 http.Server checks the same
			if errors.As(err, &ne) && ne.Temporary() {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				l.log.Warn().Err(err).Dur("retry", backoff).Msg("http accept")
				select {
				case <-time.After(backoff):
					continue
				case <-l.done:
					return
				}
			}
			l.acceptErr = err
			return
		}
		backoff = 0
		lc := &conn{l: l, c: c}
		l.mu.Lock()
		if l.shutting.Load() {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.conns[lc] = struct{}{}
		l.wg.Add(1)
		l.mu.Unlock()
		go lc.serve()
	}
}

// dateLine is the Date header value of one second.
type dateLine struct {
	sec int64
	b   []byte
}

func (l *Lane) dateHeader(now time.Time) []byte {
	sec := now.Unix()
	if d := l.date.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &dateLine{sec: sec, b: now.UTC().AppendFormat(make([]byte, 0, len(http.TimeFormat)), http.TimeFormat)}
	l.date.Store(d)
	return d.b
}
