package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// playerStats is one second of a player's state as web/test/play.mjs reports it.
type playerStats struct {
	T             int      `json:"t"`
	CurrentTime   float64  `json:"currentTime"`
	DecodedFrames int      `json:"decodedFrames"`
	Width         int      `json:"width"`
	Height        int      `json:"height"`
	Latency       *float64 `json:"latency"`
	Errors        []string `json:"errors"`
	PageError     string   `json:"pageerror"`
}

// playInBrowser opens pageURL in headless Chromium (playwright-core, Debian's
// chromium) for the given seconds and returns the player's state once a second. A
// screenshot of the last moment goes to bin/test-artifacts/<test name>.png.
func playInBrowser(t *testing.T, pageURL string, seconds int) []playerStats {
	t.Helper()
	webDir := requireWeb(t)
	shot := filepath.Join(artifactsDir(t), strings.ReplaceAll(t.Name(), "/", "_")+".png")
	p := startProcess(t, "node", filepath.Join(webDir, "test", "play.mjs"), pageURL, strconv.Itoa(seconds), shot)
	if err := p.wait(t, time.Duration(seconds+40)*time.Second); err != nil {
		t.Fatalf("play.mjs: %v\n%s", err, p.output)
	}
	var out []playerStats
	sc := bufio.NewScanner(strings.NewReader(p.output.String()))
	for sc.Scan() {
		var s playerStats
		if json.Unmarshal(sc.Bytes(), &s) == nil {
			if s.PageError != "" {
				t.Errorf("page error: %s", s.PageError)
				continue
			}
			out = append(out, s)
		}
	}
	t.Logf("screenshot: %s", shot)
	return out
}

// requireWeb returns the web/ directory once the browser test tools are there:
// node, Debian's chromium, playwright-core and the player libraries (`make web`).
func requireWeb(t *testing.T) string {
	t.Helper()
	testkit.NeedTools(t, "node", "chromium")
	webDir, _ := filepath.Abs("../../web")
	for _, need := range []string{"node_modules/playwright-core", "vendor/hls.min.js", "vendor/dash.all.min.js", "vendor/shaka-player.compiled.js"} {
		if _, err := os.Stat(filepath.Join(webDir, need)); err != nil {
			testkit.Missing(t, "web/"+need+" (`make web` fetches it)", err)
		}
	}
	return webDir
}

// artifactsDir is where browser tests leave screenshots: bin/test-artifacts.
func artifactsDir(t testing.TB) string {
	dir, _ := filepath.Abs("../../bin/test-artifacts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// checkPlayback asserts that the player advanced at least minAdvance seconds of
// media, decoded frames at 640x360, and reported no fatal error.
func checkPlayback(t *testing.T, stats []playerStats, minAdvance float64) {
	t.Helper()
	if len(stats) == 0 {
		t.Fatal("the player reported nothing")
	}
	first, last := -1.0, 0.0
	for _, s := range stats {
		if len(s.Errors) > 0 {
			t.Fatalf("player error at %d s: %v", s.T, s.Errors)
		}
		if s.CurrentTime > 0 && first < 0 {
			first = s.CurrentTime
		}
		last = s.CurrentTime
	}
	end := stats[len(stats)-1]
	lat := "n/a"
	if end.Latency != nil {
		lat = fmt.Sprintf("%.2f s", *end.Latency)
	}
	t.Logf("played %.2f s of media, %d frames decoded at %dx%d, latency %s", last-first, end.DecodedFrames, end.Width, end.Height, lat)
	if first < 0 || last-first < minAdvance {
		t.Errorf("currentTime advanced %.2f s, want at least %.1f s: %+v", last-first, minAdvance, stats)
	}
	if end.Width != 640 || end.Height != 360 {
		t.Errorf("video size %dx%d, want 640x360", end.Width, end.Height)
	}
	if end.DecodedFrames < int(minAdvance*25) {
		t.Errorf("only %d frames decoded", end.DecodedFrames)
	}
}

func TestBrowserPlaysTSHLS(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "2",
		"-i", src, "-c", "copy", "-f", "flv", g.ingestURL("browser"))
	waitPlaylist(t, g.tsPlaylistURL("browser"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	stats := playInBrowser(t, "http://"+g.httpAddr+"/play.html?engine=hls&src=/live/browser/ts/index.m3u8", 10)
	checkPlayback(t, stats, 6)
}

// The page's player on the CMAF outputs: hls.js on the fMP4 playlists, dash.js
// on the MPD and Shaka on the fMP4 playlists, each for at least 6 s of advancing
// playback of a live publish.
func TestBrowserPlaysCMAF(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	// 56 s of stream (killed at cleanup): the two players play one after the
	// other, and on a loaded machine the second one used to start so late that
	// a 32 s stream ended under it.
	startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "6",
		"-i", src, "-c", "copy", "-f", "flv", g.ingestURL("cmafplay"))
	waitPlaylist(t, g.streamURL("cmafplay", "v/index.m3u8"), 8*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	for _, tc := range []struct{ name, engine, path string }{
		{"hls.js-fmp4", "hls", "index.m3u8"},
		{"dash.js", "dash", "index.mpd"},
		{"shaka", "shaka", "index.m3u8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stats := playInBrowser(t, "http://"+g.httpAddr+"/play.html?engine="+tc.engine+"&src=/live/cmafplay/"+tc.path, 10)
			checkPlayback(t, stats, 6)
		})
	}
}
