package httpserve

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Lane is the HTTP/1.1 fast lane (issue #6): a net.Listener for an
// http.Server whose Handler is New's. Each accepted connection is first served
// by the lane's own keep-alive loop, which answers GET and HEAD of a stream's
// files (the requests ServeHTTP's fast path takes) by calling that same
// handler, without net/http's per-request machinery (a background read
// goroutine and its abort, a context, a Request and a header map, headers and
// body in two writes). The first request it does not take (see
// parseLaneRequest; also a file that would have to wait, see laneTakes), is
// handed with every byte already read to the http.Server, which gets the
// connection from Accept and serves it from then on, exactly as without the
// lane.
//
// http.Server.Shutdown and Close close the listener, which ends idle lane
// connections at once and busy ones after their response; Shutdown waits
// for them (the server does not know them).
type Lane struct {
	inner      net.Listener
	srv        *server      // nil when the handler is not New's: every connection is handed off
	handler    http.Handler // srv, as the http.Server has it
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
	conns map[*laneConn]struct{} // connections the lane serves (not yet handed off)
	wg    sync.WaitGroup         // the accept loop and every lane connection

	served, handedOff atomic.Uint64
	date              atomic.Pointer[laneDate]
}

// laneDefaultIdle bounds a lane connection's wait between requests when the
// http.Server sets neither IdleTimeout nor ReadTimeout.
const laneDefaultIdle = 2 * time.Minute

// NewLane starts accepting on ln for hs, which must then Serve the Lane. The
// lane reads its limits from hs: MaxHeaderBytes, ReadHeaderTimeout and
// IdleTimeout (else ReadTimeout, as net/http; else two minutes). A handler
// that is not New's gets every connection handed straight to hs.
func NewLane(ln net.Listener, hs *http.Server) *Lane {
	ctx, cancel := context.WithCancel(context.Background())
	l := &Lane{
		inner:      ln,
		handler:    hs.Handler,
		log:        zerolog.Nop(),
		maxHeader:  hs.MaxHeaderBytes,
		readHeader: hs.ReadHeaderTimeout,
		idle:       hs.IdleTimeout,
		ctx:        ctx,
		cancel:     cancel,
		handoff:    make(chan net.Conn),
		done:       make(chan struct{}),
		acceptDone: make(chan struct{}),
		conns:      map[*laneConn]struct{}{},
	}
	if s, ok := hs.Handler.(*server); ok {
		l.srv, l.log = s, s.cfg.Logger
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
		l.idle = laneDefaultIdle
	}
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

// Accept returns the next connection handed to net/http.
func (l *Lane) Accept() (net.Conn, error) {
	select {
	case c := <-l.handoff:
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
		lc := &laneConn{l: l, c: c}
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

// laneDate is the Date header value of one second.
type laneDate struct {
	sec int64
	b   []byte
}

func (l *Lane) dateHeader(now time.Time) []byte {
	sec := now.Unix()
	if d := l.date.Load(); d != nil && d.sec == sec {
		return d.b
	}
	d := &laneDate{sec: sec, b: now.UTC().AppendFormat(make([]byte, 0, len(http.TimeFormat)), http.TimeFormat)}
	l.date.Store(d)
	return d.b
}

// laneConn is one connection while the lane serves it.
type laneConn struct {
	l      *Lane
	c      net.Conn
	remote string

	rbuf []byte // read buffer: rbuf[r:w] is unread
	r, w int
	p    laneRequest

	req   *http.Request // reused: the handlers keep nothing of a request past its response
	url   url.URL
	canon map[string]string // field name as sent -> canonical key

	resp laneWriter
	out  []byte      // response bytes not yet written
	vec  [2][]byte   // out and a large body, for one writev
	bufs net.Buffers // over vec (a field: WriteTo would move a local to the heap)
	werr error

	mu       sync.Mutex // deadline vs. wake
	deadline time.Time  // the read deadline set; zero: none
	handed   bool
}

// Read buffer sizes: most requests fit the first; a larger header grows it up
// to the header limit.
const laneReadBuf = 4096

func (lc *laneConn) serve() {
	l := lc.l
	defer func() {
		l.mu.Lock()
		delete(l.conns, lc)
		l.mu.Unlock()
		if !lc.handed {
			_ = lc.c.Close()
		}
		l.wg.Done()
	}()
	if l.srv == nil {
		lc.handOff()
		return
	}
	lc.remote = lc.c.RemoteAddr().String()
	lc.rbuf = make([]byte, min(laneReadBuf, l.maxHeader+1))
	lc.req = (&http.Request{}).WithContext(l.ctx)
	lc.resp.lc = lc
	lc.resp.hdr = http.Header{}
	// net/http starts the first request's header timeout at accept.
	phase, first := time.Now(), true
	for {
		switch lc.readRequest(&phase, first) {
		case laneHandOff:
			lc.handOff()
			return
		case laneMore:
			return // a read failed or timed out: close, as net/http does
		}
		first = false
		lc.load()
		app, name, path, ok := splitObjectPath(lc.req)
		if !ok || !l.srv.laneTakes(lc.req.Method, app, name, path) {
			lc.handOff()
			return
		}
		lc.r += lc.p.size
		keep := lc.respond()
		if !keep || l.shutting.Load() {
			if lc.werr == nil && (lc.w > lc.r || l.shutting.Load()) {
				lc.lingerClose()
			}
			return
		}
		if lc.r == lc.w {
			lc.r, lc.w = 0, 0
		}
		phase = time.Now()
	}
}

// readRequest reads until rbuf holds a whole request header the lane takes
// (laneTake), one it does not (laneHandOff), or a read fails (laneMore). phase
// is when the wait began: the header timeout runs from the first byte of a
// request (or from accept, for the first), the idle timeout from the previous
// response.
func (lc *laneConn) readRequest(phase *time.Time, first bool) laneVerdict {
	l := lc.l
	for {
		if lc.w > lc.r {
			if v := parseLaneRequest(lc.rbuf[lc.r:lc.w], l.maxHeader, &lc.p); v != laneMore {
				return v
			}
		} else if l.shutting.Load() {
			return laneMore
		}
		if lc.w == len(lc.rbuf) {
			switch {
			case lc.r > 0:
				lc.w = copy(lc.rbuf, lc.rbuf[lc.r:lc.w])
				lc.r = 0
			case len(lc.rbuf) <= l.maxHeader:
				b := make([]byte, min(2*len(lc.rbuf), l.maxHeader+1))
				lc.w = copy(b, lc.rbuf[:lc.w])
				lc.rbuf = b
			default:
				return laneHandOff
			}
		}
		idle := lc.r == lc.w && !first
		var want time.Time
		switch {
		case idle:
			want = phase.Add(l.idle)
		case l.readHeader > 0:
			want = phase.Add(l.readHeader)
		}
		lc.arm(want)
		n, err := lc.c.Read(lc.rbuf[lc.w:])
		if n > 0 {
			if idle {
				*phase = time.Now()
			}
			lc.w += n
			continue
		}
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() && !l.shutting.Load() && (want.IsZero() || time.Now().Before(want)) {
			// Woken early by a deadline left from an earlier wait: the real bound is want.
			if !lc.setDeadline(want) {
				return laneMore
			}
			continue
		}
		return laneMore
	}
}

// arm makes sure the read deadline is no later than want plus a second (want
// zero: no bound). It moves the deadline only when it is missing or too late:
// one left from an earlier request fires early, and the read then re-arms at
// want, so a busy keep-alive connection sets it about once a header timeout,
// not twice a request.
func (lc *laneConn) arm(want time.Time) {
	if want.IsZero() || (!lc.deadline.IsZero() && !lc.deadline.After(want.Add(time.Second))) {
		return
	}
	lc.setDeadline(want)
}

// setDeadline sets the read deadline unless the lane is closing (wake's
// deadline in the past must stand); it reports whether it did.
func (lc *laneConn) setDeadline(t time.Time) bool {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if lc.l.shutting.Load() {
		return false
	}
	if err := lc.c.SetReadDeadline(t); err != nil {
		return false
	}
	lc.deadline = t
	return true
}

// wake ends a read in progress; called with the lane closing.
func (lc *laneConn) wake() {
	lc.mu.Lock()
	_ = lc.c.SetReadDeadline(time.Unix(1, 0))
	lc.mu.Unlock()
}

// Bounds on reading and dropping what a client sent after the last response
// the lane gives it (requests pipelined behind a close or a shutdown).
const (
	laneLinger      = 500 * time.Millisecond
	laneLingerBytes = 256 << 10
)

// lingerClose half-closes the connection and reads what the client still
// sends for a moment before the close: closing with unread bytes would reset
// the connection, and a client reset before it has read the response loses it.
func (lc *laneConn) lingerClose() {
	cw, ok := lc.c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	lc.mu.Lock()
	_ = lc.c.SetReadDeadline(time.Now().Add(laneLinger))
	lc.mu.Unlock()
	buf := lc.rbuf[:cap(lc.rbuf)]
	for n := 0; n < laneLingerBytes; {
		m, err := lc.c.Read(buf)
		n += m
		if err != nil {
			return
		}
	}
}

// handOff gives the connection, with the bytes read and not answered, to the
// http.Server through Accept.
func (lc *laneConn) handOff() {
	l := lc.l
	l.mu.Lock()
	delete(l.conns, lc)
	l.mu.Unlock()
	hc := &handedConn{Conn: lc.c}
	if lc.w > lc.r {
		hc.buf = lc.rbuf[lc.r:lc.w]
	}
	// net/http sets its own deadlines; clear ours so a stale one cannot cut it.
	if !lc.deadline.IsZero() {
		_ = lc.c.SetReadDeadline(time.Time{})
	}
	select {
	case l.handoff <- hc:
		lc.handed = true
		l.handedOff.Add(1)
	case <-l.done:
	}
}

// load fills the reused request from the parsed header as net/http would
// (readRequest): Host moved out of Header, Pragma: no-cache implying
// Cache-Control, Body NoBody. Strings equal to the previous request's are
// reused, so a keep-alive client asking the same things allocates nothing.
func (lc *laneConn) load() {
	p, r := &lc.p, lc.req
	r.Method = http.MethodGet
	if p.head {
		r.Method = http.MethodHead
	}
	path := reuse(lc.url.Path, p.target)
	lc.url = url.URL{Path: path}
	r.URL = &lc.url
	r.RequestURI = path
	r.Proto, r.ProtoMajor, r.ProtoMinor = "HTTP/1.1", 1, 1
	r.Host = reuse(r.Host, p.host)
	r.Close = p.close
	r.Body = http.NoBody
	r.ContentLength = 0
	r.RemoteAddr = lc.remote
	if r.Header == nil {
		r.Header = http.Header{}
	}
	h := r.Header
	for k, v := range h {
		h[k] = v[:0]
	}
	for _, f := range p.fields {
		k := lc.canonKey(f.name)
		v := h[k]
		s := ""
		if len(v) < cap(v) {
			s = v[: len(v)+1 : len(v)+1][len(v)]
		}
		h[k] = append(v, reuse(s, f.value))
	}
	for k, v := range h {
		if len(v) == 0 {
			delete(h, k)
		}
	}
	if _, ok := h["Cache-Control"]; !ok && len(h["Pragma"]) > 0 && h["Pragma"][0] == "no-cache" {
		h["Cache-Control"] = []string{"no-cache"}
	}
}

func reuse(old string, b []byte) string {
	if old == string(b) {
		return old
	}
	return string(b)
}

// laneCanonKeys bounds a connection's cache of canonical field names.
const laneCanonKeys = 32

func (lc *laneConn) canonKey(name []byte) string {
	if k, ok := lc.canon[string(name)]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(string(name))
	if lc.canon == nil {
		lc.canon = make(map[string]string, 8)
	}
	if len(lc.canon) < laneCanonKeys {
		lc.canon[string(name)] = k
	}
	return k
}

// respond runs the handler on the loaded request and writes its response; it
// reports whether the connection may serve another request.
func (lc *laneConn) respond() (keep bool) {
	w := &lc.resp
	w.reset(lc.req.Method == http.MethodHead, lc.p.close)
	aborted := true
	func() {
		defer func() {
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				lc.l.log.Error().Str("remote", lc.remote).Interface("panic", v).Msg("http: panic serving")
			}
		}()
		lc.l.handler.ServeHTTP(w, lc.req)
		aborted = false
	}()
	lc.l.served.Add(1)
	if aborted {
		_ = lc.flush(nil) // as net/http, which flushes what the connection holds before closing
		return false
	}
	w.finish()
	return lc.flush(nil) == nil && !w.closeAfter
}

// Bytes of a response gathered before writing: a larger body goes out at once,
// uncopied, in one writev with what is gathered. Small enough that a
// connection's buffer stays small, large enough for most playlists.
const laneOutMax = 8 << 10

// send queues body bytes, writing out when they would make out too large.
func (lc *laneConn) send(p []byte) error {
	if len(lc.out)+len(p) <= laneOutMax {
		lc.out = append(lc.out, p...)
		return nil
	}
	return lc.flush(p)
}

// flush writes out and then extra, in one writev when both are there.
func (lc *laneConn) flush(extra []byte) error {
	if lc.werr != nil {
		return lc.werr
	}
	switch {
	case len(extra) > 0 && len(lc.out) > 0:
		lc.vec = [2][]byte{lc.out, extra}
		lc.bufs = lc.vec[:]
		_, lc.werr = lc.bufs.WriteTo(lc.c)
		lc.vec, lc.bufs = [2][]byte{}, nil // keep no body reachable
	case len(extra) > 0:
		_, lc.werr = lc.c.Write(extra)
	case len(lc.out) > 0:
		_, lc.werr = lc.c.Write(lc.out)
	}
	lc.out = lc.out[:0]
	return lc.werr
}

// handedConn is a connection given to net/http: its reads return the bytes
// the lane read first.
type handedConn struct {
	net.Conn
	buf []byte
}

func (c *handedConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite lets net/http half-close after an error response (so the client
// reads it before the reset), as it does on a *net.TCPConn.
func (c *handedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// laneWriter is the lane's http.ResponseWriter. It frames a response as
// net/http's response and chunkWriter do (chunkWriter.writeHeader): the same
// status line, the handler's fields in the same order (Header.WriteSubset),
// then Date, a computed Content-Length, a sniffed Content-Type, Connection and
// Transfer-Encoding; a body without Content-Length is buffered up to 2048
// bytes (net/http's bufferBeforeChunkingSize), so a small one finished by the
// handler gets a Content-Length and a larger or flushed one is chunked.
type laneWriter struct {
	lc         *laneConn
	hdr        http.Header
	head       bool // a HEAD request: no body is sent
	wantsClose bool

	status      int
	wroteHeader bool // status decided
	sentHeader  bool // header queued in lc.out
	clen        int64
	written     int64
	chunking    bool
	closeAfter  bool
	pending     []byte // body held back before the header is sent
	excl        map[string]bool
}

const laneChunkingAfter = 2048

func (w *laneWriter) reset(head, wantsClose bool) {
	clear(w.hdr)
	*w = laneWriter{lc: w.lc, hdr: w.hdr, head: head, wantsClose: wantsClose, clen: -1,
		pending: w.pending[:0], excl: w.excl}
}

func (w *laneWriter) Header() http.Header { return w.hdr }

func (w *laneWriter) WriteHeader(code int) {
	if w.wroteHeader {
		return
	}
	if code < 100 || code > 999 {
		panic("invalid WriteHeader code " + strconv.Itoa(code))
	}
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// Informational: sent now, the final response follows.
		w.statusLine(code)
		_ = w.hdr.WriteSubset((*outWriter)(w.lc), map[string]bool{"Content-Length": true, "Transfer-Encoding": true})
		w.lc.out = append(w.lc.out, "\r\n"...)
		_ = w.lc.flush(nil)
		return
	}
	w.wroteHeader, w.status = true, code
	if cl := w.hdr.Get("Content-Length"); cl != "" {
		if v, err := strconv.ParseInt(cl, 10, 64); err == nil && v >= 0 {
			w.clen = v
		} else {
			w.hdr.Del("Content-Length")
		}
	}
}

func (w *laneWriter) Write(p []byte) (int, error) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if len(p) == 0 {
		return 0, nil
	}
	if !bodyAllowed(w.status) {
		return 0, http.ErrBodyNotAllowed
	}
	w.written += int64(len(p))
	if w.clen != -1 && w.written > w.clen {
		return 0, http.ErrContentLength
	}
	if !w.sentHeader {
		_, typed := w.hdr["Content-Type"]
		if w.clen == -1 || !typed {
			// The header may depend on the body (length, sniffed type): hold it back.
			if len(w.pending)+len(p) <= laneChunkingAfter {
				w.pending = append(w.pending, p...)
				return len(p), nil
			}
		}
		first := p
		if len(w.pending) > 0 {
			first = w.pending
		}
		w.sendHeader(first, false)
		if err := w.body(w.pending); err != nil {
			return 0, err
		}
		w.pending = w.pending[:0]
	}
	if err := w.body(p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// body sends body bytes after the header, chunked if so framed; HEAD sends none.
func (w *laneWriter) body(p []byte) error {
	if len(p) == 0 || w.head {
		return nil
	}
	lc := w.lc
	if w.chunking {
		lc.out = strconv.AppendUint(lc.out, uint64(len(p)), 16)
		lc.out = append(lc.out, "\r\n"...)
		if err := lc.send(p); err != nil {
			return err
		}
		lc.out = append(lc.out, "\r\n"...)
		return nil
	}
	return lc.send(p)
}

// Flush sends the header and what the handler wrote so far (blocking
// responses rely on it).
func (w *laneWriter) Flush() {
	w.sendPending(false)
	_ = w.lc.flush(nil)
}

// sendPending sends the header, once, and the body bytes held until it went;
// done tells the header whether the handler has returned (the whole body is
// known, so its length can be given).
func (w *laneWriter) sendPending(done bool) {
	if !w.wroteHeader {
		w.WriteHeader(http.StatusOK)
	}
	if !w.sentHeader {
		w.sendHeader(w.pending, done)
		_ = w.body(w.pending)
		w.pending = w.pending[:0]
	}
}

// finish completes the response after the handler returned.
func (w *laneWriter) finish() {
	w.sendPending(true)
	if w.chunking {
		w.lc.out = append(w.lc.out, "0\r\n\r\n"...)
	}
	if !w.head && w.clen != -1 && bodyAllowed(w.status) && w.clen != w.written {
		w.closeAfter = true // a short body: the stream is out of step
	}
}

// sendHeader queues the response header; first is the first body bytes (for
// sniffing and, when done, the length), as in net/http's writeHeader.
func (w *laneWriter) sendHeader(first []byte, done bool) {
	w.sentHeader = true
	h := w.hdr
	code := w.status
	clear(w.excl)
	exclude := func(k string) {
		if _, ok := h[k]; !ok {
			return
		}
		if w.excl == nil {
			w.excl = map[string]bool{}
		}
		w.excl[k] = true
	}
	te := h.Get("Transfer-Encoding")
	hasTE := te != ""
	var autoLen []byte
	if done && !hasTE && bodyAllowed(code) && !hasField(h, "Content-Length") && (!w.head || len(first) > 0) {
		w.clen = int64(len(first))
		autoLen = strconv.AppendInt(nil, w.clen, 10)
	}
	hasCL := w.clen != -1
	keepAlives := !w.lc.l.shutting.Load()
	if w.wantsClose || h.Get("Connection") == "close" || !keepAlives {
		w.closeAfter = true
	}
	sniffed := ""
	if bodyAllowed(code) {
		_, typed := h["Content-Type"]
		if !typed && h.Get("Content-Encoding") == "" && !hasTE && len(first) > 0 {
			sniffed = http.DetectContentType(first)
		}
	} else {
		exclude("Content-Length")
		exclude("Transfer-Encoding")
		if code == http.StatusNotModified {
			exclude("Content-Type")
		}
	}
	var date []byte
	if !hasField(h, "Date") {
		date = w.lc.l.dateHeader(time.Now())
	}
	if hasCL && hasTE && te != "identity" {
		exclude("Content-Length")
		hasCL = false
	}
	chunked := ""
	switch {
	case w.head || !bodyAllowed(code) || code == http.StatusNoContent, hasCL:
		exclude("Transfer-Encoding")
	case hasTE && te == "identity":
		w.closeAfter = true
		exclude("Transfer-Encoding")
	default:
		w.chunking, chunked = true, "chunked"
		if hasTE && te == "chunked" {
			exclude("Transfer-Encoding")
		}
	}
	if w.chunking {
		exclude("Content-Length")
	}
	connection := ""
	if w.closeAfter && (!keepAlives || !connectionHasClose(h.Get("Connection"))) && code != http.StatusSwitchingProtocols {
		exclude("Connection")
		connection = "close"
	}

	lc := w.lc
	w.statusLine(code)
	excl := w.excl
	if len(excl) == 0 {
		excl = nil
	}
	_ = h.WriteSubset((*outWriter)(lc), excl)
	if date != nil {
		lc.out = append(append(append(lc.out, "Date: "...), date...), "\r\n"...)
	}
	if autoLen != nil {
		lc.out = append(append(append(lc.out, "Content-Length: "...), autoLen...), "\r\n"...)
	}
	for _, f := range [...]struct{ k, v string }{{"Content-Type", sniffed}, {"Connection", connection}, {"Transfer-Encoding", chunked}} {
		if f.v != "" {
			lc.out = append(append(append(append(lc.out, f.k...), ": "...), f.v...), "\r\n"...)
		}
	}
	lc.out = append(lc.out, "\r\n"...)
}

func (w *laneWriter) statusLine(code int) {
	out := append(w.lc.out, "HTTP/1.1 "...)
	if text := http.StatusText(code); text != "" {
		out = strconv.AppendInt(out, int64(code), 10)
		out = append(append(append(out, ' '), text...), "\r\n"...)
	} else {
		c := strconv.Itoa(code)
		for len(c) < 3 {
			c = "0" + c
		}
		out = append(append(append(append(out, c...), " status code "...), strconv.Itoa(code)...), "\r\n"...)
	}
	w.lc.out = out
}

// outWriter appends to the connection's pending output (Header.WriteSubset
// writes into it).
type outWriter laneConn

func (o *outWriter) Write(p []byte) (int, error) {
	o.out = append(o.out, p...)
	return len(p), nil
}

func (o *outWriter) WriteString(s string) (int, error) {
	o.out = append(o.out, s...)
	return len(s), nil
}

var _ io.StringWriter = (*outWriter)(nil)

func bodyAllowed(code int) bool {
	return (code < 100 || code > 199) && code != http.StatusNoContent && code != http.StatusNotModified
}

// hasField is net/http's Header.has: the key present, whatever its values.
func hasField(h http.Header, k string) bool {
	_, ok := h[k]
	return ok
}

// connectionHasClose reports a close token in a Connection value.
func connectionHasClose(v string) bool {
	for t := range strings.SplitSeq(v, ",") {
		if strings.EqualFold(strings.Trim(t, " \t"), "close") {
			return true
		}
	}
	return false
}

// laneTakes reports whether the lane may answer a request that ServeHTTP's
// fast path takes: all but a GET of a part or segment still to come, which
// waits for it and may stream it as it grows; net/http, which notices a
// client that leaves, keeps those.
func (s *server) laneTakes(method, app, name, path string) bool {
	if method != http.MethodGet {
		return true // a HEAD never waits
	}
	st, err := s.hub.Stream(app, name)
	if err != nil {
		return true
	}
	snap := st.Snapshot()
	if _, ok := snap.Object(path); ok {
		return true
	}
	return !snap.Upcoming(path)
}
