package httpserve

import (
	"bytes"
	"io"

	"github.com/rtmpgate/rtmpgate/internal/httpsyntax"
)

// headCheck looks at each request head on a connection before net/http (or
// the fast lane) parses it. It never decides framing and never changes a head
// it lets through; it only
//
//   - answers 400 and closes, as nginx does, for a head carrying both
//     Content-Length and Transfer-Encoding, Transfer-Encoding on anything but
//     HTTP/1.1, or an obs-fold line (RFC 9112 5.2, 6.1, 6.3): net/http would
//     drop Content-Length, ignore Transfer-Encoding on HTTP/1.0 or unfold the
//     line, and a front end that reads the head otherwise would see another
//     request hidden in the body;
//   - ends the connection after a head that declares a body or that it
//     cannot make sense of: net/http answers that request and then reads end
//     of stream, so no byte after the head is ever parsed as a request. A
//     POST whose body is framed by one Content-Length of at most
//     maxRequestBody bytes (the one route that takes a body, OBS's
//     configuration request) has that many bytes passed after its head, and
//     the connection ends after them; any other body is dropped.
//
// A head is what net/http reads as one: the lines up to the first empty one,
// a line ending in LF with an optional CR before it (bare LF is accepted, as
// by net/http and nginx). Heads are held back whole, up to limit bytes, so a
// rejected one never reaches the parser; a head cut off by the client is
// dropped with the connection (net/http would close it unanswered too).
type headCheck struct {
	limit int

	buf      []byte // buf[:ok] checked, to be read; buf[ok:] part of a head
	ok       int
	line     int  // start of the first line in buf[ok:] not yet ended
	first    bool // buf[ok:] holds no ended line: the next ended one is a request line
	end      bool // after buf[:ok], the connection reads as ended
	body     int  // bytes of a passed body still to come after buf[:ok]
	rejected string
	counted  bool
}

// headSlack is how far net/http may read a head past MaxHeaderBytes: it
// limits a head's reads to MaxHeaderBytes+4096 and may hold 4096 bytes of it
// read ahead. A head that runs past the check's limit cannot be one net/http
// parses whole.
const headSlack = 2*4096 + 1

// Reasons a head is refused (metric labels).
const (
	rejectCLTE = "content_length_and_transfer_encoding"
	rejectTE10 = "transfer_encoding_not_http11"
	rejectFold = "obs_fold"
)

// rejectedHead stands in for a refused head: a request line net/http
// answers "400 Bad Request" with Connection: close, as it answers any
// malformed request, after the responses to the heads before it.
var rejectedHead = []byte("REJECTED / HTTP/rejected\r\n\r\n")

const headCheckBuf = 4096

// maxRequestBody is the longest request body the check passes (a POST with a
// Content-Length); OBS's configuration request is about 2 KB.
const maxRequestBody = 64 << 10

func (h *headCheck) read(r io.Reader, p []byte) (int, error) {
	for {
		if h.ok > 0 {
			n := copy(p, h.buf[:h.ok])
			rest := copy(h.buf, h.buf[n:])
			h.buf = h.buf[:rest]
			h.ok -= n
			h.line -= n
			return n, nil
		}
		if h.end {
			return 0, io.EOF
		}
		if len(h.buf) == 0 {
			h.line, h.first = 0, true
		}
		if len(h.buf) == cap(h.buf) {
			nb := make([]byte, len(h.buf), min(max(2*cap(h.buf), headCheckBuf), h.limit))
			copy(nb, h.buf)
			h.buf = nb
		}
		n, err := r.Read(h.buf[len(h.buf):cap(h.buf)])
		h.buf = h.buf[:len(h.buf)+n]
		h.scan()
		if h.ok > 0 || h.end {
			continue
		}
		if len(h.buf) >= h.limit {
			// Too long for net/http to parse whole: it answers 431 or 400.
			h.ok, h.end = len(h.buf), true
			continue
		}
		if err != nil {
			if err == io.EOF {
				h.buf = h.buf[:0] // a head cut off: nothing to answer
			}
			return 0, err
		}
	}
}

// scan finds the heads ended in buf[ok:] and checks each.
func (h *headCheck) scan() {
	if h.body > 0 {
		h.passBody()
		return
	}
	for !h.end {
		i := bytes.IndexByte(h.buf[h.line:], '\n')
		if i < 0 {
			return
		}
		line := h.buf[h.line : h.line+i]
		h.line += i + 1
		if !h.first && len(line) > 0 && !(len(line) == 1 && line[0] == '\r') {
			continue
		}
		if h.first {
			h.first = false
			if len(line) > 0 && !(len(line) == 1 && line[0] == '\r') {
				continue // the request line
			}
		}
		head := h.buf[h.ok:h.line]
		verdict, reason, body := checkHead(head)
		switch verdict {
		case headBody:
			h.ok, h.body = h.line, body
			h.passBody()
			return
		case headReject:
			h.rejected = reason
			h.buf = append(h.buf[:h.ok], rejectedHead...)
			h.ok, h.line, h.end = len(h.buf), len(h.buf), true
		case headLast:
			h.ok, h.end = h.line, true
		default:
			h.ok, h.first = h.line, true
		}
	}
}

// passBody marks as checked the bytes of a passed body that have arrived;
// the connection ends after the last.
func (h *headCheck) passBody() {
	n := min(h.body, len(h.buf)-h.ok)
	h.ok += n
	h.line = h.ok
	h.body -= n
	if h.body == 0 {
		h.end = true
	}
}

type headVerdict int

const (
	headPass   headVerdict = iota // parsed as is; another head may follow
	headLast                      // parsed as is; then the connection ends
	headReject                    // replaced by rejectedHead; then the connection ends
	headBody                      // parsed as is, its body passed; then the connection ends
)

// checkHead judges one whole head (the request line, field lines and the
// empty line, each ending in LF); for headBody, body is the body's length.
func checkHead(head []byte) (verdict headVerdict, reason string, body int) {
	reqLine, fields, _ := bytes.Cut(head, []byte("\n"))
	reqLine = bytes.TrimSuffix(reqLine, []byte("\r"))
	sp := bytes.LastIndexByte(reqLine, ' ')
	odd := sp < 0 || bytes.Count(reqLine, []byte(" ")) != 2
	proto := reqLine[sp+1:]
	var cl, te, fold, hasBody bool
	clCount, clValue := 0, -1
	for len(fields) > 0 {
		var line []byte
		line, fields, _ = bytes.Cut(fields, []byte("\n"))
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			fold = true
			continue
		}
		name, value, ok := bytes.Cut(line, []byte(":"))
		if !ok || !httpsyntax.Token(name) {
			odd = true
			continue
		}
		switch {
		case httpsyntax.EqualFold(name, "content-length"):
			cl = true
			clCount++
			v := httpsyntax.TrimOWS(value)
			if len(bytes.Trim(v, "0")) > 0 || len(v) == 0 {
				hasBody = true
			}
			clValue = decimalUpTo(v, maxRequestBody)
		case httpsyntax.EqualFold(name, "transfer-encoding"):
			te, hasBody = true, true
		}
	}
	switch {
	case fold:
		return headReject, rejectFold, 0
	case cl && te:
		return headReject, rejectCLTE, 0
	case te && string(proto) != "HTTP/1.1":
		return headReject, rejectTE10, 0
	case hasBody && !odd && clCount == 1 && clValue > 0 && bytes.HasPrefix(reqLine, []byte("POST ")):
		return headBody, "", clValue
	case hasBody || odd:
		return headLast, "", 0
	}
	return headPass, "", 0
}

// decimalUpTo is v read as a decimal number of at most limit, or -1.
func decimalUpTo(v []byte, limit int) int {
	if len(v) == 0 || len(v) > 10 {
		return -1
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	if n > limit {
		return -1
	}
	return n
}
