package fastlane

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// writer is the lane's http.ResponseWriter. It frames a response as
// net/http's response and chunkWriter do (chunkWriter.writeHeader): the same
// status line, the handler's fields in the same order (Header.WriteSubset),
// then Date, a computed Content-Length, a sniffed Content-Type, Connection and
// Transfer-Encoding; a body without Content-Length is buffered up to 2048
// bytes (net/http's bufferBeforeChunkingSize), so a small one finished by the
// handler gets a Content-Length and a larger or flushed one is chunked.
type writer struct {
	lc         *conn
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

const chunkingAfter = 2048

func (w *writer) reset(head, wantsClose bool) {
	clear(w.hdr)
	*w = writer{lc: w.lc, hdr: w.hdr, head: head, wantsClose: wantsClose, clen: -1,
		pending: w.pending[:0], excl: w.excl}
}

func (w *writer) Header() http.Header { return w.hdr }

func (w *writer) WriteHeader(code int) {
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

func (w *writer) Write(p []byte) (int, error) {
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
			if len(w.pending)+len(p) <= chunkingAfter {
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
func (w *writer) body(p []byte) error {
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
func (w *writer) Flush() {
	w.sendPending(false)
	_ = w.lc.flush(nil)
}

// sendPending sends the header, once, and the body bytes held until it went;
// done tells the header whether the handler has returned (the whole body is
// known, so its length can be given).
func (w *writer) sendPending(done bool) {
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
func (w *writer) finish() {
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
func (w *writer) sendHeader(first []byte, done bool) {
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

func (w *writer) statusLine(code int) {
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
type outWriter conn

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
