package main

import (
	"bufio"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// ladderRung is one rendition the ladder test publishes.
type ladderRung struct {
	suffix        string
	width, height int
	bitrate       string
}

var ladderRungs = []ladderRung{
	{"_hi", 1280, 720, "2500k"},
	{"_mid", 640, 360, "900k"},
	{"_lo", 320, 180, "300k"},
}

// publishLive runs ffmpeg as a live encoder of a test pattern and a tone, a
// keyframe every 2 s, paced in real time, into the gateway's key.
func publishLive(t *testing.T, g *gateway, key string, r ladderRung) *publisher {
	t.Helper()
	return publishLiveTo(t, r, g.ingestURL(key))
}

// publishLiveTo is publishLive into every RTMP URL of urls at once, one
// encoding sent to each (ffmpeg's tee muxer).
func publishLiveTo(t *testing.T, r ladderRung, urls ...string) *publisher {
	t.Helper()
	testkit.NeedTools(t, "ffmpeg", "ffprobe")
	args := []string{"-hide_banner", "-loglevel", "error", "-nostdin", "-re",
		"-f", "lavfi", "-i", "testsrc2=size=" + strconv.Itoa(r.width) + "x" + strconv.Itoa(r.height) + ":rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", "120", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-b:v", r.bitrate,
		"-force_key_frames", "expr:gte(t,n_forced*2)", "-sc_threshold", "0",
		"-c:a", "aac", "-b:a", "64k"}
	if len(urls) == 1 {
		args = append(args, "-f", "flv", urls[0])
	} else {
		var outs []string
		for _, u := range urls {
			outs = append(outs, "[f=flv]"+u)
		}
		// The tee muxer does not ask the encoders for the global headers
		// (avcC, AudioSpecificConfig) that FLV sends as sequence starts.
		args = append(args, "-flags", "+global_header", "-map", "0:v", "-map", "1:a", "-f", "tee", strings.Join(outs, "|"))
	}
	return startProcess(t, "ffmpeg", args...)
}

// ladderVariant is one EXT-X-STREAM-INF of a multivariant playlist.
type ladderVariant struct {
	attrs map[string]string
	uri   string
}

var attrRe = regexp.MustCompile(`([A-Z0-9-]+)=("[^"]*"|[^,]*)`)

func parseAttrs(s string) map[string]string {
	m := map[string]string{}
	for _, kv := range attrRe.FindAllStringSubmatch(s, -1) {
		m[kv[1]] = strings.Trim(kv[2], `"`)
	}
	return m
}

// parseLadder returns the variants and the audio renditions (GROUP-ID: URI).
func parseLadder(body string) (vs []ladderVariant, audio map[string]string) {
	audio = map[string]string{}
	lines := strings.Split(strings.TrimSpace(body), "\n")
	for i, l := range lines {
		if a, ok := strings.CutPrefix(l, "#EXT-X-MEDIA:"); ok {
			if m := parseAttrs(a); m["TYPE"] == "AUDIO" {
				audio[m["GROUP-ID"]] = m["URI"]
			}
		}
		if a, ok := strings.CutPrefix(l, "#EXT-X-STREAM-INF:"); ok && i+1 < len(lines) {
			vs = append(vs, ladderVariant{parseAttrs(a), lines[i+1]})
		}
	}
	return vs, audio
}

// waitLadder polls the multivariant playlist until its variants' URIs are
// want, in that order.
func waitLadder(t *testing.T, u string, want []string, limit time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	for {
		code, body := httpGet(t, u)
		last = strconv.Itoa(code) + "\n" + string(body)
		if code == http.StatusOK {
			vs, _ := parseLadder(string(body))
			var got []string
			for _, v := range vs {
				got = append(got, v.uri)
			}
			if strings.Join(got, " ") == strings.Join(want, " ") {
				return string(body)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: variants not %v within %s; last:\n%s", u, want, limit, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestLadder publishes live/demo_hi, _mid and _lo from three ffmpeg encoders
// and judges the ladder at live/demo: its multivariant playlist (order,
// attributes, each variant's playlists decode to the rendition published),
// the API's ladder entry, a rendition dropping out and coming back, the
// ladder's MPD polled through all of it (checkLadderMPD), the members'
// rendition reports of each other, and a stream named demo itself taking
// the name over.
func TestLadder(t *testing.T) {
	g := startGateway(t, "-variants", "_hi,_mid,_lo")
	pubs := map[string]*publisher{}
	for _, r := range ladderRungs {
		pubs[r.suffix] = publishLive(t, g, "demo"+r.suffix, r)
	}
	base := "http://" + g.httpAddr + "/live/demo/"
	stopMPD := startLadderMPDPoller(base + "index.mpd")
	defer stopMPD()
	mvURL := base + "index.m3u8"
	all := []string{"demo_hi/v/index.m3u8", "demo_mid/v/index.m3u8", "demo_lo/v/index.m3u8"}
	body := waitLadder(t, mvURL, all, 30*time.Second)
	t.Logf("ladder:\n%s", body)

	vs, audio := parseLadder(body)
	last := int64(-1)
	for i, v := range vs {
		r := ladderRungs[i]
		bw, err := strconv.ParseInt(v.attrs["BANDWIDTH"], 10, 64)
		if err != nil || bw <= 0 || last >= 0 && bw > last {
			t.Errorf("variant %s: BANDWIDTH %q not positive and at most the one before (%d)", v.uri, v.attrs["BANDWIDTH"], last)
		}
		last = bw
		if avg, err := strconv.ParseInt(v.attrs["AVERAGE-BANDWIDTH"], 10, 64); err != nil || avg <= 0 || avg > bw {
			t.Errorf("variant %s: AVERAGE-BANDWIDTH %q not in (0, BANDWIDTH]", v.uri, v.attrs["AVERAGE-BANDWIDTH"])
		}
		if want := strconv.Itoa(r.width) + "x" + strconv.Itoa(r.height); v.attrs["RESOLUTION"] != want {
			t.Errorf("variant %s: RESOLUTION %q, want %s", v.uri, v.attrs["RESOLUTION"], want)
		}
		if fps, err := strconv.ParseFloat(v.attrs["FRAME-RATE"], 64); err != nil || fps < 24 || fps > 26 {
			t.Errorf("variant %s: FRAME-RATE %q, want 25", v.uri, v.attrs["FRAME-RATE"])
		}
		if c := v.attrs["CODECS"]; !strings.HasPrefix(c, "avc1.") || !strings.HasSuffix(c, ",mp4a.40.2") {
			t.Errorf("variant %s: CODECS %q", v.uri, c)
		}
		wantAudio := "demo" + r.suffix + "/a/index.m3u8"
		if got := audio[v.attrs["AUDIO"]]; got != wantAudio {
			t.Errorf("variant %s: AUDIO group %q is %q, want its own %s", v.uri, v.attrs["AUDIO"], got, wantAudio)
		}
		// Each URI resolves against the multivariant playlist's URL and
		// decodes to the rendition that key published.
		for _, ref := range []string{v.uri, wantAudio} {
			getRef(t, mvURL, ref)
		}
		u, _ := url.Parse(mvURL)
		ref, _ := url.Parse(v.uri)
		var doc struct {
			Streams []struct {
				CodecType string `json:"codec_type"`
				Width     int    `json:"width"`
				Height    int    `json:"height"`
			} `json:"streams"`
		}
		testkit.Probe(t, &doc, u.ResolveReference(ref).String(), "-show_entries", "stream=codec_type,width,height")
		if len(doc.Streams) != 1 || doc.Streams[0].Width != r.width || doc.Streams[0].Height != r.height {
			t.Errorf("ffprobe %s: %+v, want one %dx%d video stream", v.uri, doc.Streams, r.width, r.height)
		}
	}

	// Each member's LL-HLS playlists report the others' at listed parts,
	// from the ladder's URLs and from the members' own alike.
	for _, root := range []string{base, "http://" + g.httpAddr + "/live/"} {
		var pls []string
		for _, r := range ladderRungs {
			pls = append(pls, root+"demo"+r.suffix+"/v/index.m3u8", root+"demo"+r.suffix+"/a/index.m3u8")
		}
		began := time.Now()
		n := checkRenditionReports(t, pls, 3*time.Second)
		t.Logf("%d rendition reports of %d playlists under %s resolve to a listed part (checked in %v)", n, len(pls), root, time.Since(began).Round(time.Millisecond))
	}

	// The API: every member names its ladder and says whether segment
	// starts line up.
	time.Sleep(4 * time.Second) // a few segments each to compare
	for _, r := range ladderRungs {
		code, b := httpGet(t, "http://"+g.httpAddr+"/api/streams/live/demo"+r.suffix)
		var e struct {
			Ladder *struct {
				Name        string   `json:"name"`
				HLS         string   `json:"hls"`
				DASH        string   `json:"dash"`
				Renditions  []string `json:"renditions"`
				Aligned     bool     `json:"aligned"`
				MaxOffsetMs int64    `json:"max_offset_ms"`
				Compared    int      `json:"compared_segments"`
			} `json:"ladder"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &e) != nil || e.Ladder == nil {
			t.Fatalf("API demo%s: %d %s", r.suffix, code, b)
		}
		l := e.Ladder
		if l.Name != "demo" || l.HLS != "/live/demo/index.m3u8" || l.DASH != "/live/demo/index.mpd" || len(l.Renditions) != 3 || l.Compared == 0 ||
			l.Aligned != (l.MaxOffsetMs <= 100) {
			t.Errorf("API demo%s: ladder %+v", r.suffix, *l)
		}
		t.Logf("demo%s: aligned %v, max offset %d ms over %d segment starts", r.suffix, l.Aligned, l.MaxOffsetMs, l.Compared)
	}

	// The ladder's MPD beside each key's own.
	if code, _ := httpGet(t, base+"index.mpd"); code != http.StatusOK {
		t.Errorf("ladder MPD: status %d", code)
	}
	if code, _ := httpGet(t, "http://"+g.httpAddr+"/live/demo_mid/index.mpd"); code != http.StatusOK {
		t.Errorf("member MPD: status %d", code)
	}

	// A rendition that drops out leaves the ladder, its playlists under the
	// ladder's name answer 404 (its own still end it), and it comes back.
	_ = pubs["_mid"].cmd.Process.Kill()
	waitLadder(t, mvURL, []string{all[0], all[2]}, 15*time.Second)
	if code, _ := httpGet(t, base+all[1]); code != http.StatusNotFound {
		t.Errorf("%s of a rendition that left: %d, want 404", all[1], code)
	}
	if code, _ := httpGet(t, "http://"+g.httpAddr+"/live/demo_mid/v/index.m3u8"); code != http.StatusOK {
		t.Errorf("the own playlist of a rendition that left: %d", code)
	}
	pubs["_mid"] = publishLive(t, g, "demo_mid", ladderRungs[1])
	waitLadder(t, mvURL, all, 30*time.Second)
	// The MPD: a Period without demo_mid, then one with it again.
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, b := httpGet(t, base+"index.mpd")
		var m ladderMPDDoc
		if code == http.StatusOK && xml.Unmarshal(b, &m) == nil && len(m.Periods) > 2 &&
			strings.Contains(string(b[strings.LastIndex(string(b), "<Period "):]), `id="demo_mid/v"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ladder MPD without a Period where demo_mid is back:\n%s", b)
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(2500 * time.Millisecond) // a segment of it listed
	v := stopMPD()
	checkLadderMPD(t, base, v)
	dropped, back := false, false
	for _, ids := range v.members {
		dropped = dropped || !strings.Contains(ids, "demo_mid/v") && strings.Contains(ids, "demo_hi/v")
		back = back || dropped && strings.Contains(ids, "demo_mid/v")
	}
	if !dropped || !back {
		t.Errorf("the ladder MPD's last Period did not lose demo_mid and get it back: %q", v.members)
	}

	// A stream named demo itself wins over the ladder.
	publishFFmpeg(t, clip(t, "av"), g.ingestURL("demo"), true)
	waitLadder(t, mvURL, []string{"v/index.m3u8"}, 30*time.Second)
}

// TestBrowserSwitchesLadder plays a three-rendition ladder of keys in
// Chromium. throttle: hls.js and dash.js, each in classic and in low-latency
// mode, left to choose while the network is throttled and lifted
// (playABR), then the status page's ladder card. misaligned: hls.js forced
// down and up on a ladder whose renditions are cut at other instants. drop:
// the rendition playing leaves.
func TestBrowserSwitchesLadder(t *testing.T) {
	t.Run("throttle", throttleLadder)
	// The lowest rendition's encoder starts 5 s after the others: its
	// media times and segment starts differ from theirs by 5 s and by 1 s.
	t.Run("misaligned", misalignedLadder)
	t.Run("drop", dropLadder)
}

// throttleLadder publishes the ladder from three encoders to a low-latency
// gateway and a classic one (low_latency false) at once, and plays both
// through playABR: four players at once.
func throttleLadder(t *testing.T) {
	webDir := requireWeb(t)
	ll := startGateway(t, "-variants", "_hi,_mid,_lo")
	classic := startGateway(t, "-variants", "_hi,_mid,_lo", "-low-latency=false")
	for _, r := range ladderRungs {
		publishLiveTo(t, r, ll.ingestURL("demo"+r.suffix), classic.ingestURL("demo"+r.suffix))
	}
	llOrigin, classicOrigin := "http://"+ll.httpAddr, "http://"+classic.httpAddr
	all := []string{"demo_hi/v/index.m3u8", "demo_mid/v/index.m3u8", "demo_lo/v/index.m3u8"}
	for _, o := range []string{llOrigin, classicOrigin} {
		waitLadder(t, o+"/live/demo/index.m3u8", all, 30*time.Second)
	}
	waitJoinable(t, classicOrigin+"/live/demo/index.m3u8")
	mvURL := llOrigin + "/live/demo/index.m3u8"
	kbps, good, bws := throttleKbps(t, mvURL)
	t.Logf("BANDWIDTH %v: %d kbit/s throttled to %d kbit/s", bws, good, kbps)
	playABR(t, webDir, kbps, good, segmentSeconds(t, firstVariant(t, mvURL)), ladderHeights(t, mvURL), 2, abrCases(llOrigin, classicOrigin, "/live/demo/"))
	pageShowsLadder(t, webDir, llOrigin)
}

// dropLadder plays the ladder in hls.js's automatic mode and ends the
// publisher of the rendition playing: the player must move to another and
// play on.
func dropLadder(t *testing.T) {
	webDir := requireWeb(t)
	g := startGateway(t, "-variants", "_hi,_mid,_lo")
	pubs := map[string]*publisher{}
	for _, r := range ladderRungs {
		pubs[r.suffix] = publishLive(t, g, "demo"+r.suffix, r)
	}
	origin := "http://" + g.httpAddr
	mvURL := origin + "/live/demo/index.m3u8"
	waitLadder(t, mvURL, []string{"demo_hi/v/index.m3u8", "demo_mid/v/index.m3u8", "demo_lo/v/index.m3u8"}, 30*time.Second)
	p := startProcess(t, "node", webDir+"/test/ladder.mjs", origin, mvURL, "drop")
	deadline := time.Now().Add(60 * time.Second)
	var playing *ladderRung
	for playing == nil {
		for _, line := range strings.Split(p.output.String(), "\n") {
			var m struct {
				OnHeight int `json:"onHeight"`
			}
			if json.Unmarshal([]byte(line), &m) == nil && m.OnHeight > 0 {
				for i := range ladderRungs {
					if ladderRungs[i].height == m.OnHeight {
						playing = &ladderRungs[i]
					}
				}
				if playing == nil {
					t.Fatalf("playing at %dp, no rendition of the ladder", m.OnHeight)
				}
			}
		}
		if playing == nil && time.Now().After(deadline) {
			t.Fatalf("the player never played:\n%s", p.output)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = pubs[playing.suffix].cmd.Process.Kill()
	if err := p.wait(t, 150*time.Second); err != nil {
		t.Fatalf("ladder.mjs: %v\n%s", err, p.output)
	}
	out := strings.TrimSpace(p.output.String())
	var r struct {
		AfterDrop *struct {
			From     int     `json:"from"`
			Advanced float64 `json:"advanced"`
			Height   int     `json:"height"`
			Ended    bool    `json:"ended"`
		} `json:"afterDrop"`
		Errors  []string `json:"errors"`
		Waiting int      `json:"waiting"`
		StallMs float64  `json:"stallMs"`
	}
	if !p.lastJSON(t, &r) || r.AfterDrop == nil {
		t.Fatalf("ladder.mjs: no result after the drop\n%s", out)
	}
	a := r.AfterDrop
	t.Logf("after the %dp publisher left: played %.2f s more at %dp, ended %v; errors %v, stalls %d (%.0f ms)", a.From, a.Advanced, a.Height, a.Ended, r.Errors, r.Waiting, r.StallMs)
	if a.Ended || a.Height == a.From || a.Advanced < 4 {
		t.Errorf("the player did not move to another rendition when its own left: %+v", *a)
	}
}

// misalignedLadder plays, with hls.js forced down and up, a ladder whose
// lowest rendition starts 5 s after the others; the API must say so.
func misalignedLadder(t *testing.T) {
	webDir := requireWeb(t)
	g := startGateway(t, "-variants", "_hi,_mid,_lo")
	for _, r := range ladderRungs {
		if r.suffix == "_lo" {
			time.Sleep(5 * time.Second)
		}
		publishLive(t, g, "demo"+r.suffix, r)
	}
	origin := "http://" + g.httpAddr
	time.Sleep(6 * time.Second) // segments of the late one to compare
	code, b := httpGet(t, origin+"/api/streams/live/demo_lo")
	var e struct {
		Ladder struct {
			Aligned     bool  `json:"aligned"`
			MaxOffsetMs int64 `json:"max_offset_ms"`
			Compared    int   `json:"compared_segments"`
		} `json:"ladder"`
	}
	if code != http.StatusOK || json.Unmarshal(b, &e) != nil || e.Ladder.Aligned || e.Ladder.Compared == 0 || e.Ladder.MaxOffsetMs < 500 {
		t.Errorf("API on a ladder misaligned by 1 s: %d %s", code, b)
	}
	mvURL := origin + "/live/demo/index.m3u8"
	waitLadder(t, mvURL, []string{"demo_hi/v/index.m3u8", "demo_mid/v/index.m3u8", "demo_lo/v/index.m3u8"}, 30*time.Second)
	playLadder(t, webDir, origin, mvURL)
}

// pageShowsLadder opens the status page: the ladder live/demo has its card
// with its renditions, and its play button plays it.
func pageShowsLadder(t *testing.T, webDir, origin string) {
	shot := filepath.Join(artifactsDir(t), "status-page-ladder.png")
	p := startProcess(t, "node", filepath.Join(webDir, "test", "page.mjs"), origin+"/", "live/demo", "hls", "5", shot)
	if err := p.wait(t, 60*time.Second); err != nil {
		t.Fatalf("page.mjs: %v\n%s", err, p.output)
	}
	var stats []playerStats
	sc := bufio.NewScanner(strings.NewReader(p.output.String()))
	for sc.Scan() {
		var line struct {
			playerStats
			Text *string `json:"text"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch {
		case line.PageError != "":
			t.Errorf("page error: %s", line.PageError)
		case line.Text != nil:
			for _, want := range []string{"live/demo", "ladder of 3", "demo_hi", "1280×720", "demo_lo", "320×180", "Segments aligned"} {
				if !strings.Contains(strings.ToLower(*line.Text), strings.ToLower(want)) {
					t.Errorf("ladder card lacks %q:\n%s", want, *line.Text)
				}
			}
		case line.T > 0:
			stats = append(stats, line.playerStats)
		}
	}
	// checkPlayback's, but for whichever rendition the player chose.
	if len(stats) < 2 {
		t.Fatalf("the player reported %d times", len(stats))
	}
	first, end := stats[0], stats[len(stats)-1]
	for _, s := range stats {
		if len(s.Errors) > 0 {
			t.Fatalf("player error at %d s: %v", s.T, s.Errors)
		}
	}
	sized := false
	for _, r := range ladderRungs {
		sized = sized || end.Width == r.width && end.Height == r.height
	}
	t.Logf("page: played %.2f s, %d frames decoded at %dx%d", end.CurrentTime-first.CurrentTime, end.DecodedFrames, end.Width, end.Height)
	if end.CurrentTime-first.CurrentTime < 2 || end.DecodedFrames < 50 || !sized {
		t.Errorf("the page did not play the ladder: %+v", stats)
	}
	t.Logf("screenshot: %s", shot)
}

// playLadder plays src, the multivariant playlist of a misaligned ladder,
// with hls.js through ladder.mjs, forcing a switch down to the lowest
// rendition and back up to the highest, and judges the run.
func playLadder(t *testing.T, webDir, origin, src string) {
	t.Helper()
	const player = "hls.js"
	p := startProcess(t, "node", webDir+"/test/ladder.mjs", origin, src)
	if err := p.wait(t, 150*time.Second); err != nil {
		t.Fatalf("ladder.mjs: %v\n%s", err, p.output)
	}
	var r struct {
		Levels []struct {
			Height  int    `json:"height"`
			Bitrate int    `json:"bitrate"`
			URL     string `json:"url"`
		} `json:"levels"`
		Switches []struct {
			Level int     `json:"level"`
			At    float64 `json:"at"`
		} `json:"switches"`
		Steps []struct {
			Level    int     `json:"level"`
			Switched bool    `json:"switched"`
			Shown    bool    `json:"shown"`
			Height   int     `json:"height"`
			Advanced float64 `json:"advanced"`
		} `json:"steps"`
		Errors      []string `json:"errors"`
		Waiting     int      `json:"waiting"`
		StallMs     float64  `json:"stallMs"`
		CurrentTime float64  `json:"currentTime"`
		PageError   string   `json:"pageerror"`
	}
	if !p.lastJSON(t, &r) || r.PageError != "" {
		t.Fatalf("ladder.mjs: page error %q", r.PageError)
	}
	t.Logf("%s: levels %+v, switches %+v, steps %+v, errors %v, stalls %d (%.0f ms)", player, r.Levels, r.Switches, r.Steps, r.Errors, r.Waiting, r.StallMs)
	if len(r.Levels) != 3 {
		t.Fatalf("%s read %d levels, want 3", player, len(r.Levels))
	}
	if len(r.Steps) != 2 {
		t.Fatalf("%s did not get to the switches: %d steps", player, len(r.Steps))
	}
	// Renditions cut at other instants (which the API reports) promise no
	// seamless switch: the player must only play on after the switches; the
	// aligned ladders are held to the bar by playABR.
	judge := t.Logf
	if last := r.Steps[len(r.Steps)-1]; last.Advanced < 1 {
		t.Errorf("the player stopped after the switches on a misaligned ladder: %+v", last)
	}
	if r.StallMs >= 2000 {
		judge("%s stalled %.0f ms over %d waits, a segment or more", player, r.StallMs, r.Waiting)
	}
	for i, want := range []int{180, 720} {
		s := r.Steps[i]
		if !s.Switched || !s.Shown || s.Height != want || s.Advanced < 1 {
			judge("%s switch %d to %dp: %+v", player, i+1, want, s)
		}
	}
}
