package main

import (
	"encoding/binary"
	"errors"
	"io"
	"math"
	"math/rand"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// The attack tests run the real binary with short deadlines while a good ffmpeg
// publisher streams a looped clip in real time, throw hostile RTMP peers at it one
// subtest at a time, and then judge the good stream: its playlist kept advancing,
// its segments decode, /healthz answered 200 throughout, and a new publisher is
// still served.

const (
	attackHandshakeTimeout = 2 * time.Second
	attackReadTimeout      = 3 * time.Second
	closeSlack             = time.Second // a bad connection must be closed by its deadline plus this
)

func TestAttacksLeaveGoodStreamServed(t *testing.T) {
	src := clip(t, "av")
	g := startGateway(t, "-handshake-timeout", attackHandshakeTimeout.String(), "-read-timeout", attackReadTimeout.String(),
		"-window-segments", "10")
	good := startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
		"-i", src, "-c", "copy", "-f", "flv", g.ingestURL("good"))
	waitPlaylist(t, g.tsPlaylistURL("good"), 10*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	w := watchStream(g, "good")

	hsLimit := attackHandshakeTimeout + closeSlack
	readLimit := attackReadTimeout + closeSlack

	t.Run("garbage 4 KiB", func(t *testing.T) {
		// A valid C0 first, so the garbage goes through the handshake and into the
		// chunk stream parser rather than stopping at the version byte.
		b := make([]byte, 4096)
		rand.New(rand.NewSource(4)).Read(b)
		b[0] = 3
		nc := dialRTMP(t, g, nil)
		start := time.Now()
		_, _ = nc.Write(b)
		expectServerClose(t, nc, start, hsLimit)
		expectProtocolError(t, g, nc, "")
	})
	t.Run("wrong version byte", func(t *testing.T) {
		nc := dialRTMP(t, g, nil)
		start := time.Now()
		_, _ = nc.Write(append([]byte{6}, make([]byte, 1536)...))
		if d := expectServerClose(t, nc, start, hsLimit); d > closeSlack {
			t.Errorf("a wrong version byte took %v to refuse", d)
		}
		expectProtocolError(t, g, nc, "handshake")
	})
	t.Run("truncated handshake", func(t *testing.T) {
		nc := dialRTMP(t, g, nil)
		start := time.Now()
		_, _ = nc.Write(append([]byte{3}, make([]byte, 768)...))
		expectServerClose(t, nc, start, hsLimit)
		expectProtocolError(t, g, nc, "timeout")
	})
	t.Run("chunk size 0x7FFFFFFF then a 16 MiB header", func(t *testing.T) {
		nc := dialRTMP(t, g, nil)
		start := time.Now()
		rawHandshake(t, nc)
		var b []byte
		b = append(b, rawMessage(3, 20, 0, rawConnect("live"))...)
		b = append(b, rawMessage(2, 1, 0, []byte{0x7f, 0xff, 0xff, 0xff})...)
		b = append(b, rawHeader(6, 9, 1, 0xffffff)...)
		_, _ = nc.Write(b)
		expectServerClose(t, nc, start, readLimit)
		expectProtocolError(t, g, nc, "chunk")
	})
	t.Run("16 MiB declared video then silence", func(t *testing.T) {
		nc := dialRTMP(t, g, nil)
		start := time.Now()
		rawHandshake(t, nc)
		rawPublish(t, nc, "declared16")
		_, _ = nc.Write(append(rawHeader(6, 9, 1, 0xffffff), 0x17, 1))
		expectServerClose(t, nc, start, readLimit)
		expectProtocolError(t, g, nc, "chunk")
	})
	t.Run("8 MiB declared video, one chunk sent, then silence", func(t *testing.T) {
		// Under the message size limit: only the read deadline can end it.
		nc := dialRTMP(t, g, nil)
		rawHandshake(t, nc)
		rawPublish(t, nc, "declared8")
		start := time.Now()
		_, _ = nc.Write(append(rawHeader(6, 9, 1, 8<<20-1024), make([]byte, 128)...))
		d := expectServerClose(t, nc, start, readLimit)
		if d < attackReadTimeout-500*time.Millisecond {
			t.Errorf("closed after %v, before the read timeout: why?", d)
		}
		expectProtocolError(t, g, nc, "timeout")
	})
	t.Run("slowloris handshake", func(t *testing.T) {
		nc := dialRTMP(t, g, nil)
		start := time.Now()
		trickle(nc, append([]byte{3}, make([]byte, 1536)...))
		expectServerClose(t, nc, start, hsLimit)
		expectProtocolError(t, g, nc, "timeout")
	})
	t.Run("slowloris after handshake", func(t *testing.T) {
		nc := dialRTMP(t, g, nil)
		start := time.Now()
		rawHandshake(t, nc)
		trickle(nc, rawMessage(3, 20, 0, rawConnect("live")))
		// The setup deadline counts from accept: no publish within it, closed.
		expectServerClose(t, nc, start, hsLimit)
		expectProtocolError(t, g, nc, "timeout")
	})
	t.Run("publisher killed mid-GOP", func(t *testing.T) {
		victim := publishFFmpeg(t, src, g.ingestURL("victim"), true)
		waitPlaylist(t, g.tsPlaylistURL("victim"), 10*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
		time.Sleep(time.Second) // half a 2 s GOP
		if err := victim.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		pl := waitPlaylist(t, g.tsPlaylistURL("victim"), readLimit, ended)
		t.Logf("victim: ENDLIST %v after SIGKILL, %d segments", time.Since(killed).Round(time.Millisecond), len(pl.segments))
		// The partial segment it left is published and decodes from a keyframe.
		paths := fetchSegments(t, g.tsPlaylistURL("victim"), pl, t.TempDir())
		last := probe(t, paths[len(paths)-1], true)
		if len(last.video) == 0 || !last.video[0].key || last.videoFrames != len(last.video) {
			t.Errorf("victim's last segment: %d video packets (first key: %v), %d decode", len(last.video), len(last.video) > 0 && last.video[0].key, last.videoFrames)
		}
	})
	t.Run("flood of 500 stalled handshakes from 127.0.0.2", func(t *testing.T) {
		flood(t, g, 500, hsLimit)
	})

	t.Run("new publisher afterwards", func(t *testing.T) {
		pub := publishFFmpeg(t, src, g.ingestURL("after"), false)
		if err := pub.wait(t, 30*time.Second); err != nil {
			t.Fatalf("publisher after the attacks: %v\n%s", err, pub.output)
		}
		checkEndedStream(t, g, "after", probe(t, src, false))
	})

	samples := w.stop()
	checkWatch(t, samples)
	checkLiveSegments(t, g, "good")
	select {
	case <-good.done:
		t.Fatalf("the good publisher stopped during the attacks: %v\n%s", good.err, good.output)
	default:
	}
	if strings.Contains(g.logs.String(), "panic recovered") {
		t.Errorf("the gateway recovered a panic:\n%s", tail(g.logs.String(), 40))
	}
}

// dialRTMP connects to the gateway's RTMP port, from local when set.
func dialRTMP(t testing.TB, g *gateway, local net.IP) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	nc, err := d.Dial("tcp", g.rtmpAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// expectProtocolError waits briefly for the gateway's log line about nc's
// protocol error, of kind unless kind is empty, and logs it.
func expectProtocolError(t testing.TB, g *gateway, nc net.Conn, kind string) {
	t.Helper()
	remote := `"remote":"` + nc.LocalAddr().String() + `"`
	var line string
	for i := 0; i < 40 && line == ""; i++ {
		for _, l := range strings.Split(g.logs.String(), "\n") {
			if strings.Contains(l, remote) && strings.Contains(l, `"message":"protocol error"`) {
				line = l
			}
		}
		if line == "" {
			time.Sleep(50 * time.Millisecond)
		}
	}
	switch {
	case line == "":
		t.Errorf("no protocol error logged for %s", nc.LocalAddr())
	case kind != "" && !strings.Contains(line, `"kind":"`+kind+`"`):
		t.Errorf("want a %q protocol error, got: %s", kind, line)
	default:
		t.Log(line)
	}
}

// expectServerClose reads (and discards) until the server closes nc and returns
// how long after since that was; it fails the test if nc is still open at limit.
func expectServerClose(t testing.TB, nc net.Conn, since time.Time, limit time.Duration) time.Duration {
	t.Helper()
	d, err := serverClosed(nc, since, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("closed by the server after %v (limit %v)", d.Round(time.Millisecond), limit)
	return d
}

func serverClosed(nc net.Conn, since time.Time, limit time.Duration) (time.Duration, error) {
	if err := nc.SetReadDeadline(since.Add(limit)); err != nil {
		return 0, err
	}
	buf := make([]byte, 8192)
	for {
		_, err := nc.Read(buf)
		if err == nil {
			continue
		}
		d := time.Since(since)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return d, errors.New("connection still open at its deadline " + limit.String())
		}
		return d, nil // EOF or RST: closed
	}
}

// trickle writes b one byte a second, stopping when a write fails (the server
// closed) or after 10 bytes, well past every deadline under test.
func trickle(nc net.Conn, b []byte) {
	go func() {
		for i := 0; i < len(b) && i < 10; i++ {
			if _, err := nc.Write(b[i : i+1]); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()
}

// rawHandshake runs a simple RTMP handshake as a client.
func rawHandshake(t testing.TB, nc net.Conn) {
	t.Helper()
	c0c1 := make([]byte, 1+1536)
	c0c1[0] = 3
	if _, err := nc.Write(c0c1); err != nil {
		t.Fatal(err)
	}
	s := make([]byte, 1+2*1536)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadFull(nc, s); err != nil {
		t.Fatalf("read S0S1S2: %v", err)
	}
	nc.SetReadDeadline(time.Time{})
	if _, err := nc.Write(s[1 : 1+1536]); err != nil {
		t.Fatal(err)
	}
}

// rawPublish sends connect, createStream and publish and waits for the
// publish's onStatus (any: the attacks only need to be past it).
func rawPublish(t testing.TB, nc net.Conn, name string) {
	t.Helper()
	var b []byte
	b = append(b, rawMessage(3, 20, 0, rawConnect("live"))...)
	b = append(b, rawMessage(3, 20, 0, amfCommand("createStream", 2))...)
	b = append(b, rawMessage(8, 20, 1, append(amfCommand("publish", 3), amfString(name)...))...)
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
	// Replies are small: read until the publish's onStatus has been seen.
	var got []byte
	buf := make([]byte, 4096)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for !strings.Contains(string(got), "NetStream.Publish.") {
		n, err := nc.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("waiting for the publish reply: %v", err)
		}
		if len(got) > 1<<16 {
			t.Fatal("no publish reply in 64 KiB")
		}
	}
	nc.SetReadDeadline(time.Time{})
}

// rawHeader is a fmt 0 chunk header (one-byte chunk stream id) declaring a
// message of length bytes.
func rawHeader(csid, typ byte, streamID uint32, length int) []byte {
	h := []byte{csid & 0x3f, 0, 0, 0, byte(length >> 16), byte(length >> 8), byte(length), typ, 0, 0, 0, 0}
	binary.LittleEndian.PutUint32(h[8:], streamID)
	return h
}

// rawMessage chunks a whole message at the default chunk size of 128.
func rawMessage(csid, typ byte, streamID uint32, payload []byte) []byte {
	b := rawHeader(csid, typ, streamID, len(payload))
	for len(payload) > 128 {
		b = append(b, payload[:128]...)
		b = append(b, 0xc0|csid)
		payload = payload[128:]
	}
	return append(b, payload...)
}

func amfString(s string) []byte {
	return append([]byte{2, byte(len(s) >> 8), byte(len(s))}, s...)
}

func amfNumber(f float64) []byte {
	b := []byte{0, 0, 0, 0, 0, 0, 0, 0, 0}
	binary.BigEndian.PutUint64(b[1:], math.Float64bits(f))
	return b
}

// amfCommand is a command name, a transaction id and a null command object.
func amfCommand(name string, tx float64) []byte {
	b := append(amfString(name), amfNumber(tx)...)
	return append(b, 5)
}

func rawConnect(app string) []byte {
	b := append(amfString("connect"), amfNumber(1)...)
	b = append(b, 3)
	for _, kv := range [][2]string{{"app", app}, {"tcUrl", "rtmp://127.0.0.1/" + app}} {
		b = append(b, byte(len(kv[0])>>8), byte(len(kv[0])))
		b = append(b, kv[0]...)
		b = append(b, amfString(kv[1])...)
	}
	return append(b, 0, 0, 9)
}

// flood opens n connections from 127.0.0.2 that send C0 and stop. With the
// per-IP limit most are closed at accept; the rest by the handshake deadline.
// Every one must be closed within limit of its dial.
func flood(t *testing.T, g *gateway, n int, limit time.Duration) {
	local := net.ParseIP("127.0.0.2")
	type result struct {
		d   time.Duration
		err error
	}
	results := make(chan result, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 50) // dials in flight
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: local}}
			nc, err := d.Dial("tcp", g.rtmpAddr)
			<-sem
			if err != nil {
				results <- result{err: err}
				return
			}
			defer nc.Close()
			start := time.Now()
			_, _ = nc.Write([]byte{3})
			dur, err := serverClosed(nc, start, limit)
			results <- result{d: dur, err: err}
		}()
	}
	wg.Wait()
	close(results)
	var quick, held, failed int
	var slowest time.Duration
	for r := range results {
		switch {
		case r.err != nil:
			failed++
			if failed <= 3 {
				t.Errorf("flood connection: %v", r.err)
			}
		case r.d < attackHandshakeTimeout/2:
			quick++
		default:
			held++
		}
		slowest = max(slowest, r.d)
	}
	t.Logf("%d closed at once, %d held until the handshake deadline, %d failed; slowest close %v", quick, held, failed, slowest.Round(time.Millisecond))
	if failed > 0 {
		t.Fatalf("%d of %d flood connections not closed within %v", failed, n, limit)
	}
	if held > 32 {
		t.Errorf("%d connections from one IP outlived accept; the per-IP limit is 32", held)
	}
	logs := g.logs.String()
	var refusals int
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "connection refused") && strings.Contains(line, "127.0.0.2") {
			refusals++
		}
	}
	if refusals != 1 {
		t.Errorf("%d refusal log lines for 127.0.0.2, want exactly 1 (rate-limited)", refusals)
	}
}

// streamWatch polls a stream's playlist and /healthz in the background.
type streamWatch struct {
	stopc   chan struct{}
	done    chan struct{}
	samples []watchSample
}

type watchSample struct {
	at      time.Time
	last    int // media sequence number of the playlist's last segment
	endList bool
	health  int
	err     error
}

func watchStream(g *gateway, key string) *streamWatch {
	w := &streamWatch{stopc: make(chan struct{}), done: make(chan struct{})}
	client := &http.Client{Timeout: 2 * time.Second}
	get := func(u string) (int, string, error) {
		res, err := client.Get(u)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		return res.StatusCode, string(body), err
	}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < 2400; i++ { // 10 minutes at most
			s := watchSample{at: time.Now(), last: -1}
			s.health, _, s.err = get("http://" + g.httpAddr + "/healthz")
			if s.err == nil {
				code, body, err := get(g.tsPlaylistURL(key))
				s.err = err
				if err == nil && code == http.StatusOK {
					seq, segs := 0, 0
					for _, line := range strings.Split(body, "\n") {
						if v, ok := strings.CutPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"); ok {
							seq = atoiOr(v, 0)
						} else if line != "" && !strings.HasPrefix(line, "#") {
							segs++
						}
						if line == "#EXT-X-ENDLIST" {
							s.endList = true
						}
					}
					s.last = seq + segs - 1
				} else if err == nil {
					s.err = errors.New("playlist status " + http.StatusText(code))
				}
			}
			w.samples = append(w.samples, s)
			select {
			case <-w.stopc:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

func (w *streamWatch) stop() []watchSample {
	close(w.stopc)
	<-w.done
	return w.samples
}

func atoiOr(s string, def int) int {
	n := 0
	if s == "" {
		return def
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	return n
}

// checkWatch judges the samples: /healthz always 200, the playlist always there
// and live, its last segment number never going back and never stuck for longer
// than a few segment durations.
func checkWatch(t *testing.T, samples []watchSample) {
	t.Helper()
	if len(samples) < 10 {
		t.Fatalf("only %d samples", len(samples))
	}
	const maxStall = 7 * time.Second // 2 s segments; generous for a 2-core machine under a flood
	first, last := samples[0], samples[len(samples)-1]
	lastChange := first
	for i, s := range samples {
		if s.err != nil || s.health != http.StatusOK {
			t.Errorf("sample %d (%v in): healthz %d, err %v", i, s.at.Sub(first.at).Round(time.Millisecond), s.health, s.err)
			continue
		}
		if s.endList {
			t.Errorf("sample %d: the good stream's playlist ended", i)
		}
		if s.last < lastChange.last {
			t.Errorf("sample %d: last segment went back from %d to %d", i, lastChange.last, s.last)
		}
		if s.last > lastChange.last {
			lastChange = s
		} else if stall := s.at.Sub(lastChange.at); stall > maxStall {
			t.Errorf("sample %d: no new segment for %v (last %d)", i, stall.Round(time.Millisecond), s.last)
			lastChange = s // report each stall once
		}
	}
	span := last.at.Sub(first.at)
	want := int(span/(2*time.Second)) - 2
	if got := last.last - first.last; got < want {
		t.Errorf("%d new segments in %v, want at least %d", got, span.Round(time.Second), want)
	}
	t.Logf("good stream: segments %d→%d over %v, %d samples, /healthz 200 in all", first.last, last.last, span.Round(time.Second), len(samples))
}

// checkLiveSegments probes the newest segments of a live stream: each starts on
// a keyframe, every packet decodes, and the frame count fits EXTINF at 30 fps.
func checkLiveSegments(t *testing.T, g *gateway, key string) {
	t.Helper()
	code, body := httpGet(t, g.tsPlaylistURL(key))
	if code != http.StatusOK {
		t.Fatalf("playlist status %d", code)
	}
	pl := parseMediaPlaylist(t, string(body))
	if len(pl.segments) > 4 {
		pl.segments = pl.segments[len(pl.segments)-4:]
	}
	for i, p := range fetchSegments(t, g.tsPlaylistURL(key), pl, t.TempDir()) {
		m := probe(t, p, true)
		if len(m.video) == 0 || !m.video[0].key {
			t.Errorf("segment %s: %d video packets, does not start on a keyframe", pl.segments[i].uri, len(m.video))
			continue
		}
		if m.videoFrames != len(m.video) || m.audioFrames != len(m.audio) || len(m.audio) == 0 {
			t.Errorf("segment %s: video %d packets %d decoded, audio %d packets %d decoded", pl.segments[i].uri, len(m.video), m.videoFrames, len(m.audio), m.audioFrames)
		}
		if want := pl.segments[i].duration * 30; math.Abs(float64(len(m.video))-want) > 1.5 {
			t.Errorf("segment %s: %d video frames for EXTINF %.3f s at 30 fps", pl.segments[i].uri, len(m.video), pl.segments[i].duration)
		}
	}
}
