package main

import (
	"bufio"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The status page in headless Chromium: a published stream is listed within 2 s
// of its first segment, a click plays it for 3 s, and the page fits a phone's width.
// Screenshots go to bin/test-artifacts/.
func TestStatusPagePlaysStream(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re", "-stream_loop", "2",
		"-i", src, "-c", "copy", "-f", "flv", g.ingestURL("page"))
	waitPlaylist(t, g.tsPlaylistURL("page"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	webDir := requireWeb(t)
	artifacts := artifactsDir(t)
	shot := filepath.Join(artifacts, "status-page.png")
	phone := filepath.Join(artifacts, "status-page-phone.png")
	p := startProcess(t, "node", filepath.Join(webDir, "test", "page.mjs"), "http://"+g.httpAddr+"/", "live/page", "ts",
		strconv.Itoa(6), shot, phone)
	if err := p.wait(t, 60*time.Second); err != nil {
		t.Fatalf("page.mjs: %v\n%s", err, p.output)
	}
	var stats []playerStats
	listed := -1.0
	sc := bufio.NewScanner(strings.NewReader(p.output.String()))
	for sc.Scan() {
		var line struct {
			playerStats
			ListedAfterMs *float64 `json:"listedAfterMs"`
			Text          string   `json:"text"`
			PhoneOverflow *float64 `json:"phoneOverflowPx"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch {
		case line.PageError != "":
			t.Errorf("page error: %s", line.PageError)
		case line.ListedAfterMs != nil:
			listed = *line.ListedAfterMs
			for _, want := range []string{"live/page", "avc1.", "mp4a.40.2", "640×360"} {
				if !strings.Contains(line.Text, want) {
					t.Errorf("stream entry lacks %q:\n%s", want, line.Text)
				}
			}
		case line.PhoneOverflow != nil:
			if *line.PhoneOverflow > 0 {
				t.Errorf("page is %v px wider than a 390 px phone viewport", *line.PhoneOverflow)
			}
		case line.T > 0:
			stats = append(stats, line.playerStats)
		}
	}
	if listed < 0 || listed > 2000 {
		t.Errorf("stream listed after %v ms, want within 2 s", listed)
	}
	checkPlayback(t, stats, 3)
	t.Logf("screenshots: %s, %s", shot, phone)
}
