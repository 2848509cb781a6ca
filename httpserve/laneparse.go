package httpserve

import "bytes"

// laneVerdict is what the fast lane makes of the bytes buffered on a connection.
type laneVerdict int

const (
	laneMore    laneVerdict = iota // no complete request header yet
	laneTake                       // a request the lane answers
	laneHandOff                    // anything else: net/http answers it, from these bytes on
)

// laneField is one request header field, both parts pointing into the read buffer.
type laneField struct{ name, value []byte }

// laneRequest is a request header the lane takes, as parsed: slices point into
// the connection's read buffer and are valid until it is compacted.
type laneRequest struct {
	head   bool
	target []byte
	host   []byte
	close  bool
	fields []laneField // every field but Host, in order
	size   int         // bytes of the request line and header, final CRLF included
}

var crlf2 = []byte("\r\n\r\n")

// parseLaneRequest parses the request at the start of b. It takes only what it
// can be sure net/http would parse to the same *http.Request and answer without
// reading a body: GET or HEAD, HTTP/1.1, an origin-form path of unreserved
// characters without a query, exactly one plain Host, CRLF line ends, valid
// field names and values, and none of the fields that change how a request is
// framed or answered (Content-Length, Transfer-Encoding, Expect, Upgrade,
// Range, If-*, a Connection other than keep-alive or close). Everything else,
// including a header longer than limit, is handed off; net/http then answers
// it (400, 431, 501 or the real thing) exactly as it does today.
func parseLaneRequest(b []byte, limit int, req *laneRequest) laneVerdict {
	end := bytes.Index(b, crlf2)
	if end < 0 {
		if len(b) >= limit || hasBareLF(b) {
			return laneHandOff
		}
		return laneMore
	}
	if end+4 > limit {
		return laneHandOff
	}
	*req = laneRequest{fields: req.fields[:0], size: end + 4}
	head := b[:end+2] // every line with its CRLF

	line, rest, _ := bytes.Cut(head, []byte("\r\n"))
	switch {
	case bytes.HasPrefix(line, []byte("GET ")):
		line = line[4:]
	case bytes.HasPrefix(line, []byte("HEAD ")):
		req.head = true
		line = line[5:]
	default:
		return laneHandOff
	}
	target, proto, ok := bytes.Cut(line, []byte(" "))
	if !ok || string(proto) != "HTTP/1.1" || !lanePath(target) {
		return laneHandOff
	}
	req.target = target

	for len(rest) > 0 {
		line, rest, _ = bytes.Cut(rest, []byte("\r\n"))
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !token(line[:colon]) {
			return laneHandOff // also obs-fold: a line starting with SP or HTAB
		}
		name, value := line[:colon], trimOWS(line[colon+1:])
		if !fieldValue(value) {
			return laneHandOff
		}
		switch {
		case equalFold(name, "host"):
			if req.host != nil || !laneHost(value) {
				return laneHandOff
			}
			req.host = value
			continue
		case equalFold(name, "connection"):
			if !connectionTokens(value, &req.close) {
				return laneHandOff
			}
		case equalFold(name, "content-length"), equalFold(name, "transfer-encoding"),
			equalFold(name, "expect"), equalFold(name, "upgrade"), equalFold(name, "range"),
			len(name) > 3 && equalFold(name[:3], "if-"):
			return laneHandOff
		}
		req.fields = append(req.fields, laneField{name, value})
	}
	if req.host == nil {
		return laneHandOff
	}
	return laneTake
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

// lanePath reports an origin-form path of unreserved characters and '/'. For
// it url.ParseRequestURI gives Path equal to the target and no RawPath or query.
func lanePath(p []byte) bool {
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

// laneHost accepts a plain host[:port]: letters, digits, '.', '-', '_', ':' and
// IPv6 brackets, all of which net/http accepts too.
func laneHost(h []byte) bool {
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

// token reports an RFC 9110 token: what net/http accepts as a field name.
func token(b []byte) bool {
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '!', c == '#', c == '$', c == '%', c == '&', c == '\'', c == '*', c == '+',
			c == '-', c == '.', c == '^', c == '_', c == '`', c == '|', c == '~':
		default:
			return false
		}
	}
	return len(b) > 0
}

// fieldValue rejects what net/http rejects in a field value: control
// characters other than HTAB, and DEL.
func fieldValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// connectionTokens accepts a Connection value of keep-alive and close tokens
// only (others name hop-by-hop fields or an upgrade: net/http's business) and
// notes close.
func connectionTokens(v []byte, close *bool) bool {
	for len(v) > 0 {
		var t []byte
		t, v, _ = bytes.Cut(v, []byte(","))
		switch t = trimOWS(t); {
		case equalFold(t, "close"):
			*close = true
		case equalFold(t, "keep-alive"), len(t) == 0:
		default:
			return false
		}
	}
	return true
}

// equalFold compares b to the lower-case ASCII s, ignoring case.
func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c := b[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}
