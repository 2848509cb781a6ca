package fastlane

import (
	"errors"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"sync"
	"time"
)

// conn is one connection while the lane serves it.
type conn struct {
	l      *Lane
	c      net.Conn
	remote string

	rbuf []byte // read buffer: rbuf[r:w] is unread
	r, w int
	p    request

	req   *http.Request // reused: the handlers keep nothing of a request past its response
	url   url.URL
	canon map[string]string // field name as sent -> canonical key

	resp writer
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
const readBufSize = 4096

func (lc *conn) serve() {
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
	if l.handler == nil {
		lc.handOff()
		return
	}
	lc.remote = lc.c.RemoteAddr().String()
	lc.rbuf = make([]byte, min(readBufSize, l.maxHeader+1))
	lc.req = (&http.Request{}).WithContext(l.ctx)
	lc.resp.lc = lc
	lc.resp.hdr = http.Header{}
	// net/http starts the first request's header timeout at accept.
	phase, first := time.Now(), true
	for {
		switch lc.readRequest(&phase, first) {
		case verdictHandOff:
			lc.handOff()
			return
		case verdictClose:
			return // a read failed or timed out: close, as net/http does
		}
		first = false
		lc.load()
		if !l.handler.LaneTakes(lc.req) {
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
// (verdictTake), one it does not (verdictHandOff), or a read fails (verdictClose). phase
// is when the wait began: the header timeout runs from the first byte of a
// request (or from accept, for the first), the idle timeout from the previous
// response.
func (lc *conn) readRequest(phase *time.Time, first bool) verdict {
	l := lc.l
	for {
		if lc.w > lc.r {
			if v := parseRequest(lc.rbuf[lc.r:lc.w], l.maxHeader, &lc.p); v != verdictMore {
				return v
			}
		} else if l.shutting.Load() {
			return verdictClose
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
				return verdictHandOff
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
				return verdictClose
			}
			continue
		}
		return verdictClose
	}
}

// arm makes sure the read deadline is no later than want plus a second (want
// zero: no bound). It moves the deadline only when it is missing or too late:
// one left from an earlier request fires early, and the read then re-arms at
// want, so a busy keep-alive connection sets it about once a header timeout,
// not twice a request.
func (lc *conn) arm(want time.Time) {
	if want.IsZero() || (!lc.deadline.IsZero() && !lc.deadline.After(want.Add(time.Second))) {
		return
	}
	lc.setDeadline(want)
}

// setDeadline sets the read deadline unless the lane is closing (wake's
// deadline in the past must stand); it reports whether it did.
func (lc *conn) setDeadline(t time.Time) bool {
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
func (lc *conn) wake() {
	lc.mu.Lock()
	_ = lc.c.SetReadDeadline(time.Unix(1, 0))
	lc.mu.Unlock()
}

// Bounds on reading and dropping what a client sent after the last response
// the lane gives it (requests pipelined behind a close or a shutdown).
const (
	lingerTime  = 500 * time.Millisecond
	lingerBytes = 256 << 10
)

// lingerClose half-closes the connection and reads what the client still
// sends for a moment before the close: closing with unread bytes would reset
// the connection, and a client reset before it has read the response loses it.
func (lc *conn) lingerClose() {
	cw, ok := lc.c.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	lc.mu.Lock()
	_ = lc.c.SetReadDeadline(time.Now().Add(lingerTime))
	lc.mu.Unlock()
	buf := lc.rbuf[:cap(lc.rbuf)]
	for n := 0; n < lingerBytes; {
		m, err := lc.c.Read(buf)
		n += m
		if err != nil {
			return
		}
	}
}

// handOff gives the connection, with the bytes read and not answered, to the
// http.Server through Accept.
func (lc *conn) handOff() {
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
	case <-l.done:
	}
}

// load fills the reused request from the parsed header as net/http would
// (readRequest): Host moved out of Header, Pragma: no-cache implying
// Cache-Control, Body NoBody. Strings equal to the previous request's are
// reused, so a keep-alive client asking the same things allocates nothing.
func (lc *conn) load() {
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

// canonKeys bounds a connection's cache of canonical field names.
const canonKeys = 32

func (lc *conn) canonKey(name []byte) string {
	if k, ok := lc.canon[string(name)]; ok {
		return k
	}
	k := textproto.CanonicalMIMEHeaderKey(string(name))
	if lc.canon == nil {
		lc.canon = make(map[string]string, 8)
	}
	if len(lc.canon) < canonKeys {
		lc.canon[string(name)] = k
	}
	return k
}

// respond runs the handler on the loaded request and writes its response; it
// reports whether the connection may serve another request.
func (lc *conn) respond() (keep bool) {
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
const outMax = 8 << 10

// send queues body bytes, writing out when they would make out too large.
func (lc *conn) send(p []byte) error {
	if len(lc.out)+len(p) <= outMax {
		lc.out = append(lc.out, p...)
		return nil
	}
	return lc.flush(p)
}

// flush writes out and then extra, in one writev when both are there.
func (lc *conn) flush(extra []byte) error {
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
