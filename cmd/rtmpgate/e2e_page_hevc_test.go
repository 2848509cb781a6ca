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

// Chromium on Linux has no HEVC decoder for Media Source: the status page
// lists a live HEVC publish with a line saying this browser cannot decode its
// codecs string, and says so again in the player's status when played.
func TestPageSaysHEVCUndecodable(t *testing.T) {
	webDir := requireWeb(t)
	g := startGateway(t)
	c := enhancedClip(t, "hevc-aac.flv")
	published := make(chan error, 1)
	go func() { published <- publishTags(g.ingestURL("hevcpage"), clipTags(c, 0, true), 1) }()
	defer func() {
		if err := <-published; err != nil {
			t.Errorf("publish: %v", err)
		}
	}()
	waitPlaylist(t, g.streamURL("hevcpage", "v/index.m3u8"), 8*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	shot := filepath.Join(artifactsDir(t), "status-page-hevc.png")
	p := startProcess(t, "node", filepath.Join(webDir, "test", "page.mjs"), "http://"+g.httpAddr+"/", "live/hevcpage", "hls",
		strconv.Itoa(2), shot)
	if err := p.wait(t, 60*time.Second); err != nil {
		t.Fatalf("page.mjs: %v\n%s", err, p.output)
	}
	listed := false
	sc := bufio.NewScanner(strings.NewReader(p.output.String()))
	for sc.Scan() {
		var line struct {
			ListedAfterMs *float64 `json:"listedAfterMs"`
			Text          string   `json:"text"`
			PageError     string   `json:"pageerror"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		if line.PageError != "" {
			t.Errorf("page error: %s", line.PageError)
		}
		if line.ListedAfterMs != nil {
			listed = true
			if !strings.Contains(line.Text, "cannot decode hvc1.1.6.L63.90") {
				t.Errorf("stream entry does not say the browser cannot decode HEVC:\n%s", line.Text)
			} else {
				t.Logf("stream entry: %q", line.Text)
			}
		}
	}
	if !listed {
		t.Fatalf("stream never listed:\n%s", p.output)
	}
}
