package fastlane_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/fastlane"
	"github.com/rtmpgate/rtmpgate/internal/test"
	"github.com/rtmpgate/rtmpgate/packager"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// laneServer serves handler on a loopback listener through the fast lane, as
// cmd/rtmpgate does; hs sets the limits.
type laneServer struct {
	addr string
	lane *fastlane.Lane
	hs   *http.Server
}

func startLane(t *testing.T, handler http.Handler, hs *http.Server) *laneServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := handler.(fastlane.Handler); !ok {
		t.Fatalf("%T is not a fastlane.Handler: the lane would hand every connection off", handler)
	}
	hs.Handler = handler
	s := &laneServer{addr: ln.Addr().String(), hs: hs}
	s.lane = fastlane.New(ln, s.hs, zerolog.Nop())
	served := make(chan error, 1)
	go func() { served <- s.hs.Serve(s.lane) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.hs.Shutdown(ctx)
		if err := s.lane.Shutdown(ctx); err != nil {
			t.Errorf("lane shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve: %v", err)
		}
	})
	return s
}

// startPlain serves handler with net/http alone: the reference.
func startPlain(t *testing.T, handler http.Handler, hs *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs.Handler = handler
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

// TestLaneAnswersAsNetHTTP sends the same bytes to the gateway's handler
// served by net/http alone and through the lane, and wants the same bytes
// back: status, every header field in the same order, framing, body, and
// keep-alive (pipelined requests included; handed-off ones too, on the
// connection the lane gave to net/http with its bytes).
func TestLaneAnswersAsNetHTTP(t *testing.T) {
	hub := test.DemoHub(t, true, 0)
	lane := startLane(t, httpserve.New(hub, httpserve.Config{}), &http.Server{MaxHeaderBytes: 2048, ReadHeaderTimeout: 5 * time.Second})
	plain := startPlain(t, httpserve.New(hub, httpserve.Config{}), &http.Server{MaxHeaderBytes: 2048, ReadHeaderTimeout: 5 * time.Second})

	ts, _ := test.Exchange(t, plain, "GET /live/demo/ts/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	seg := regexp.MustCompile(`\n([^#\s][^\s]*\.ts)\s`).FindStringSubmatch(ts)
	cm, _ := test.Exchange(t, plain, "GET /live/demo/v/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	m4s := regexp.MustCompile(`\n([^#\s][^\s]*\.m4s)\s`).FindStringSubmatch(cm)
	initSeg := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(cm)
	if seg == nil || m4s == nil || initSeg == nil {
		t.Fatalf("no segments in\n%s\n%s", ts, cm)
	}
	get := func(path, extra string) string {
		return "GET /live/demo/" + path + " HTTP/1.1\r\nHost: gw.example:8080\r\n" + extra + "\r\n"
	}
	big := "X-Big: " + strings.Repeat("b", 7000) + "\r\n" // over MaxHeaderBytes + net/http's 4096 of slack
	for _, tc := range []struct {
		name    string
		raw     string
		methods []string
		taken   uint64 // requests the lane answers
		handed  uint64 // connections it hands to net/http
	}{
		{"multivariant", get("index.m3u8", ""), []string{"GET"}, 1, 0},
		{"media playlist gzip", get("v/index.m3u8", "Accept-Encoding: gzip, br\r\n"), []string{"GET"}, 1, 0},
		{"ts playlist", get("ts/index.m3u8", "User-Agent: x\r\nAccept: */*\r\n"), []string{"GET"}, 1, 0},
		{"mpd behind a proxy", get("index.mpd", "X-Forwarded-Proto: https\r\n"), []string{"GET"}, 1, 0},
		{"ts segment", get("ts/"+seg[1], ""), []string{"GET"}, 1, 0},
		{"cmaf segment", get("v/"+m4s[1], ""), []string{"GET"}, 1, 0},
		{"init segment", get("v/"+initSeg[1], ""), []string{"GET"}, 1, 0},
		{"head", "HEAD /live/demo/v/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n", []string{"HEAD"}, 1, 0},
		{"head segment", "HEAD /live/demo/ts/" + seg[1] + " HTTP/1.1\r\nHost: a\r\n\r\n", []string{"HEAD"}, 1, 0},
		{"no stream", "GET /live/nope/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"}, 1, 0},
		{"no stream head", "HEAD /live/nope/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n", []string{"HEAD"}, 1, 0},
		{"no file", get("v/nope.m4s", ""), []string{"GET"}, 1, 0},
		{"connection close", get("index.m3u8", "Connection: close\r\n"), []string{"GET"}, 1, 0},
		{"pipelined", get("index.m3u8", "") + "HEAD /live/demo/index.mpd HTTP/1.1\r\nHost: a\r\n\r\n" + get("ts/index.m3u8", "Connection: keep-alive, close\r\n"),
			[]string{"GET", "HEAD", "GET"}, 3, 0},
		{"post", "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", []string{"POST"}, 0, 1},
		{"readyz", "GET /readyz HTTP/1.1\r\nHost: a\r\n\r\n", []string{"GET"}, 0, 1},
		{"healthz then playlist", "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n" + get("index.m3u8", ""), []string{"GET", "GET"}, 0, 1},
		{"range", get("ts/"+seg[1], "Range: bytes=0-187\r\n"), []string{"GET"}, 0, 1},
		{"conditional", get("ts/"+seg[1], "If-None-Match: *\r\n"), []string{"GET"}, 0, 1},
		{"query", get("v/index.m3u8?_HLS_skip=YES", ""), []string{"GET"}, 0, 1},
		{"http/1.0", "GET /live/demo/index.m3u8 HTTP/1.0\r\n\r\n", []string{"GET"}, 0, 1},
		{"no host", "GET /live/demo/index.m3u8 HTTP/1.1\r\n\r\n", []string{"GET"}, 0, 1},
		{"bare LF", "GET /live/demo/index.m3u8 HTTP/1.1\nHost: a\n\n", []string{"GET"}, 0, 1},
		{"escaped path", get("ts%2Findex.m3u8", ""), []string{"GET"}, 0, 1},
		// Lane requests, then one it does not take mid-pipeline (a body
		// included): net/http answers it and closes, as no route takes a
		// body, so nothing after it is answered.
		// (POST to /healthz: chi's Allow for a stream path lists methods in
		// random order.)
		{"lane, post with body, lane path", get("index.m3u8", "") + get("v/index.m3u8", "") +
			"POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world" + get("ts/index.m3u8", ""),
			[]string{"GET", "GET", "POST"}, 2, 1},
		// A request after one with a body on a net/http connection.
		{"post with body, then lane path", "POST /healthz HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world" + get("ts/index.m3u8", ""),
			[]string{"POST"}, 0, 1},
		{"oversize header", get("index.m3u8", big), []string{"GET"}, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reqs, handed := lane.lane.Served()
			want, wantClosed := test.Exchange(t, plain, tc.raw, tc.methods...)
			got, gotClosed := test.Exchange(t, lane.addr, tc.raw, tc.methods...)
			if got != want {
				t.Errorf("lane answered\n%q\nnet/http\n%q", got, want)
			}
			if gotClosed != wantClosed {
				t.Errorf("connection closed: lane %v, net/http %v", gotClosed, wantClosed)
			}
			reqs2, handed2 := lane.lane.Served()
			if reqs2-reqs != tc.taken || handed2-handed != tc.handed {
				t.Errorf("lane answered %d and handed off %d, want %d and %d", reqs2-reqs, handed2-handed, tc.taken, tc.handed)
			}
		})
	}
	t.Run("api after a lane request", func(t *testing.T) {
		reqs, handed := lane.lane.Served()
		got, _ := test.Exchange(t, lane.addr, get("index.m3u8", "")+"GET /api/streams HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "GET")
		if _, api, _ := strings.Cut(got, "#EXT-X-STREAM-INF"); !strings.Contains(api, "HTTP/1.1 200 OK") ||
			!strings.Contains(api, "application/json") || !strings.Contains(api, `"name":"demo"`) {
			t.Fatalf("playlist then API answered %q", got)
		}
		if reqs2, handed2 := lane.lane.Served(); reqs2-reqs != 1 || handed2-handed != 1 {
			t.Fatalf("lane answered %d, handed off %d; want 1 and 1", reqs2-reqs, handed2-handed)
		}
	})
	t.Run("431", func(t *testing.T) {
		got, _ := test.Exchange(t, lane.addr, get("index.m3u8", big), "GET")
		if !strings.HasPrefix(got, "HTTP/1.1 431 ") {
			t.Fatalf("oversize header answered %q", got)
		}
	})
}

// TestLaneCounts wants the lane's requests in the access metrics as the fast
// path counts them under net/http.
func TestLaneCounts(t *testing.T) {
	hub := test.DemoHub(t, true, 0)
	lane := startLane(t, httpserve.New(hub, httpserve.Config{}), &http.Server{})
	raw := "GET /live/demo/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\nGET /live/demo/nope.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n"
	test.Exchange(t, lane.addr, raw, "GET", "GET")
	metrics, _ := test.Exchange(t, lane.addr, "GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "GET")
	for _, want := range []string{
		`rtmpgate_http_requests_total{code="200",route="/{app}/{stream}/*"} 1`,
		`rtmpgate_http_requests_total{code="404",route="/{app}/{stream}/*"} 1`,
		`rtmpgate_http_request_duration_seconds_count{route="/{app}/{stream}/*"} 2`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("no %s in\n%s", want, metrics)
		}
	}
}

// TestLaneKeepAlive: many requests on one connection, all answered by the
// lane, none handed off; HTTP/1.1 stays open.
func TestLaneKeepAlive(t *testing.T) {
	hub := test.DemoHub(t, true, 0)
	lane := startLane(t, httpserve.New(hub, httpserve.Config{}), &http.Server{})
	c, err := net.Dial("tcp", lane.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	for i := range 50 {
		fmt.Fprintf(c, "GET /live/demo/ts/index.m3u8 HTTP/1.1\r\nHost: a\r\nX-N: %d\r\n\r\n", i)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 || res.Close || !bytes.HasPrefix(body, []byte("#EXTM3U")) || int64(len(body)) != res.ContentLength {
			t.Fatalf("request %d: %d close %v, %d bytes of %d", i, res.StatusCode, res.Close, len(body), res.ContentLength)
		}
	}
	if reqs, handed := lane.lane.Served(); reqs != 50 || handed != 0 {
		t.Fatalf("lane answered %d, handed off %d", reqs, handed)
	}
}

// TestLaneSlowloris: a client that trickles its header is cut at the read
// header timeout (plus the second the lane's deadline may lag), and one
// that says nothing after a response at the idle timeout.
func TestLaneSlowloris(t *testing.T) {
	hub := test.DemoHub(t, true, 0)
	lane := startLane(t, httpserve.New(hub, httpserve.Config{}),
		&http.Server{ReadHeaderTimeout: 300 * time.Millisecond, IdleTimeout: 700 * time.Millisecond})
	closedAfter := func(c net.Conn, trickle bool) time.Duration {
		t.Helper()
		start := time.Now()
		one := make([]byte, 1)
		for time.Since(start) < 5*time.Second {
			if trickle {
				if _, err := c.Write([]byte("X")); err != nil {
					return time.Since(start)
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := c.Read(one); err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					return time.Since(start)
				}
			}
		}
		t.Fatal("connection still open after 5 s")
		return 0
	}
	c, err := net.Dial("tcp", lane.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /live/demo/index.m3u8 HTTP/1.1\r\nX-Slow: ")
	if d := closedAfter(c, true); d < 200*time.Millisecond || d > 1500*time.Millisecond {
		t.Errorf("trickling header cut after %v, want about 300 ms", d)
	}

	c2, err := net.Dial("tcp", lane.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	_, _ = io.WriteString(c2, "GET /live/demo/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(c2), nil)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("response %v", err)
	}
	if d := closedAfter(c2, false); d < 500*time.Millisecond || d > 2500*time.Millisecond {
		t.Errorf("idle connection closed after %v, want about 700 ms", d)
	}
	if _, handed := lane.lane.Served(); handed != 0 {
		t.Errorf("handed off %d", handed)
	}
}

// serveBigSegments serves a demo stream whose segments are megabytes (a client
// that does not read blocks the write) through a lane; served gets Serve's result.
func serveBigSegments(t *testing.T) (ln net.Listener, hs *http.Server, lane *fastlane.Lane, served chan error) {
	t.Helper()
	hub := test.DemoHub(t, true, 200_000)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs = &http.Server{Handler: httpserve.New(hub, httpserve.Config{})}
	lane = fastlane.New(ln, hs, zerolog.Nop())
	served = make(chan error, 1)
	go func() { served <- hs.Serve(lane) }()
	return ln, hs, lane, served
}

// pipelineSegmentGETs opens a connection (closed when the test ends) and sends
// n pipelined GETs of the demo stream's first TS segment without reading, then
// waits for the first response to fill the socket buffers.
func pipelineSegmentGETs(t *testing.T, addr string, n int) net.Conn {
	t.Helper()
	pl, _ := test.Exchange(t, addr, "GET /live/demo/ts/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	seg := regexp.MustCompile(`\n([^#\s][^\s]*\.ts)\s`).FindStringSubmatch(pl)
	if seg == nil {
		t.Fatalf("no TS segment in the playlist:\n%s", pl)
	}
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { busy.Close() })
	for range n {
		fmt.Fprintf(busy, "GET /live/demo/ts/%s HTTP/1.1\r\nHost: a\r\n\r\n", seg[1])
	}
	time.Sleep(200 * time.Millisecond)
	return busy
}

// TestLaneShutdown: Shutdown closes idle lane connections at once and waits
// for a busy one only as long as its context allows; no goroutine is left
// (TestMain's goleak).
func TestLaneShutdown(t *testing.T) {
	ln, hs, lane, served := serveBigSegments(t)

	idle, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	_, _ = io.WriteString(idle, "GET /live/demo/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if res, err := http.ReadResponse(ibr, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("idle connection's response: %v", err)
	} else {
		_, _ = io.Copy(io.Discard, res.Body)
	}

	pipelineSegmentGETs(t, ln.Addr().String(), 8) // never read: the lane blocks writing these

	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("http shutdown: %v", err)
	}
	_ = idle.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := ibr.ReadByte(); !errors.Is(err, io.EOF) {
		t.Errorf("idle lane connection after shutdown began: %v, want EOF", err)
	}
	if err := lane.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("lane shutdown with a stuck client: %v, want deadline exceeded", err)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("shutdown took %v with a 500 ms bound", d)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
}

// TestLaneLeavesWaitsToNetHTTP: a GET of the segment in production streams
// as it grows (chunked) and is net/http's, handed off with its bytes.
func TestLaneLeavesWaitsToNetHTTP(t *testing.T) {
	f := test.NewLive(t, packager.Config{})
	f.Feed(4300)
	lane := startLane(t, httpserve.New(f.Hub, httpserve.Config{}), &http.Server{})
	pl, _ := test.Exchange(t, lane.addr, "GET /live/ll/v/index.m3u8 HTTP/1.1\r\nHost: a\r\n\r\n", "GET")
	epoch, msn, _ := test.Hinted(t, pl)
	c, err := net.Dial("tcp", lane.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /live/ll/v/%s-%d.m4s HTTP/1.1\r\nHost: a\r\n\r\n", epoch, msn)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
		t.Fatalf("segment in production: %d %v", res.StatusCode, res.TransferEncoding)
	}
	if reqs, handed := lane.lane.Served(); reqs != 1 || handed != 1 {
		t.Fatalf("lane answered %d, handed off %d; want the playlist and one handoff", reqs, handed)
	}
	f.Feed(6300)
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkLaneKeepAlive is one keep-alive client asking for the TS playlist
// again and again, served by net/http alone and through the lane: the
// per-request cost of the HTTP/1.1 layer around the same handler (client
// included: a raw socket that reads the known response length).
func BenchmarkLaneKeepAlive(b *testing.B) {
	hub := test.DemoHub(b, true, 0)
	for _, v := range []struct {
		name          string
		lane, guarded bool
	}{{"net-http", false, false}, {"lane", true, false}, {"net-http-guarded", false, true}, {"lane-guarded", true, true}} {
		lane := v.lane
		b.Run(v.name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			hs := &http.Server{Handler: httpserve.New(hub, httpserve.Config{}), ReadHeaderTimeout: 10 * time.Second}
			var l net.Listener = ln
			if v.guarded {
				// As cmd/rtmpgate serves: caps, a write bound and the head check.
				l = httpserve.NewGuard(ln, hs.Handler, httpserve.GuardConfig{MaxConns: 8192, MaxConnsPerIP: 128, WriteTimeout: 10 * time.Second})
			}
			var fl *fastlane.Lane
			if lane {
				fl = fastlane.New(l, hs, zerolog.Nop())
				l = fl
			}
			go func() { _ = hs.Serve(l) }()
			defer func() {
				_ = hs.Close()
				if fl != nil {
					_ = fl.Shutdown(context.Background())
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			req := []byte("GET /live/demo/ts/index.m3u8 HTTP/1.1\r\nHost: bench\r\nUser-Agent: wrk\r\n\r\n")
			// The response's size on the wire, from a first exchange.
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 64<<10)
			n, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			for !bytes.Contains(buf[:n], []byte("#EXT-X-ENDLIST\n")) {
				m, err := c.Read(buf[n:])
				if err != nil {
					b.Fatal(err)
				}
				n += m
			}
			want := n // Date has a fixed width: every response is this long
			b.ReportAllocs()
			b.SetBytes(int64(want))
			b.ResetTimer()
			for range b.N {
				if _, err := c.Write(req); err != nil {
					b.Fatal(err)
				}
				for got := 0; got < want; {
					m, err := c.Read(buf[got:want])
					if err != nil {
						b.Fatal(err)
					}
					got += m
				}
			}
		})
	}
}

// TestLaneShutdownFinishesBusy: a connection busy with a response when
// shutdown begins finishes that response whole, then is closed without
// starting the requests pipelined behind it; Shutdown returns nil once it is.
func TestLaneShutdownFinishesBusy(t *testing.T) {
	ln, hs, lane, served := serveBigSegments(t)

	busy := pipelineSegmentGETs(t, ln.Addr().String(), 4)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		t.Fatalf("http shutdown: %v", err)
	}
	laneDone := make(chan error, 1)
	go func() { laneDone <- lane.Shutdown(ctx) }()
	_ = busy.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(busy)
	whole := 0
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Fatalf("after %d responses: %v", whole, err)
			}
			break
		}
		n, err := io.Copy(io.Discard, res.Body)
		if err != nil || n != res.ContentLength {
			t.Fatalf("response %d cut at %d of %d bytes: %v", whole+1, n, res.ContentLength, err)
		}
		whole++
	}
	if whole < 1 || whole >= 4 {
		t.Errorf("%d whole responses before the close, want the one in progress (and no more than were started)", whole)
	}
	if err := <-laneDone; err != nil {
		t.Errorf("lane shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Errorf("serve: %v", err)
	}
}
