package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// The hostile-HTTP suite runs the real binary with small HTTP bounds while a
// good ffmpeg publisher streams and a good viewer fetches the playlist and its
// newest segment throughout, throws hostile HTTP clients at it, and sends the
// framing attacks to nginx too, whose answers are the reference. The viewer
// must never see an error.

const (
	hostileHeaderTimeout = 2 * time.Second
	hostileIdleTimeout   = 2 * time.Second
	hostileWriteTimeout  = time.Second
	hostilePerIP         = 40
)

func TestHostileHTTP(t *testing.T) {
	src := clip(t, "av")
	args := []string{"-http-read-header-timeout", hostileHeaderTimeout.String(), "-http-idle-timeout", hostileIdleTimeout.String(),
		"-http-write-timeout", hostileWriteTimeout.String(), "-http-max-conns", "400", "-http-max-conns-per-ip", strconv.Itoa(hostilePerIP),
		"-window-segments", "10", "-linger", "5m"}
	g := startGateway(t, args...)
	lane := startGateway(t, append(args, "-http-fast-lane=true")...) // the same answers with the lane on
	startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
		"-i", src, "-c", "copy", "-f", "flv", g.ingestURL("good"))
	pl := waitPlaylist(t, g.tsPlaylistURL("good"), 10*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 2 })
	// An ended stream: its documents no longer change, so every request for
	// them must get the very same bytes.
	if err := publishFFmpeg(t, src, g.ingestURL("ended"), false).wait(t, 30*time.Second); err != nil {
		t.Fatalf("publish: %v", err)
	}
	waitPlaylist(t, g.tsPlaylistURL("ended"), 10*time.Second, ended)
	if err := publishFFmpeg(t, src, lane.ingestURL("ended"), false).wait(t, 30*time.Second); err != nil {
		t.Fatalf("publish: %v", err)
	}
	waitPlaylist(t, lane.tsPlaylistURL("ended"), 10*time.Second, ended)
	view := startViewer(g, "good")
	w := watchStream(g, "good")
	rss0 := rssBytes(t, g)
	segPath := "/live/good/ts/" + pl.segments[len(pl.segments)-1].uri

	nginxAddr := startNginxHTTP(t)

	t.Run("framing", func(t *testing.T) {
		for _, a := range hostileFraming("/live/ended/ts/index.m3u8") {
			t.Run(a.name, func(t *testing.T) {
				got, closed := rawExchange(t, g.httpAddr, a.raw, a.cut)
				ref, refClosed := rawExchange(t, nginxAddr, a.raw, a.cut)
				viaLane, laneClosed := rawExchange(t, lane.httpAddr, a.raw, a.cut)
				t.Logf("rtmpgate: %s; nginx: %s", summary(got, closed), summary(ref, refClosed))
				for _, c := range []struct {
					who    string
					out    string
					closed bool
				}{{"rtmpgate", got, closed}, {"nginx", ref, refClosed}, {"rtmpgate with the lane", viaLane, laneClosed}} {
					if strings.Contains(c.out, "404 Not Found") {
						t.Errorf("%s answered the smuggled request: %s", c.who, summary(c.out, c.closed))
					}
					if n := strings.Count(c.out, "HTTP/1.1 200 OK"); n > 1 && !strings.HasSuffix(c.out, "ok\n") {
						t.Errorf("%s: %d answers, the canary's not last", c.who, n)
					}
				}
				if a.status != "" && !strings.HasPrefix(got, a.status) {
					t.Errorf("rtmpgate answered %s, want %s", summary(got, closed), a.status)
				}
				if a.likeNginx {
					if firstLine(got) != firstLine(ref) || closed != refClosed || strings.Count(got, "HTTP/1.") != strings.Count(ref, "HTTP/1.") {
						t.Errorf("rtmpgate %s, nginx %s", summary(got, closed), summary(ref, refClosed))
					}
				}
				if !closed && a.status != "HTTP/1.1 200 OK" {
					t.Errorf("rtmpgate left the connection open after %s", summary(got, closed))
				}
				if firstLine(viaLane) != firstLine(got) || laneClosed != closed {
					t.Errorf("with the lane %s, without %s", summary(viaLane, laneClosed), summary(got, closed))
				}
			})
		}
	})

	t.Run("idle and slow clients", func(t *testing.T) {
		var wg sync.WaitGroup
		check := func(name string, limit time.Duration, f func(nc net.Conn)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				nc, err := net.Dial("tcp", g.httpAddr)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				defer nc.Close()
				start := time.Now()
				f(nc)
				d, err := serverClosed(nc, start, limit)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				t.Logf("%s: closed after %v (limit %v)", name, d.Round(10*time.Millisecond), limit)
			}()
		}
		check("silent", hostileHeaderTimeout+closeSlack, func(net.Conn) {})
		check("slow header", hostileHeaderTimeout+closeSlack, func(nc net.Conn) { trickle(nc, []byte("GET /healthz HTTP/1.1\r\nHost: a\r\n")) })
		check("idle after a request", 200*time.Millisecond+hostileIdleTimeout+closeSlack, func(nc net.Conn) {
			_, _ = io.WriteString(nc, "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
			time.Sleep(200 * time.Millisecond) // its answer, read with the close below
		})
		check("pipelining segment GETs, never reading", hostileWriteTimeout+2*closeSlack, func(nc net.Conn) {
			_ = nc.(*net.TCPConn).SetReadBuffer(4096)
			_, _ = io.WriteString(nc, strings.Repeat("GET "+segPath+" HTTP/1.1\r\nHost: a\r\n\r\n", 2000))
			time.Sleep(hostileWriteTimeout + closeSlack) // not reading; then the read below sees the close
		})
		wg.Wait()
	})

	t.Run("connection flood", func(t *testing.T) {
		const n = 300
		local := &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}
		conns := make([]net.Conn, 0, n)
		start := time.Now()
		for range n {
			nc, err := (&net.Dialer{LocalAddr: local, Timeout: time.Second}).Dial("tcp", g.httpAddr)
			if err != nil {
				continue // a refused SYN is a close too
			}
			conns = append(conns, nc)
		}
		// Publishers still connect while the flood holds its connections.
		if err := publishFFmpeg(t, src, g.ingestURL("during-flood"), false).wait(t, 30*time.Second); err != nil {
			t.Errorf("a publisher during the flood: %v", err)
		}
		var quick, held, open int
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, nc := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				d, err := serverClosed(nc, start, hostileHeaderTimeout+2*closeSlack)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					open++
				case d < hostileHeaderTimeout/2:
					quick++
				default:
					held++
				}
			}()
		}
		wg.Wait()
		t.Logf("%d flood connections: %d closed at accept, %d held to the header timeout, %d still open", n, quick, held, open)
		if open > 0 || held > hostilePerIP {
			t.Errorf("%d still open, %d held (per-IP cap %d)", open, held, hostilePerIP)
		}
		if c := strings.Count(g.logs.String(), "http connection refused"); c != 1 {
			t.Errorf("%d refusal log lines for one burst, want 1", c)
		}
		waitPlaylist(t, g.tsPlaylistURL("during-flood"), 10*time.Second, ended)
	})

	t.Run("documents do not vary by request", func(t *testing.T) {
		mpd := "/live/ended/index.mpd"
		_, before := opsScrape(t, g)
		var first string
		for i := range 200 {
			host := fmt.Sprintf("h%d-%d.evil.example", i, rand.Int())
			raw := "GET " + mpd + " HTTP/1.1\r\nHost: " + host + "\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: " + host + "\r\nConnection: close\r\n\r\n"
			if i%2 == 1 { // absolute form
				raw = "GET http://" + host + mpd + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
			}
			out, _ := rawExchange(t, g.httpAddr, raw, false)
			_, body, _ := strings.Cut(out, "\r\n\r\n")
			if !strings.HasPrefix(out, "HTTP/1.1 200 OK") || strings.Contains(body, "evil") {
				t.Fatalf("request %d: %s", i, out)
			}
			if first == "" {
				first = body
			} else if body != first {
				t.Fatalf("request %d with Host %s: a different MPD", i, host)
			}
		}
		_, after := opsScrape(t, g)
		renders := after["rtmpgate_http_document_renders_total"] - before["rtmpgate_http_document_renders_total"]
		t.Logf("200 MPD requests with made-up hosts: %v renderings in all meanwhile (the live stream's included)", renders)
		if renders > 40 {
			t.Errorf("%v documents rendered for 200 requests of one unchanging MPD", renders)
		}
		if !strings.Contains(first, `value="/time"`) {
			t.Errorf("UTCTiming not the path /time:\n%s", first)
		}
	})

	rss1 := rssBytes(t, g)
	t.Logf("gateway RSS %d MiB before the attacks, %d MiB after", rss0>>20, rss1>>20)
	if rss1 > rss0+64<<20 {
		t.Errorf("RSS grew by %d MiB", (rss1-rss0)>>20)
	}
	if errs := view.stop(); len(errs) > 0 {
		t.Errorf("the good viewer saw %d errors, first: %v", len(errs), errs[0])
	}
	checkWatch(t, w.stop())
}

type hostileAttack struct {
	name      string
	raw       string
	cut       bool   // the client half-closes after raw
	status    string // rtmpgate's first status line; "" for no answer
	likeNginx bool   // rtmpgate's answer is nginx's: status, number of answers, close
}

// hostileFraming is each framing attack on target, followed on the same
// connection by a smuggled request (for /smuggled, a 404 everywhere) and a
// canary (/healthz, which closes the connection after its answer).
func hostileFraming(target string) []hostileAttack {
	const (
		canary   = "GET /healthz HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
		smuggled = "GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
	)
	get := "GET " + target + " HTTP/1.1\r\nHost: a\r\n"
	bad := "HTTP/1.1 400 Bad Request"
	return []hostileAttack{
		{"content-length and transfer-encoding", get + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled + canary, false, bad, true},
		{"transfer-encoding on HTTP/1.0", "GET " + target + " HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled + canary, false, bad, true},
		{"folded transfer-encoding", get + "Transfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled + canary, false, bad, true},
		{"folded field", get + "X-A: b\r\n c\r\n\r\n" + canary, false, bad, true},
		{"garbage line", "hello\r\n\r\n" + canary, false, bad, true},
		{"body hiding a request", get + "Content-Length: " + strconv.Itoa(len(smuggled)) + "\r\n\r\n" + smuggled + canary, false, "HTTP/1.1 200 OK", false},
		{"chunked body hiding a request", get + "Transfer-Encoding: chunked\r\n\r\n" + strconv.FormatInt(int64(len(smuggled)), 16) + "\r\n" +
			smuggled + "\r\n0\r\n\r\n" + canary, false, "HTTP/1.1 200 OK", false},
		{"expect 100-continue, body unread", get + "Expect: 100-continue\r\nContent-Length: 10\r\n\r\n", false, "HTTP/1.1 200 OK", false},
		{"bare LF", "GET " + target + " HTTP/1.1\nHost: a\n\n" + canary, false, "HTTP/1.1 200 OK", true},
		{"header cut off", get + "X-Cut: abc", true, "", true},
	}
}

// rawExchange writes raw on a new connection (then half-closes when cut) and
// reads until the server closes or 3 s pass; it reports what came back and
// whether the server closed.
func rawExchange(t *testing.T, addr, raw string, cut bool) (string, bool) {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := io.WriteString(nc, raw); err != nil {
		t.Fatal(err)
	}
	if cut {
		_ = nc.(*net.TCPConn).CloseWrite()
	}
	_ = nc.SetReadDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(nc)
	return string(b), err == nil || strings.Contains(err.Error(), "reset")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\r\n")
	return l
}

var statusLineRe = regexp.MustCompile(`HTTP/1\.[01] (\d{3}[^\r]*)\r\n`)

// summary is a response sequence in one line: the status lines and whether
// the connection closed.
func summary(out string, closed bool) string {
	var st []string
	for _, m := range statusLineRe.FindAllStringSubmatch(out, -1) {
		st = append(st, m[1])
	}
	if len(st) == 0 {
		st = []string{"no answer"}
	}
	state := "kept open"
	if closed {
		state = "closed"
	}
	return "[" + strings.Join(st, ", ") + "] " + state
}

// startNginxHTTP runs nginx serving a directory that holds what the framing
// attacks ask for (the target and /healthz; /smuggled is missing), and returns
// its address.
func startNginxHTTP(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range map[string]string{"live/ended/ts/index.m3u8": "#EXTM3U\n", "healthz": "ok\n"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, p), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	port := freePort(t)
	runNginx(t, freePort(t), "", fmt.Sprintf(`http {
  access_log off;
  server { listen 127.0.0.1:%d; root %s; }
}`, port, root))
	addr := "127.0.0.1:" + strconv.Itoa(port)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatal("nginx's HTTP port does not accept")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// viewer plays a stream as a player would: the playlist, then its newest
// segment, every half second, on keep-alive connections.
type viewer struct {
	stopc chan struct{}
	done  chan struct{}
	errs  []error
}

func startViewer(g *gateway, key string) *viewer {
	v := &viewer{stopc: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 5 * time.Second}
	get := func(u string) ([]byte, error) {
		res, err := client.Get(u)
		if err != nil {
			return nil, err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != http.StatusOK {
			err = fmt.Errorf("GET %s: %s", u, res.Status)
		}
		return b, err
	}
	go func() {
		defer close(v.done)
		for range 1200 { // 10 minutes at most
			pl, err := get(g.tsPlaylistURL(key))
			if err == nil {
				lines := strings.Split(strings.TrimSpace(string(pl)), "\n")
				last := lines[len(lines)-1]
				var seg []byte
				if seg, err = get("http://" + g.httpAddr + "/live/" + key + "/ts/" + last); err == nil && (len(seg) == 0 || seg[0] != 0x47) {
					err = fmt.Errorf("segment %s is not MPEG-TS", last)
				}
			}
			if err != nil {
				v.errs = append(v.errs, err)
			}
			select {
			case <-v.stopc:
				return
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	return v
}

func (v *viewer) stop() []error {
	close(v.stopc)
	<-v.done
	return v.errs
}

// rssBytes is the gateway's resident set size.
func rssBytes(t *testing.T, g *gateway) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", g.cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if v, ok := bytes.CutPrefix(l, []byte("VmRSS:")); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(string(v)), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// TestHostileHTTPFloodLeavesRTMP runs the gateway with few descriptors (256)
// and floods its HTTP port from several addresses: http_max_conns is fitted
// under the limit beside max_conns, so the flood is closed at accept and a
// publisher still connects and publishes.
func TestHostileHTTPFloodLeavesRTMP(t *testing.T) {
	testkit.NeedTools(t, "prlimit")
	src := clip(t, "av")
	g := startGatewayUnder(t, []string{"prlimit", "--nofile=256:256"}, "-max-conns", "64", "-http-read-header-timeout", "10s")
	if !strings.Contains(g.logs.String(), "http_max_conns lowered") {
		t.Errorf("no log line lowering http_max_conns under 256 descriptors")
	}
	var conns []net.Conn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	defer closeAll()
	refused := 0
	for i := range 400 {
		local := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i%5))}
		nc, err := (&net.Dialer{LocalAddr: local, Timeout: time.Second}).Dial("tcp", g.httpAddr)
		if err != nil {
			refused++
			continue
		}
		conns = append(conns, nc)
	}
	if err := publishFFmpeg(t, src, g.ingestURL("flooded"), false).wait(t, 30*time.Second); err != nil {
		t.Fatalf("publish while the HTTP port is flooded: %v", err)
	}
	closeAll() // the HTTP port is full until then
	time.Sleep(200 * time.Millisecond)
	waitPlaylist(t, g.tsPlaylistURL("flooded"), 10*time.Second, ended)
	_, m := opsScrape(t, g)
	t.Logf("400 HTTP connections: %d refused at dial, %v closed at accept (max_conns), %v open", refused,
		m[`rtmpgate_http_connections_rejected_total{reason="max_conns"}`], m["rtmpgate_http_connections"])
	if m[`rtmpgate_http_connections_rejected_total{reason="max_conns"}`] < 200 {
		t.Errorf("the HTTP cap did not apply")
	}
}
