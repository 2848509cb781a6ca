package main

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// The operator's and the CDN's view of a real publish: metrics linted by promtool
// while ffmpeg publishes, the stream API's values, and the headers on real files.

// opsClient sends exactly the headers a test sets: no automatic gzip.
var opsClient = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}

func opsGet(t *testing.T, u string, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	res, err := opsClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	return res, body
}

// opsScrape returns the exposition and its samples by series as written.
func opsScrape(t *testing.T, g *gateway) (string, map[string]float64) {
	t.Helper()
	res, body := opsGet(t, "http://"+g.httpAddr+"/metrics", nil)
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("bad sample %q", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad sample %q", line)
		}
		series[line[:i]] = v
	}
	return string(body), series
}

func opsPromtool(t *testing.T, exposition string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics on a live scrape: %v\n%s", err, out)
	}
}

type opsStream struct {
	State     string
	Segments  int
	Uptime    int64 `json:"uptime_seconds"`
	BitrateIn int64 `json:"bitrate_in"`
	FramesIn  int64 `json:"frames_in"`
	Viewers   int
	Tracks    []struct {
		Kind, Codecs            string
		Width, Height, Channels int
		SampleRate              int `json:"sample_rate"`
		FPS                     float64
	}
	Playback struct{ TS, HLS, DASH string }
}

func opsAPIStream(t *testing.T, g *gateway, key string) opsStream {
	t.Helper()
	res, body := opsGet(t, "http://"+g.httpAddr+"/api/streams/live/"+key, nil)
	if res.StatusCode != 200 {
		t.Fatalf("API: %d %s", res.StatusCode, body)
	}
	var s opsStream
	if err := json.Unmarshal(body, &s); err != nil {
		t.Fatalf("API: %v: %s", err, body)
	}
	return s
}

func TestHTTPOperatorSurface(t *testing.T) {
	testkit.NeedTools(t, "ffmpeg", "ffprobe", "promtool")
	g := startGateway(t, "-public-base-url", "https://cdn.example")
	base := "http://" + g.httpAddr
	if res, body := opsGet(t, base+"/readyz", nil); res.StatusCode != 200 {
		t.Fatalf("readyz with listeners up: %d %s", res.StatusCode, body)
	}
	p := publishFFmpeg(t, clip(t, "av"), g.ingestURL("ops"), true)
	waitPlaylist(t, g.tsPlaylistURL("ops"), 15*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })

	t.Run("metrics while publishing", func(t *testing.T) {
		exp1, s1 := opsScrape(t, g)
		opsPromtool(t, exp1)
		time.Sleep(time.Second)
		exp2, s2 := opsScrape(t, g)
		opsPromtool(t, exp2)
		const frames = "rtmpgate_rtmp_frames_received_total"
		if s1[frames] <= 0 || s2[frames] <= s1[frames] {
			t.Errorf("%s did not grow while publishing: %v then %v", frames, s1[frames], s2[frames])
		}
		// 30 fps video and ~47 AAC frames/s: about 77 frames in a second.
		if d := s2[frames] - s1[frames]; d < 30 || d > 200 {
			t.Errorf("%s grew by %v in one second of a realtime publish", frames, d)
		}
		if s2["rtmpgate_rtmp_bytes_received_total"] <= s1["rtmpgate_rtmp_bytes_received_total"] {
			t.Errorf("bytes received did not grow")
		}
		for name, want := range map[string]float64{
			"rtmpgate_publishers":                     1,
			"rtmpgate_rtmp_connections_active":        1,
			"rtmpgate_rtmp_connections_total":         1,
			`rtmpgate_streams{state="live"}`:          1,
			`rtmpgate_streams{state="ended"}`:         0,
			"rtmpgate_playlist_blocking_waits":        0,
			"rtmpgate_panics_recovered_total":         0,
			"rtmpgate_publish_refused_total":          0,
			"rtmpgate_rtmp_connections_refused_total": 0,
		} {
			if got, ok := s2[name]; !ok || got != want {
				t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
			}
		}
		if s2["rtmpgate_store_bytes"] <= 0 || s2[`rtmpgate_stream_bytes{app="live",stream="ops"}`] != s2["rtmpgate_store_bytes"] {
			t.Errorf("store bytes %v, stream bytes %v", s2["rtmpgate_store_bytes"], s2[`rtmpgate_stream_bytes{app="live",stream="ops"}`])
		}
		if s2[`rtmpgate_stream_segments{app="live",stream="ops"}`] < 1 || s2["go_goroutines"] < 5 {
			t.Errorf("segments %v, goroutines %v", s2[`rtmpgate_stream_segments{app="live",stream="ops"}`], s2["go_goroutines"])
		}
	})

	t.Run("API while publishing", func(t *testing.T) {
		s := opsAPIStream(t, g, "ops")
		if s.State != "live" || s.Segments < 1 {
			t.Errorf("state %q, %d segments", s.State, s.Segments)
		}
		if len(s.Tracks) != 2 {
			t.Fatalf("tracks %+v", s.Tracks)
		}
		v, a := s.Tracks[0], s.Tracks[1]
		if v.Kind != "video" || !strings.HasPrefix(v.Codecs, "avc1.4d") || v.Width != 640 || v.Height != 360 {
			t.Errorf("video track %+v (the clip is H.264 Main 640x360)", v)
		}
		if v.FPS < 29.5 || v.FPS > 30.5 {
			t.Errorf("video fps %v, the clip is 30 fps", v.FPS)
		}
		if s.FramesIn < 30 {
			t.Errorf("frames_in %d while publishing", s.FramesIn)
		}
		if a.Kind != "audio" || a.Codecs != "mp4a.40.2" || a.SampleRate != 48000 || a.Channels != 2 {
			t.Errorf("audio track %+v", a)
		}
		// The clip is 1 Mbit/s video and 128 kbit/s audio.
		if s.BitrateIn < 300_000 || s.BitrateIn > 5_000_000 {
			t.Errorf("bitrate_in %d", s.BitrateIn)
		}
		if s.Playback.TS != "/live/ops/ts/index.m3u8" || s.Playback.HLS != "/live/ops/index.m3u8" || s.Playback.DASH != "/live/ops/index.mpd" {
			t.Errorf("playback %+v", s.Playback)
		}
	})

	t.Run("CDN headers on real files", func(t *testing.T) {
		_, vpl := opsGet(t, base+"/live/ops/v/index.m3u8", nil)
		frag := regexp.MustCompile(`(?m)^(\S+\.m4s)$`).FindSubmatch(vpl)
		initSeg := regexp.MustCompile(`EXT-X-MAP:URI="([^"]+)"`).FindSubmatch(vpl)
		tsPl := waitPlaylist(t, g.tsPlaylistURL("ops"), 5*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
		if frag == nil || initSeg == nil {
			t.Fatalf("video playlist without fragments:\n%s", vpl)
		}
		for _, u := range []string{base + "/live/ops/ts/" + tsPl.segments[0].uri, base + "/live/ops/v/" + string(frag[1]), base + "/live/ops/v/" + string(initSeg[1])} {
			res, body := opsGet(t, u, map[string]string{"Accept-Encoding": "gzip", "Origin": "https://player.example"})
			h := res.Header
			if res.StatusCode != 200 || h.Get("Cache-Control") != "public, max-age=86400, immutable" || h.Get("ETag") == "" ||
				h.Get("Last-Modified") == "" || h.Get("Access-Control-Allow-Origin") != "*" || h.Get("Content-Encoding") != "" ||
				h.Get("Content-Length") != strconv.Itoa(len(body)) {
				t.Errorf("%s: %d %v", u, res.StatusCode, h)
				continue
			}
			if res, _ := opsGet(t, u, map[string]string{"If-None-Match": h.Get("ETag")}); res.StatusCode != 304 {
				t.Errorf("%s If-None-Match: %d", u, res.StatusCode)
			}
			if res, _ := opsGet(t, u, map[string]string{"If-Modified-Since": h.Get("Last-Modified")}); res.StatusCode != 304 {
				t.Errorf("%s If-Modified-Since: %d", u, res.StatusCode)
			}
			if res, part := opsGet(t, u, map[string]string{"Range": "bytes=8-15"}); res.StatusCode != 206 || string(part) != string(body[8:16]) {
				t.Errorf("%s Range: %d %d bytes", u, res.StatusCode, len(part))
			}
		}
		res, gz := opsGet(t, base+"/live/ops/index.mpd", map[string]string{"Accept-Encoding": "gzip", "Host": "evil.example", "X-Forwarded-Proto": "http"})
		if res.StatusCode != 200 || res.Header.Get("Content-Encoding") != "gzip" || res.Header.Get("Cache-Control") != "public, max-age=1" {
			t.Fatalf("MPD: %d %v", res.StatusCode, res.Header)
		}
		zr, err := gzip.NewReader(strings.NewReader(string(gz)))
		if err != nil {
			t.Fatal(err)
		}
		mpd, _ := io.ReadAll(zr)
		if !strings.Contains(string(mpd), `value="https://cdn.example/time"`) {
			t.Errorf("MPD UTCTiming not under public_base_url (whatever the request's Host and X-Forwarded-Proto):\n%s", mpd)
		}
		if s := opsAPIStream(t, g, "ops"); s.Viewers != 1 {
			t.Errorf("viewers %d after one client fetched segments", s.Viewers)
		}
	})

	if err := p.wait(t, 20*time.Second); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, p.output)
	}
	waitPlaylist(t, g.tsPlaylistURL("ops"), 10*time.Second, ended)

	t.Run("after the publish", func(t *testing.T) {
		if s := opsAPIStream(t, g, "ops"); s.State != "ended" || s.Uptime < 7 {
			t.Errorf("ended stream: state %q, uptime %d s", s.State, s.Uptime)
		}
		// The playlist ends at the publisher's deleteStream; its socket's end is
		// read on the next paced read (read_interval, 20 ms), so the connection
		// count may lag the playlist by that much.
		exp, s := opsScrape(t, g)
		for deadline := time.Now().Add(2 * time.Second); s["rtmpgate_rtmp_connections_active"] != 0 && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
			exp, s = opsScrape(t, g)
		}
		opsPromtool(t, exp)
		for name, want := range map[string]float64{
			"rtmpgate_publishers":              0,
			"rtmpgate_rtmp_connections_active": 0,
			`rtmpgate_streams{state="live"}`:   0,
			`rtmpgate_streams{state="ended"}`:  1,
		} {
			if s[name] != want {
				t.Errorf("%s = %v, want %v", name, s[name], want)
			}
		}
		// Every frame of the 8 s clip: 240 video frames and ~375 AAC frames.
		if f := s["rtmpgate_rtmp_frames_received_total"]; f < 600 || f > 640 {
			t.Errorf("frames received %v, want about 615", f)
		}
		if f, all := s[`rtmpgate_stream_frames_received_total{app="live",stream="ops"}`], s["rtmpgate_rtmp_frames_received_total"]; f != all {
			t.Errorf("the stream's frames received %v, the server's %v: one stream published", f, all)
		}
		if n := s[`rtmpgate_http_requests_total{code="200",route="/{app}/{stream}/*"}`]; n < 5 {
			t.Errorf("stream route requests %v", n)
		}
		// No api_token configured: the API is read-only.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodDelete, base+"/api/streams/live/ops", nil)
		req.Header.Set("Authorization", "Bearer anything-at-all-0123")
		res, err := opsClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden {
			t.Errorf("DELETE without api_token: %d, want 403", res.StatusCode)
		}
	})
}
