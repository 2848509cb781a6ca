package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// stockCase is one stock player on one output, embedded as web/test/stock.mjs
// says: the player's own defaults, or its documented low-latency mode.
type stockCase struct {
	Name   string `json:"name"`
	Engine string `json:"engine"` // hls (hls.js), dash (dash.js), shaka (Shaka Player)
	Mode   string `json:"mode"`   // default or lowLatency
	Src    string `json:"src"`
	// Settings, for experiments only, replace the mode's configuration.
	Settings map[string]any `json:"settings,omitempty"`
}

// stockSample is one second of one page as stock.mjs reports it.
type stockSample struct {
	Name           string   `json:"name"`
	T              int      `json:"t"`
	Wall           float64  `json:"wall"`
	CurrentTime    float64  `json:"currentTime"`
	DecodedFrames  int      `json:"decodedFrames"`
	Width          int      `json:"width"`
	Height         int      `json:"height"`
	Latency        *float64 `json:"latency"`
	WallLatency    *float64 `json:"wallLatency"`
	Stalls         int      `json:"stalls"`
	StalledMs      int      `json:"stalledMs"`
	LongestStallMs int      `json:"longestStallMs"`
	Errors         []string `json:"errors"`
	Buffered       string   `json:"buffered"`
	Notes          []string `json:"notes"`
	PageError      string   `json:"pageerror"`
}

// playStock plays every case at once, each in its own page of one headless
// Chromium, for seconds, and returns each case's samples by name.
func playStock(t *testing.T, origin string, seconds int, cases []stockCase) map[string][]stockSample {
	t.Helper()
	webDir := requireWeb(t)
	js, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	p := startProcess(t, "node", filepath.Join(webDir, "test", "stock.mjs"), origin, strconv.Itoa(seconds), string(js))
	if err := p.wait(t, time.Duration(seconds+60)*time.Second); err != nil {
		t.Fatalf("stock.mjs: %v\n%s", err, tail(p.output.String(), 20))
	}
	if dir := os.Getenv("RTMPGATE_LATENCY_TRACE"); dir != "" {
		name := strings.ReplaceAll(t.Name(), "/", "_") + ".jsonl"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(p.output.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
	out := map[string][]stockSample{}
	sc := bufio.NewScanner(strings.NewReader(p.output.String()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var s stockSample
		if json.Unmarshal(sc.Bytes(), &s) != nil {
			continue
		}
		if s.PageError != "" {
			t.Errorf("%s: page error: %s", s.Name, s.PageError)
			continue
		}
		out[s.Name] = append(out[s.Name], s)
	}
	return out
}

// stockFigures is what one page did over its judged window.
type stockFigures struct {
	startAfter              float64 // s from page load to the first advancing sample
	window, advanced        float64 // wall seconds judged, media seconds played in them
	stalls                  int     // stalls of 250 ms or more in the window
	stalledMs, longestMs    int
	latMean, latP95, latMax float64 // wall-clock latency (behind the frame's arrival), s
	edgeMean                float64 // the player's own latency figure, s
	width, height, decoded  int
	errors                  []string
}

func (f stockFigures) String() string {
	return fmt.Sprintf("started after %.1f s; %.1f s of media in %.1f s (%.2fx); %d stalls (%d ms, longest %d ms); latency behind ingest mean %.2f s, p95 %.2f s, max %.2f s; player's own latency mean %.2f s; %d frames at %dx%d",
		f.startAfter, f.advanced, f.window, f.advanced/max(f.window, 0.001), f.stalls, f.stalledMs, f.longestMs, f.latMean, f.latP95, f.latMax, f.edgeMean, f.decoded, f.width, f.height)
}

// stockSettle is how long after it starts playing a player is left to settle
// before it is judged: hls.js starts at the beginning of what it buffered and
// then seeks to its live position, a jump of up to a segment.
const stockSettle = 2

// judgeStock takes the window of window seconds that begins stockSettle
// samples after the first at which the page has played, or its last window
// seconds if that runs past the end, and sums it up. ok is false when the
// player never played.
func judgeStock(samples []stockSample, window float64) (f stockFigures, ok bool) {
	start := -1
	for i := 1; i < len(samples); i++ {
		if samples[i].CurrentTime > samples[i-1].CurrentTime && samples[i-1].CurrentTime > 0 {
			start = min(i-1+stockSettle, len(samples)-1)
			break
		}
	}
	for _, s := range samples {
		f.errors = append(f.errors, s.Errors...)
	}
	if start < 0 {
		return f, false
	}
	end := len(samples) - 1
	for end > start && samples[end].Wall-samples[start].Wall > window {
		end--
	}
	for start > 0 && samples[end].Wall-samples[start-1].Wall <= window {
		start--
	}
	a, b := samples[start], samples[end]
	f.startAfter = a.Wall
	f.window, f.advanced = b.Wall-a.Wall, b.CurrentTime-a.CurrentTime
	f.stalls, f.stalledMs = b.Stalls-a.Stalls, b.StalledMs-a.StalledMs
	f.width, f.height, f.decoded = b.Width, b.Height, b.DecodedFrames-a.DecodedFrames
	var lat []float64
	var edge float64
	var edges int
	for _, s := range samples[start : end+1] {
		f.longestMs = max(f.longestMs, s.LongestStallMs)
		if s.WallLatency != nil {
			lat = append(lat, *s.WallLatency)
		}
		if s.Latency != nil {
			edge += *s.Latency
			edges++
		}
	}
	sort.Float64s(lat)
	if n := len(lat); n > 0 {
		for _, l := range lat {
			f.latMean += l / float64(n)
		}
		f.latP95, f.latMax = lat[(n*95+99)/100-1], lat[n-1]
	}
	if edges > 0 {
		f.edgeMean = edge / float64(edges)
	}
	return f, true
}

// Bounds of TestStockPlayers. Real time: over the window the media must
// advance at least 0.9x the wall clock, which leaves 2 s in 20 s for startup
// jitter and the odd wait at a part. One stall must not pass 2 s, a segment's
// worth: a player that waits longer than a whole segment has lost its place in
// the stream (the loader stopped, or it jumped), not waited on the next part.
const (
	stockWindow      = 20.0
	stockMinRate     = 0.9
	stockMaxStallMs  = 2000
	stockSeconds     = 34 // per batch: up to 12 s to start and settle, then the window
	stockJoinSegment = 2  // the players join once this many segments are listed: 4 s in
)

// stockMaxStall is the longest stall case c may show, ms. Shaka 5.2.12 on the
// fMP4 LL-HLS playlist at its defaults once stalled 3.2 s in four CI runs
// (2026-12-07, not traced yet; docs/PLAYBACK.md lists its known LL-HLS bug):
// it is held to a segment and a half until that is understood, every other
// case to one segment.
func stockMaxStall(c stockCase) int {
	src := "/" + strings.TrimPrefix(c.Src, "/")
	if c.Engine == "shaka" && strings.HasSuffix(src, "/index.m3u8") && !strings.HasSuffix(src, "/ts/index.m3u8") {
		return 3500
	}
	return stockMaxStallMs
}

// TestStockPlayers plays every output in every stock player the page ships,
// hls.js 1.7.4, dash.js 5.2.1 and Shaka Player 5.2.12, each with its defaults
// as a site that embeds it plainly would, and in its documented low-latency
// mode: hls.js on the fMP4 LL-HLS and the TS playlists, dash.js on the MPD,
// Shaka on all three. ffmpeg publishes the 30 fps H.264 clip with B-frames and
// AAC in real time; each batch of players joins its own stream 4 s in (pages of
// one Chromium, a batch at a time to bound the CPU) and must play at real time
// without a long stall or an error. Latencies go to the log.
func TestStockPlayers(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "bframes")
	batches := []struct {
		name string
		outs map[string][]string // engine -> outputs
	}{
		{"hls.js", map[string][]string{"hls": {"index.m3u8", "ts/index.m3u8"}}},
		{"dash", map[string][]string{"dash": {"index.mpd"}, "shaka": {"index.mpd"}}},
		{"shaka-hls", map[string][]string{"shaka": {"index.m3u8", "ts/index.m3u8"}}},
	}
	for bi, b := range batches {
		t.Run(b.name, func(t *testing.T) {
			var cases []stockCase
			for _, engine := range []string{"hls", "dash", "shaka"} {
				for _, out := range b.outs[engine] {
					for _, mode := range []string{"default", "lowLatency"} {
						cases = append(cases, stockCase{Name: engine + " " + out + " " + mode, Engine: engine, Mode: mode, Src: out})
					}
				}
			}
			// A case that fails is played once more, with its whole batch on a
			// fresh stream: a stock player's rare stall of its own (hls.js has
			// stopped loading parts for seconds with no error while its twin
			// page on the same stream went on) is logged with its trace, and
			// what fails twice fails the test.
			failed := map[string][]string{}
			for attempt := 1; attempt <= 2; attempt++ {
				got := playStockBatch(t, g, fmt.Sprintf("stock%d-%d", bi, attempt), src, cases)
				for _, c := range cases {
					if attempt == 2 && failed[c.Name] == nil {
						continue
					}
					f, problems := judgeStockCase(c, got[c.Name])
					if len(problems) == 0 {
						t.Logf("%s (attempt %d): %v", c.Name, attempt, f)
						delete(failed, c.Name)
						continue
					}
					t.Logf("%s (attempt %d) failed: %v: %s\n%s", c.Name, attempt, f, strings.Join(problems, "; "), stockTrace(got[c.Name]))
					failed[c.Name] = problems
				}
				if len(failed) == 0 {
					break
				}
			}
			for _, c := range cases {
				t.Run(strings.NewReplacer(" ", "_", "/", "_").Replace(c.Name), func(t *testing.T) {
					for _, p := range failed[c.Name] {
						t.Error(p)
					}
				})
			}
		})
	}
}

// playStockBatch publishes the B-frame clip in real time on key and, once
// stockJoinSegment segments are listed, plays cases (their Src relative to
// the stream) in stock.mjs; the publisher stops when the batch is done.
func playStockBatch(t *testing.T, g *gateway, key, src string, cases []stockCase) map[string][]stockSample {
	t.Helper()
	pub := startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
		"-i", src, "-c", "copy", "-f", "flv", g.ingestURL(key))
	defer func() {
		_ = pub.cmd.Process.Kill()
		<-pub.done
	}()
	waitPlaylist(t, g.streamURL(key, "v/index.m3u8"), 15*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= stockJoinSegment })
	abs := make([]stockCase, len(cases))
	for i, c := range cases {
		c.Src = "/live/" + key + "/" + c.Src
		abs[i] = c
	}
	return playStock(t, "http://"+g.httpAddr, stockSeconds, abs)
}

// judgeStockCase holds one case's samples to TestStockPlayers' bounds and
// returns what it missed.
func judgeStockCase(c stockCase, samples []stockSample) (stockFigures, []string) {
	f, ok := judgeStock(samples, stockWindow)
	var problems []string
	if len(f.errors) > 0 {
		problems = append(problems, fmt.Sprintf("player errors: %q", f.errors))
	}
	if !ok {
		return f, append(problems, fmt.Sprintf("never played: %+v", samples))
	}
	if f.window < stockWindow-3 {
		problems = append(problems, fmt.Sprintf("judged only %.1f s of playback", f.window))
	}
	if f.advanced < stockMinRate*f.window {
		problems = append(problems, fmt.Sprintf("played %.1f s of media in %.1f s of wall time, want at least %.0f%%", f.advanced, f.window, 100*stockMinRate))
	}
	if maxStall := stockMaxStall(c); f.longestMs > maxStall {
		problems = append(problems, fmt.Sprintf("a stall of %d ms, want none over %d ms", f.longestMs, maxStall))
	}
	// 30 fps: at least 25 frames a second of media played, or the picture froze.
	if f.width != 640 || f.height != 360 || f.decoded < int(f.advanced*25) {
		problems = append(problems, fmt.Sprintf("decoded %d frames at %dx%d for %.1f s of media", f.decoded, f.width, f.height, f.advanced))
	}
	return f, problems
}

// stockTrace is a failed case's samples, a line a second (play position,
// buffered ranges, stall time so far), and the player's last events.
func stockTrace(samples []stockSample) string {
	var b strings.Builder
	for _, s := range samples {
		fmt.Fprintf(&b, "  t=%d pos=%.2f buffered=[%s] stalled=%d ms\n", s.T, s.CurrentTime, s.Buffered, s.StalledMs)
	}
	if n := len(samples); n > 0 {
		fmt.Fprintf(&b, "  last events: %s", strings.Join(samples[n-1].Notes, " | "))
	}
	return b.String()
}

// TestStockLatencyBenchmark measures, for docs/BENCHMARKS.md, stock players in
// their documented low-latency modes beside the page's own player, one page at
// a time for RTMPGATE_LATENCY_SECONDS (60) each after 8 s of warm-up, on one
// real-time ffmpeg publish of the 30 fps B-frame clip with AAC. It runs only with
// RTMPGATE_LATENCY_BENCH=1; RTMPGATE_LATENCY_TRACE=DIR keeps each run's samples.
func TestStockLatencyBenchmark(t *testing.T) {
	if os.Getenv("RTMPGATE_LATENCY_BENCH") != "1" {
		t.Skip("set RTMPGATE_LATENCY_BENCH=1 to run the latency benchmark")
	}
	seconds := 60
	if s, err := strconv.Atoi(os.Getenv("RTMPGATE_LATENCY_SECONDS")); err == nil && s > 10 {
		seconds = s
	}
	const warmup = 8
	g := startGateway(t)
	startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
		"-i", clip(t, "bframes"), "-c", "copy", "-f", "flv", g.ingestURL("bench"))
	waitPlaylist(t, g.streamURL("bench", "v/index.m3u8"), 15*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 3 })
	for _, c := range []stockCase{
		{Name: "hls.js lowLatencyMode, LL-HLS", Engine: "hls", Mode: "lowLatency", Src: "/live/bench/index.m3u8"},
		{Name: "dash.js liveCatchup, LL-DASH", Engine: "dash", Mode: "lowLatency", Src: "/live/bench/index.mpd"},
		{Name: "Shaka lowLatencyMode, LL-HLS", Engine: "shaka", Mode: "lowLatency", Src: "/live/bench/index.m3u8"},
	} {
		t.Run(c.Name, func(t *testing.T) {
			got := playStock(t, "http://"+g.httpAddr, seconds+warmup, []stockCase{c})[c.Name]
			if len(got) <= warmup {
				t.Fatalf("%d samples", len(got))
			}
			f, _ := judgeStock(got[warmup-1:], float64(seconds))
			t.Logf("BENCH %s: %v", c.Name, f)
		})
	}
	for _, c := range []struct{ name, query string }{
		{"page player, hls.js, LL-HLS", "lowLatency=1&engine=hls&src=/live/bench/index.m3u8"},
		{"page player, dash.js, LL-DASH", "lowLatency=1&engine=dash&src=/live/bench/index.mpd"},
	} {
		t.Run(c.name, func(t *testing.T) {
			stats := playForLatency(t, "http://"+g.httpAddr+"/play.html?"+c.query, seconds+warmup)
			f := summarize(t, stats, warmup)
			var wall []float64
			for _, s := range stats[min(warmup, len(stats)):] {
				if s.WallLatency != nil {
					wall = append(wall, *s.WallLatency)
				}
			}
			sort.Float64s(wall)
			mean := 0.0
			for _, w := range wall {
				mean += w / float64(len(wall))
			}
			p95 := 0.0
			if n := len(wall); n > 0 {
				p95 = wall[(n*95+99)/100-1]
			}
			t.Logf("BENCH %s: %v; latency behind ingest mean %.2f s, p95 %.2f s", c.name, f, mean, p95)
		})
	}
}

// TestDashJSOtherOrigins plays dash.js 5.2.1 and Shaka on live DASH from two
// other origins, nginx-rtmp's dash module (2 s fragments, 10 s playlist) and
// ffmpeg's dash muxer (2 s segments, SegmentTimeline, served by nginx), with the
// players' defaults and with settings a site may add, to tell the player's own
// trouble from an MPD's; docs/BENCHMARKS.md has the figures. It runs only with
// RTMPGATE_LATENCY_BENCH=1.
func TestDashJSOtherOrigins(t *testing.T) {
	if os.Getenv("RTMPGATE_LATENCY_BENCH") != "1" {
		t.Skip("set RTMPGATE_LATENCY_BENCH=1 to run it")
	}
	testkit.NeedTools(t, "nginx")
	webDir := requireWeb(t)
	seconds := 40
	if s, err := strconv.Atoi(os.Getenv("RTMPGATE_LATENCY_SECONDS")); err == nil && s > 10 {
		seconds = s
	}
	dir, err := os.MkdirTemp("/dev/shm", "rtmpgate-dash-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	for _, d := range []string{"dash", "ff"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	httpPort := freePort(t)
	rtmpPort := freePort(t)
	runNginx(t, rtmpPort, fmt.Sprintf(`      dash on;
      dash_path %s/dash;
      dash_fragment 2s;
      dash_playlist_length 10s;`, dir), fmt.Sprintf(`http {
  access_log off;
  types { application/dash+xml mpd; video/mp4 m4v mp4; audio/mp4 m4a; video/iso.segment m4s; text/javascript js; }
  server {
    listen 127.0.0.1:%d;
    location / {
      root %s;
      add_header Cache-Control no-cache;
    }
    location /vendor/ {
      alias %s/vendor/;
    }
  }
}
`, httpPort, dir, webDir))
	src := clip(t, "bframes")
	startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
		"-i", src, "-c", "copy", "-f", "flv", fmt.Sprintf("rtmp://127.0.0.1:%d/live/bench", rtmpPort))
	startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "-1",
		"-i", src, "-c", "copy", "-f", "dash", "-seg_duration", "2", "-window_size", "5", "-extra_window_size", "5",
		"-use_template", "1", "-use_timeline", "1", filepath.Join(dir, "ff", "live.mpd"))
	// nginx is the pages' origin too (it serves web/vendor): no cross-origin requests.
	origin := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	for _, mpd := range []string{"/dash/bench.mpd", "/ff/live.mpd"} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			if code, _ := httpGet(t, origin+mpd); code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never appeared", mpd)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(4 * time.Second) // join a few segments in, as the stock test does
	var cases []stockCase
	for _, o := range []struct{ name, mpd string }{{"nginx-rtmp", "/dash/bench.mpd"}, {"ffmpeg dash", "/ff/live.mpd"}} {
		for _, e := range []struct{ engine, mode string }{{"dash", "default"}, {"dash", "lowLatency"}, {"shaka", "default"}} {
			cases = append(cases, stockCase{Name: o.name + " " + e.engine + " " + e.mode, Engine: e.engine, Mode: e.mode, Src: o.mpd})
		}
	}
	got := playStock(t, origin, seconds, cases)
	for _, c := range cases {
		f, _ := judgeStock(got[c.Name], float64(seconds-10))
		t.Logf("OTHER %s: %v; errors %q", c.Name, f, f.errors)
	}
}
