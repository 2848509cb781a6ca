package httpserve

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"testing"
)

// pieceReader returns b n bytes at a time, as a client trickling a request.
type pieceReader struct {
	b []byte
	n int
}

func (r *pieceReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), r.n)], r.b)
	r.b = r.b[k:]
	return k, nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += n
	return n, err
}

// runHeadCheck passes in through a headCheck, piece bytes at a time.
func runHeadCheck(in []byte, piece int) (out []byte, h *headCheck) {
	h = &headCheck{limit: 1024 + headSlack}
	src := &pieceReader{b: in, n: piece}
	buf := make([]byte, 512)
	for range 1 << 16 {
		n, err := h.read(src, buf)
		out = append(out, buf[:n]...)
		if err != nil {
			break
		}
	}
	return out, h
}

// FuzzHeadCheck is the differential test of the head check against
// net/http's parser: what the check passes is the input unchanged (or cut
// short, or a rejected head replaced by rejectedHead); every request net/http
// reads from it is one whole head as the check delimits it, judged by the
// check; a request that declares a body is the last one read.
func FuzzHeadCheck(f *testing.F) {
	for _, s := range []string{
		"GET /a/b/c HTTP/1.1\r\nHost: h\r\n\r\nGET /a/b/d HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
		"GET / HTTP/1.1\nHost: h\n\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 33\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 000\r\n\r\nGET /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
		"hello\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\nbody",
		"GET / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n",
		"POST /api/obs/client-configuration HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\n{}GET /x HTTP/1.1\r\nHost: h\r\n\r\n",
		"POST /api/obs/client-configuration HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\n\r\n{}",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}GET /x HTTP/1.1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999\r\n\r\n{}",
	} {
		f.Add([]byte(s), uint8(255))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, piece uint8) {
		out, h := runHeadCheck(in, int(piece)+1)
		passed := out
		if h.rejected != "" {
			if !bytes.HasSuffix(out, rejectedHead) {
				t.Fatalf("rejected (%s) without rejectedHead: %q", h.rejected, out)
			}
			passed = out[:len(out)-len(rejectedHead)]
		}
		if !bytes.HasPrefix(in, passed) {
			t.Fatalf("output is not the input cut short:\nin  %q\nout %q", in, out)
		}
		cr := &countingReader{r: bytes.NewReader(passed)}
		br := bufio.NewReader(cr)
		start := 0
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			end := cr.n - br.Buffered()
			head := passed[start:end]
			// net/http's head is exactly one of the check's: none ends before it,
			// one ends at its end.
			var c headCheck
			c.limit, c.first = 1<<30, true
			c.buf = append([]byte(nil), head[:len(head)-1]...)
			if c.scan(); c.ok != 0 || c.end {
				t.Fatalf("net/http read %q as one head; the check ended one at %d", head, c.ok)
			}
			verdict, reason, body := checkHead(head)
			if verdict == headReject {
				t.Fatalf("net/http read a head the check rejects (%s): %q", reason, head)
			}
			hasBody := req.ContentLength != 0 || len(req.TransferEncoding) > 0
			if hasBody && verdict != headLast && verdict != headBody {
				t.Fatalf("a head with a body (%d, %v) not the last: %q", req.ContentLength, req.TransferEncoding, head)
			}
			if verdict == headBody {
				// The body passed is net/http's body, nothing after it.
				if req.ContentLength != int64(body) || len(req.TransferEncoding) > 0 || req.Method != http.MethodPost {
					t.Fatalf("body of %d passed for a %s with Content-Length %d, %v: %q", body, req.Method, req.ContentLength, req.TransferEncoding, head)
				}
				if rest := len(passed) - end; rest > body || rest < body && len(in) > len(passed) {
					t.Fatalf("%d bytes passed after a head with a body of %d (input %d, passed %d): %q", rest, body, len(in), len(passed), head)
				}
				return
			}
			if verdict == headLast {
				if end != len(passed) {
					t.Fatalf("bytes passed after the last head %q: %q", head, passed[end:])
				}
				return
			}
			start = end
		}
	})
}
