package fastlane

import (
	"bytes"

	"github.com/rtmpgate/rtmpgate/internal/httpsyntax"
)

// verdict is what the fast lane makes of the bytes buffered on a connection.
type verdict int

const (
	verdictMore    verdict = iota // no complete request header yet: read on
	verdictTake                   // a request the lane answers
	verdictHandOff                // anything else: net/http answers it, from these bytes on
	// verdictClose is conn.readRequest's alone, never the parser's: a read
	// failed, timed out or was cut by a shutdown, so the connection closes.
	verdictClose
)

// field is one request header field, both parts pointing into the read buffer.
type field struct{ name, value []byte }

// request is a request header the lane takes, as parsed: slices point into
// the connection's read buffer and are valid until it is compacted.
type request struct {
	head   bool
	target []byte
	host   []byte
	close  bool
	fields []field // every field but Host, in order
	size   int     // bytes of the request line and header, final CRLF included
}

var crlf2 = []byte("\r\n\r\n")

// parseRequest parses the request at the start of b. It takes only what it
// can be sure net/http would parse to the same *http.Request and answer without
// reading a body: GET or HEAD, HTTP/1.1, an origin-form path of unreserved
// characters without a query, exactly one plain Host, CRLF line ends, valid
// field names and values, and none of the fields that change how a request is
// framed or answered (Content-Length, Transfer-Encoding, Expect, Upgrade,
// Range, If-*, a Connection other than keep-alive or close). Everything else,
// including a header longer than limit, is handed off; net/http then answers
// it (400, 431, 501 or the real thing) exactly as it does today.
func parseRequest(b []byte, limit int, req *request) verdict {
	end := bytes.Index(b, crlf2)
	if end < 0 {
		if len(b) >= limit || hasBareLF(b) {
			return verdictHandOff
		}
		return verdictMore
	}
	if end+4 > limit {
		return verdictHandOff
	}
	*req = request{fields: req.fields[:0], size: end + 4}
	head := b[:end+2] // every line with its CRLF

	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		req.head = true
		line = line[5:]
	default:
		return verdictHandOff
	}
	target, proto, ok := bytes.Cut(line, []byte(" "))
	if !ok || string(proto) != "HTTP/1.1" || !plainPath(target) {
		return verdictHandOff
	}
	req.target = target

	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !httpsyntax.Token(line[:colon]) {
			return verdictHandOff // also obs-fold: a line starting with SP or HTAB
		}
		name, value := line[:colon], httpsyntax.TrimOWS(line[colon+1:])
		if !httpsyntax.FieldValue(value) {
			return verdictHandOff
		}
		switch {
		case httpsyntax.EqualFold(name, "host"):
			if req.host != nil || !plainHost(value) {
				return verdictHandOff
			}
			req.host = value
			continue
		case httpsyntax.EqualFold(name, "connection"):
			if !connectionTokens(value, &req.close) {
				return verdictHandOff
			}
		case httpsyntax.EqualFold(name, "content-length"), httpsyntax.EqualFold(name, "transfer-encoding"),
			httpsyntax.EqualFold(name, "expect"), httpsyntax.EqualFold(name, "upgrade"), httpsyntax.EqualFold(name, "range"),
			len(name) > 3 && httpsyntax.EqualFold(name[:3], "if-"):
			return verdictHandOff
		}
		req.fields = append(req.fields, field{name, value})
	}
	if req.host == nil {
		return verdictHandOff
	}
	return verdictTake
}

// hasBareLF reports a LF not preceded by CR: net/http accepts such line ends,
// the lane does not, and waiting for a CRLFCRLF that never comes would stall.
func hasBareLF(b []byte) bool {
	for i := 0; ; {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			return false
		}
		if i+j == 0 || b[i+j-1] != '\r' {
			return true
		}
		i += j + 1
	}
}

// plainPath reports an origin-form path of unreserved characters and '/'. For
// it url.ParseRequestURI gives Path equal to the target and no RawPath or query.
func plainPath(p []byte) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for _, c := range p {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '/', c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// plainHost accepts a plain host[:port]: letters, digits, '.', '-', '_', ':' and
// IPv6 brackets, all of which net/http accepts too.
func plainHost(h []byte) bool {
	if len(h) == 0 {
		return false
	}
	for _, c := range h {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '-', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// connectionTokens accepts a Connection value of keep-alive and close tokens
// only (others name hop-by-hop fields or an upgrade: net/http's business) and
// notes close.
func connectionTokens(v []byte, close *bool) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		switch t = httpsyntax.TrimOWS(t); {
		case httpsyntax.EqualFold(t, "close"):
			*close = true
		case httpsyntax.EqualFold(t, "keep-alive"), len(t) == 0:
		default:
			return false
		}
	}
	return true
}
