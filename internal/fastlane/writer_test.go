package fastlane

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

// takeAll is a Handler whose every request the lane answers.
type takeAll struct{ http.HandlerFunc }

func (takeAll) LaneTakes(*http.Request) bool { return true }

// TestLaneWriterFramesAsNetHTTP runs handlers that use the ResponseWriter in
// every way net/http frames differently (no Content-Length, small and large
// bodies, Flush, sniffed types, statuses without a body, a short body, HEAD)
// through the lane's writer and through net/http, and wants the same header
// block (Date aside), the same body and the same keep-alive.
func TestLaneWriterFramesAsNetHTTP(t *testing.T) {
	text := strings.Repeat("0123456789", 300)
	handlers := map[string]http.HandlerFunc{
		"small": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello") },
		"html":  func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "<html><body>x</body></html>") },
		"typed": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "video/mp4")
			_, _ = io.WriteString(w, text[:100])
		},
		"big": func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, text) },
		"pieces": func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, text[:1500])
			_, _ = io.WriteString(w, text[:1500])
		},
		"flush": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "video/mp4")
			_, _ = io.WriteString(w, "first")
			w.(http.Flusher).Flush()
			_, _ = io.WriteString(w, "second")
		},
		"flush-empty": func(w http.ResponseWriter, _ *http.Request) { w.(http.Flusher).Flush() },
		"length": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "3000")
			_, _ = io.WriteString(w, text)
		},
		"length-untyped": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "5")
			_, _ = io.WriteString(w, "hello")
		},
		"short": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Length", "10")
			_, _ = io.WriteString(w, "hello")
		},
		"empty": func(http.ResponseWriter, *http.Request) {},
		"204": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(204)
		},
		"304": func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "a/b")
			w.WriteHeader(304)
		},
		"error":     func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "not found", 404) },
		"odd-code":  func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(599) },
		"own-date":  func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Date", "yesterday") },
		"own-close": func(w http.ResponseWriter, _ *http.Request) { w.Header().Set("Connection", "close") },
		"multi": func(w http.ResponseWriter, _ *http.Request) {
			w.Header()["X-Z"] = []string{"1", "2"}
			w.Header()["X-A"] = []string{"line\r\nbreak"}
			w.WriteHeader(201)
		},
	}
	dispatch := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handlers[strings.TrimPrefix(r.URL.Path, "/t/x/")](w, r)
	})

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: takeAll{dispatch}} // every request taken, run by the lane
	lane := New(ln, hs, zerolog.Nop())
	go func() { _ = hs.Serve(lane) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		_ = lane.Shutdown(ctx)
	}()
	pln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	plain := &http.Server{Handler: dispatch}
	go func() { _ = plain.Serve(pln) }()
	defer plain.Close()

	for name := range handlers {
		for _, method := range []string{"GET", "HEAD"} {
			raw := fmt.Sprintf("%s /t/x/%s HTTP/1.1\r\nHost: a\r\n\r\n", method, name)
			wantHead, wantBody, wantClosed := roundTrip(t, pln.Addr().String(), raw, method)
			served, _ := lane.Served()
			gotHead, gotBody, gotClosed := roundTrip(t, ln.Addr().String(), raw, method)
			if n, _ := lane.Served(); n != served+1 {
				t.Fatalf("%s %s: the lane did not answer it", method, name)
			}
			if gotHead != wantHead || gotBody != wantBody || gotClosed != wantClosed {
				t.Errorf("%s %s:\nlane     %q %q closed %v\nnet/http %q %q closed %v", method, name,
					gotHead, gotBody, gotClosed, wantHead, wantBody, wantClosed)
			}
		}
	}
}

var dateField = regexp.MustCompile(`\r\nDate: [^\r]*`)

// roundTrip sends raw and returns the response's header block (Date blanked
// unless the handler set it), its decoded body, and whether the server closed
// the connection after it.
func roundTrip(t *testing.T, addr, raw, method string) (head, body string, closed bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &got))
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	b, err := io.ReadAll(res.Body)
	if err != nil && err != io.ErrUnexpectedEOF { // a short body ends so
		t.Fatalf("%q: body: %v", raw, err)
	}
	head, _, _ = strings.Cut(got.String(), "\r\n\r\n")
	if !strings.Contains(head, "Date: yesterday") {
		head = dateField.ReplaceAllString(head, "\r\nDate: X")
	}
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = br.ReadByte()
	return head, string(b), err == io.EOF
}
