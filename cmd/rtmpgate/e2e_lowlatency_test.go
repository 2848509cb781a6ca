package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// latencySample is one second of a player's state as web/test/play.mjs reports
// it, with both latency figures web/player.js gives.
type latencySample struct {
	T             int      `json:"t"`
	CurrentTime   float64  `json:"currentTime"`
	DecodedFrames int      `json:"decodedFrames"`
	Paused        bool     `json:"paused"`
	Latency       *float64 `json:"latency"`     // hls.latency, dash.js getCurrentLiveLatency()
	WallLatency   *float64 `json:"wallLatency"` // wall clock minus the playing frame's program date time
	Waiting       int      `json:"waiting"`     // the video element's waiting events so far (ran dry)
	Seeks         int      `json:"seeks"`       // its seeks so far (the player's jumps to the live edge)
	Errors        []string `json:"errors"`
	PageError     string   `json:"pageerror"`
}

// playForLatency plays pageURL in headless Chromium for seconds and returns the
// samples.
func playForLatency(t *testing.T, pageURL string, seconds int) []latencySample {
	t.Helper()
	webDir := requireWeb(t)
	p := startProcess(t, "node", filepath.Join(webDir, "test", "play.mjs"), pageURL, strconv.Itoa(seconds))
	if err := p.wait(t, time.Duration(seconds+40)*time.Second); err != nil {
		t.Fatalf("play.mjs: %v\n%s", err, p.output)
	}
	if dir := os.Getenv("RTMPGATE_LATENCY_TRACE"); dir != "" {
		name := regexp.MustCompile(`[^A-Za-z0-9.]+`).ReplaceAllString(t.Name(), "_") + ".jsonl"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(p.output.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	var out []latencySample
	sc := bufio.NewScanner(strings.NewReader(p.output.String()))
	sc.Buffer(make([]byte, 64<<10), 4<<20) // PLAY_TRACE lines list every request of a second
	for sc.Scan() {
		var s latencySample
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			if s.PageError != "" {
				t.Errorf("page error: %s", s.PageError)
				continue
			}
			out = append(out, s)
		}
	}
	return out
}

// latencyFigures summarizes the latency once playback settled (after warmup
// seconds): median, max, and stalls (seconds in which playback did not advance).
type latencyFigures struct {
	samples          int
	median, p95, max float64
	wallMedian       float64 // NaN-free: 0 when the player gave none
	stalls           int
	waiting, seeks   int     // video element events after warmup
	advanced         float64 // seconds of media played after warmup
}

func (f latencyFigures) String() string {
	return fmt.Sprintf("latency median %.2f s, p95 %.2f s, max %.2f s; wall-clock median %.2f s; %d stalls, %d waiting, %d seeks; %.1f s played in %d s",
		f.median, f.p95, f.max, f.wallMedian, f.stalls, f.waiting, f.seeks, f.advanced, f.samples)
}

func summarize(t *testing.T, stats []latencySample, warmup int) latencyFigures {
	t.Helper()
	var series []string
	for _, s := range stats {
		if s.Latency != nil {
			series = append(series, strconv.FormatFloat(*s.Latency, 'f', 2, 64))
		}
	}
	t.Logf("latency each second: %s", strings.Join(series, " "))
	var (
		lat, wall []float64
		f         latencyFigures
		prev      *latencySample
		first     float64
	)
	for i := range stats {
		s := &stats[i]
		if len(s.Errors) > 0 {
			t.Errorf("t=%d player errors: %v", s.T, s.Errors)
		}
		if s.T <= warmup {
			prev = s
			continue
		}
		if f.samples == 0 {
			first = s.CurrentTime
		}
		f.samples++
		if s.Latency != nil && *s.Latency > 0 {
			lat = append(lat, *s.Latency)
		}
		if s.WallLatency != nil && *s.WallLatency > 0 {
			wall = append(wall, *s.WallLatency)
		}
		if prev != nil && s.CurrentTime <= prev.CurrentTime+0.1 {
			f.stalls++
		}
		if prev != nil {
			f.waiting += max(s.Waiting-prev.Waiting, 0)
			f.seeks += max(s.Seeks-prev.Seeks, 0)
		}
		f.advanced = s.CurrentTime - first
		prev = s
	}
	sort.Float64s(lat)
	sort.Float64s(wall)
	if len(lat) > 0 {
		f.median, f.p95, f.max = lat[len(lat)/2], lat[len(lat)*95/100], lat[len(lat)-1]
	}
	if len(wall) > 0 {
		f.wallMedian = wall[len(wall)/2]
	}
	return f
}

// loopPublish publishes the 8 s A/V clip (2 s GOP) in a loop in real time.
func loopPublish(t *testing.T, url string) *publisher {
	t.Helper()
	return startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
		"-i", clip(t, "av"), "-c", "copy", "-f", "flv", url)
}

// TestLowLatencyPlayers plays a live ffmpeg -re publish in hls.js and dash.js in
// low-latency mode and asserts a generous latency bound; the figures go to the
// log (docs/BENCHMARKS.md has the 60 s runs). It also reports the part publish
// delay from /metrics.
func TestLowLatencyPlayers(t *testing.T) {
	g := startGateway(t)
	loopPublish(t, g.ingestURL("ll"))
	waitPlaylist(t, g.streamURL("ll", "v/index.m3u8"), 10*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 2 })
	seconds := 20
	for _, tc := range []struct{ name, engine, path string }{
		{"hls.js", "hls", "index.m3u8"},
		{"dash.js", "dash", "index.mpd"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stats := playForLatency(t, "http://"+g.httpAddr+"/play.html?lowLatency=1&engine="+tc.engine+"&src=/live/ll/"+tc.path, seconds)
			f := summarize(t, stats, 6)
			t.Logf("%s low latency: %v", tc.name, f)
			if f.samples < seconds-8 || f.advanced < float64(f.samples)-3 {
				t.Fatalf("playback did not keep up: %v", f)
			}
			if f.median <= 0 || f.median > 3 {
				t.Fatalf("%s latency %v, want under 3 s", tc.name, f)
			}
		})
	}
	_, body := httpGet(t, "http://"+g.httpAddr+"/metrics")
	sum := metricValue(string(body), "rtmpgate_part_publish_delay_seconds_sum")
	count := metricValue(string(body), "rtmpgate_part_publish_delay_seconds_count")
	maxDelay := metricValue(string(body), "rtmpgate_part_publish_delay_max_seconds")
	if count < 100 {
		t.Fatalf("%v parts published", count)
	}
	t.Logf("part publish delay (last frame in to part fetchable): mean %.1f ms over %v parts, max %.1f ms", 1000*sum/count, count, 1000*maxDelay)
}

func metricValue(body, name string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestLatencyBenchmark measures, for docs/BENCHMARKS.md, 60 s of playback each:
// hls.js and dash.js in low-latency mode, hls.js on rtmpgate's classic fMP4 and
// TS playlists, and hls.js on nginx-rtmp's HLS (hls_fragment 2s,
// hls_playlist_length 6s, on tmpfs). It runs only with RTMPGATE_LATENCY_BENCH=1.
// RTMPGATE_LATENCY_TRACE=DIR keeps, per case, play.mjs's per-second trace
// (player state, events, every request's timing) and the gateway's access log.
func TestLatencyBenchmark(t *testing.T) {
	if os.Getenv("RTMPGATE_LATENCY_BENCH") != "1" {
		t.Skip("set RTMPGATE_LATENCY_BENCH=1 to run the latency benchmark")
	}
	seconds := 60
	if s, err := strconv.Atoi(os.Getenv("RTMPGATE_LATENCY_SECONDS")); err == nil && s > 10 {
		seconds = s
	}
	testkit.NeedTools(t, "nginx")
	traceDir := os.Getenv("RTMPGATE_LATENCY_TRACE")
	if traceDir != "" {
		t.Setenv("PLAY_TRACE", "1")
	}
	g := startGateway(t)
	if traceDir != "" {
		t.Cleanup(func() { _ = os.WriteFile(filepath.Join(traceDir, "gateway.log"), []byte(g.logs.String()), 0o644) })
	}
	loopPublish(t, g.ingestURL("bench"))
	httpPort := startNginxHLS(t)
	loopPublish(t, fmt.Sprintf("rtmp://127.0.0.1:%d/live/bench", httpPort-1))
	waitPlaylist(t, g.streamURL("bench", "v/index.m3u8"), 10*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 3 })
	nginxPL := fmt.Sprintf("http://127.0.0.1:%d/hls/bench.m3u8", httpPort)
	waitPlaylist(t, nginxPL, 20*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 3 })
	for _, tc := range []struct{ name, query string }{
		{"rtmpgate LL-HLS, hls.js lowLatencyMode", "lowLatency=1&engine=hls&src=/live/bench/index.m3u8"},
		{"rtmpgate LL-DASH, dash.js lowLatencyEnabled", "lowLatency=1&engine=dash&src=/live/bench/index.mpd"},
		{"rtmpgate classic fMP4 HLS, hls.js", "engine=hls&src=/live/bench/index.m3u8"},
		{"rtmpgate classic TS HLS, hls.js", "engine=hls&src=/live/bench/ts/index.m3u8"},
		{"nginx-rtmp HLS, hls.js", "engine=hls&src=" + nginxPL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stats := playForLatency(t, "http://"+g.httpAddr+"/play.html?"+tc.query, seconds+8)
			t.Logf("BENCH %s: %v", tc.name, summarize(t, stats, 8))
		})
	}
}

// startNginxHLS runs nginx-rtmp with HLS on (2 s fragments, 6 s playlist, on
// tmpfs) and its http block serving them with CORS; it returns the HTTP port,
// the RTMP port being the one below it.
func startNginxHLS(t *testing.T) int {
	t.Helper()
	dir, err := os.MkdirTemp("/dev/shm", "rtmpgate-nginx-hls-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	var rtmpPort, httpPort int
	for i := 0; i < 20; i++ {
		httpPort = freePort(t)
		rtmpPort = httpPort - 1
		if c, err := (&netDialer).Dial("tcp", fmt.Sprintf("127.0.0.1:%d", rtmpPort)); err == nil {
			c.Close()
			continue
		}
		break
	}
	runNginx(t, rtmpPort, fmt.Sprintf(`      hls on;
      hls_path %s;
      hls_fragment 2s;
      hls_playlist_length 6s;`, dir), fmt.Sprintf(`http {
  access_log off;
  types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
  server {
    listen 127.0.0.1:%d;
    location /hls/ {
      alias %s/;
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }
  }
}
`, httpPort, dir))
	return httpPort
}
