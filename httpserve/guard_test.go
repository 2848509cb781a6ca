package httpserve_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/fastlane"
	"github.com/rtmpgate/rtmpgate/internal/test"
)

// startGuarded serves handler through a Guard, with or without the fast lane
// behind it, as cmd/rtmpgate does.
func startGuarded(t *testing.T, handler http.Handler, gc httpserve.GuardConfig, lane bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: handler, MaxHeaderBytes: 4096, ReadHeaderTimeout: 2 * time.Second, IdleTimeout: 2 * time.Second}
	gc.MaxHeaderBytes = hs.MaxHeaderBytes
	g := httpserve.NewGuard(ln, handler, gc)
	var l net.Listener = g
	var ln2 *fastlane.Lane
	if lane {
		ln2 = fastlane.New(g, hs, zerolog.Nop())
		l = ln2
	}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
		if ln2 != nil {
			_ = ln2.Shutdown(ctx)
		}
		<-served
	})
	return ln.Addr().String()
}

// rawAll writes raw (then half-closes when cut) and reads until the server
// closes or limit passes; it reports the bytes (Date values blanked) and
// whether the server closed.
func rawAll(t *testing.T, addr, raw string, cut bool, limit time.Duration) (string, bool) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	if cut {
		_ = c.(*net.TCPConn).CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(limit))
	b, err := io.ReadAll(c)
	closed := err == nil || strings.Contains(err.Error(), "reset")
	return test.BlankDates(string(b)), closed
}

// The hostile requests of the framing checks, each followed on the same
// connection by a canary: the canary must get its own answer or none (the
// connection closed), never the smuggled request's (/smuggled, a 404).
const (
	canary   = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
	smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	target   = "GET /live/demo/index.m3u8 HTTP/1.1\r\nHost: a\r\n"
)

var framingAttacks = []struct {
	name   string
	raw    string
	cut    bool
	status string // the first (only) response's status line; "" for none
}{
	{"content-length and transfer-encoding", target + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\n" + smuggled + canary, false, "HTTP/1.1 400 Bad Request"},
	{"transfer-encoding on HTTP/1.0", "GET /live/demo/index.m3u8 HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" +
		"0\r\n\r\n" + smuggled + canary, false, "HTTP/1.1 400 Bad Request"},
	{"folded transfer-encoding", target + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled + canary,
		false, "HTTP/1.1 400 Bad Request"},
	{"folded other field", target + "X-A: b\r\n c\r\n\r\n" + canary, false, "HTTP/1.1 400 Bad Request"},
	{"body hiding a request", target + "Content-Length: " + strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled + canary,
		false, "HTTP/1.1 200 OK"},
	{"chunked body hiding a request", target + "Transfer-Encoding: chunked\r\n\r\n" +
		strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n" + smuggled + "\r\n0\r\n\r\n" + canary, false, "HTTP/1.1 200 OK"},
	{"expect 100-continue, body unread", target + "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n", false, "HTTP/1.1 200 OK"},
	{"garbage line", "hello\r\n\r\n" + canary, false, "HTTP/1.1 400 Bad Request"},
	{"header cut off", target + "X-Cut: abc", true, ""},
}

// TestGuardFraming: each attack gets nginx's answer (400 and a close for
// ambiguous framing; the answer and a close for a body), the same through
// the fast lane as through net/http alone.
func TestGuardFraming(t *testing.T) {
	hub := newDemoHub(t, true, 0)
	plain := startGuarded(t, httpserve.New(hub, httpserve.Config{}), httpserve.GuardConfig{}, false)
	lane := startGuarded(t, httpserve.New(hub, httpserve.Config{}), httpserve.GuardConfig{}, true)
	for _, tc := range framingAttacks {
		t.Run(tc.name, func(t *testing.T) {
			got, closed := rawAll(t, plain, tc.raw, tc.cut, 3*time.Second)
			if !closed {
				t.Errorf("connection left open; got %q", got)
			}
			if tc.status == "" && got != "" {
				t.Errorf("answered %q", got)
			}
			if tc.status != "" && !strings.HasPrefix(got, tc.status+"\r\n") {
				t.Errorf("got %q, want %s", got, tc.status)
			}
			if n := strings.Count(got, "HTTP/1.1 "); tc.status != "" && n != 1 {
				t.Errorf("%d responses: %q", n, got)
			}
			if tc.status != "" && !strings.Contains(got, "Connection: close\r\n") {
				t.Errorf("no Connection: close: %q", got)
			}
			if strings.Contains(got, "100 Continue") {
				t.Errorf("100 Continue sent for a body never read")
			}
			viaLane, closed := rawAll(t, lane, tc.raw, tc.cut, 3*time.Second)
			if viaLane != got || !closed {
				t.Errorf("through the lane (closed %v):\n%q\nnet/http:\n%q", closed, viaLane, got)
			}
		})
	}
	t.Run("pipelined good requests", func(t *testing.T) {
		for _, addr := range []string{plain, lane} {
			got, _ := test.Exchange(t, addr, target+"\r\n"+canary, "GET", "GET")
			if strings.Count(got, "HTTP/1.1 200 OK") != 2 || !strings.HasSuffix(got, "ok\n") {
				t.Errorf("%q", got)
			}
		}
	})
}

// TestGuardCaps: connections over the caps are closed at accept; those
// within are served; a closed connection frees its place.
func TestGuardCaps(t *testing.T) {
	hub := newDemoHub(t, true, 0)
	addr := startGuarded(t, httpserve.New(hub, httpserve.Config{}), httpserve.GuardConfig{MaxConns: 3, MaxConnsPerIP: 2}, false)
	dial := func(local string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	refused := func(c net.Conn) bool {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		return err != nil && !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout")
	}
	a1, a2 := dial("127.0.0.1"), dial("127.0.0.1")
	if !refused(dial("127.0.0.1")) {
		t.Errorf("a third connection from one address was not closed (per-IP cap 2)")
	}
	b1 := dial("127.0.0.3")
	if !refused(dial("127.0.0.4")) {
		t.Errorf("a fourth connection was not closed (cap 3)")
	}
	for _, c := range []net.Conn{a1, a2, b1} {
		if refused(c) {
			t.Errorf("a connection within the caps was closed")
		}
	}
	a1.Close()
	time.Sleep(100 * time.Millisecond)
	got, _ := test.Exchange(t, addr, canary, "GET")
	if !strings.HasSuffix(got, "ok\n") {
		t.Errorf("after a close, a new connection: %q", got)
	}
	a2.Close()
	time.Sleep(100 * time.Millisecond)
	_, m := get(t, "http://"+addr+"/metrics", map[string]string{"Connection": "close"})
	for _, want := range []string{`rtmpgate_http_connections_rejected_total{reason="max_conns"} 1`,
		`rtmpgate_http_connections_rejected_total{reason="max_conns_per_ip"} 1`, "rtmpgate_http_connections 2"} { // b1 and the scrape
		if !strings.Contains(m, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestGuardWriteBound: a client that pipelines segment GETs and never reads is
// closed once a write makes no progress for WriteTimeout; a slow client that
// keeps reading gets the whole segment.
func TestGuardWriteBound(t *testing.T) {
	hub := newDemoHub(t, true, 20000) // segments of about 1 MB
	const wt = 300 * time.Millisecond
	for _, lane := range []bool{false, true} {
		addr := startGuarded(t, httpserve.New(hub, httpserve.Config{}), httpserve.GuardConfig{WriteTimeout: wt}, lane)
		f := demoFiles(t, &httptest.Server{URL: "http://" + addr})
		seg := strings.TrimPrefix(f.tsSegment, "http://"+addr)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		req := "GET " + seg + " HTTP/1.1\r\nHost: a\r\n\r\n"
		_, _ = io.WriteString(c, strings.Repeat(req, 50))
		deadline := time.Now().Add(5 * time.Second)
		for {
			_, m := get(t, "http://"+addr+"/metrics", map[string]string{"Connection": "close"})
			if strings.Contains(m, "\nrtmpgate_http_connections 1\n") { // the scrape's own
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("lane %v: the non-reading client still connected after 5 s", lane)
			}
			time.Sleep(200 * time.Millisecond)
		}
		c.Close()

		// 32 KiB every 50 ms: well over 64 KiB per write bound.
		c, err = net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, req)
		br := bufio.NewReaderSize(&slowReader{c}, 64<<10)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || n != res.ContentLength || n < 500000 {
			t.Errorf("lane %v: slow reader got %d of %d bytes: %v", lane, n, res.ContentLength, err)
		}
		c.Close()
	}
}

type slowReader struct{ c net.Conn }

func (r *slowReader) Read(p []byte) (int, error) {
	time.Sleep(50 * time.Millisecond)
	return r.c.Read(p[:min(len(p), 32<<10)])
}

// TestRangeCappedAndCoalesced: 1500 ranges get the whole segment (200), not a
// 1500-part response; overlapping ones are merged into one 206 part.
func TestRangeCappedAndCoalesced(t *testing.T) {
	srv := newServer(t, true)
	f := demoFiles(t, srv)
	_, whole := get(t, f.tsSegment, nil)
	many := "bytes=" + strings.TrimSuffix(strings.Repeat("0-0,", 1500), ",")
	res, body := get(t, f.tsSegment, map[string]string{"Range": many})
	if res.StatusCode != http.StatusOK || body != whole {
		t.Errorf("1500 ranges: status %d, %d bytes of %d", res.StatusCode, len(body), len(whole))
	}
	res, body = get(t, f.tsSegment, map[string]string{"Range": "bytes=0-99,50-149,100-199"})
	if res.StatusCode != http.StatusPartialContent || body != whole[:200] ||
		res.Header.Get("Content-Range") != "bytes 0-199/"+strconv.Itoa(len(whole)) {
		t.Errorf("overlapping ranges: status %d, Content-Range %q, %d bytes", res.StatusCode, res.Header.Get("Content-Range"), len(body))
	}
	res, body = get(t, f.tsSegment, map[string]string{"Range": "bytes=0-0,10-10"})
	if res.StatusCode != http.StatusPartialContent || !strings.HasPrefix(res.Header.Get("Content-Type"), "multipart/byteranges") ||
		strings.Count(body, "Content-Range") != 2 {
		t.Errorf("two ranges: status %d, %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
}
