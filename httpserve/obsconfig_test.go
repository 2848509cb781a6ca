package httpserve_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/test"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// obsConfig is the default ladder as cmd/rtmpgate builds it, RTMP on port 1935.
func obsConfig(t testing.TB, entries ...string) *httpserve.OBSConfig {
	t.Helper()
	if entries == nil {
		entries = httpserve.DefaultOBSLadder
	}
	l, err := httpserve.ParseOBSLadder(entries)
	if err != nil {
		t.Fatal(err)
	}
	return &httpserve.OBSConfig{Renditions: l, KeyframeInterval: 2 * time.Second, AudioBitrate: 160, RTMPPort: 1935}
}

// askOBS sends body as OBS would (POST, JSON) to host and returns the status
// and body of the answer.
func askOBS(t *testing.T, h http.Handler, host, body string) (int, []byte) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, httpserve.OBSConfigPath, strings.NewReader(body))
	req.Host = host
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

type wantTrack struct {
	typ           string
	width, height uint32
	num, den      uint32
	kbps          int
}

// TestOBSClientConfiguration answers the requests OBS 30.2, 31 and 32 send
// on Windows, Linux and macOS with the default ladder fitted to each, and
// checks each answer with a parser as strict as OBS's.
func TestOBSClientConfiguration(t *testing.T) {
	h := httpserve.New(newDemoHub(t, false, 0), httpserve.Config{OBS: obsConfig(t)})
	for _, tc := range []struct {
		name     string
		vod      bool
		canvases int
		channels uint32
		tracks   []wantTrack
	}{
		// NVENC by its OBS 30 id, found from the GPU; the 360p at 30 of 60 fps.
		{"obs30-windows-nvidia", false, 1, 2, []wantTrack{
			{"jim_nvenc", 1920, 1080, 60, 1, 6000}, {"jim_nvenc", 1280, 720, 60, 1, 3000}, {"jim_nvenc", 640, 360, 60, 2, 800}}},
		// AMF from the composition GPU (the first of two); 59.94 halved; a vod track.
		{"obs31-windows-amd", true, 1, 2, []wantTrack{
			{"h264_texture_amf", 1920, 1080, 60000, 1001, 6000}, {"h264_texture_amf", 1280, 720, 60000, 1001, 3000},
			{"h264_texture_amf", 640, 360, 60000, 2002, 800}}},
		// The listed encoders; 7500 kbit/s leaves 720p and 360p; 5.1 audio kept.
		{"obs-linux-nvidia-encoders", false, 2, 6, []wantTrack{
			{"obs_nvenc_h264_tex", 1280, 720, 60, 1, 3000}, {"obs_nvenc_h264_tex", 640, 360, 60, 2, 800}}},
		// VideoToolbox on Apple Silicon; a 4:3 canvas; two tracks asked.
		{"obs31-macos-arm", false, 1, 2, []wantTrack{
			{"com.apple.videotoolbox.videoencoder.ave.avc", 1440, 1080, 30, 1, 6000},
			{"com.apple.videotoolbox.videoencoder.ave.avc", 960, 720, 30, 1, 3000}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := askOBS(t, h, "gate.example:8080", testkit.OBSRequestBodies[tc.name])
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			c, err := testkit.ParseOBSConfig(body, tc.vod, tc.canvases)
			if err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			if *c.Status.Result != "success" {
				t.Errorf("status %q", *c.Status.Result)
			}
			if got := c.IngestEndpoints[0].URLTemplate; got != "rtmp://gate.example:1935/live/{stream_key}" {
				t.Errorf("url_template %q", got)
			}
			if c.IngestEndpoints[0].Authentication != nil {
				t.Errorf("authentication %q: OBS would publish with it instead of the user's key", *c.IngestEndpoints[0].Authentication)
			}
			if !strings.HasPrefix(*c.Meta.ConfigID, "rtmpgate-") {
				t.Errorf("config_id %q", *c.Meta.ConfigID)
			}
			if len(c.EncoderConfigurations) != len(tc.tracks) {
				t.Fatalf("%d tracks, want %d:\n%s", len(c.EncoderConfigurations), len(tc.tracks), body)
			}
			for i, w := range tc.tracks {
				e := c.EncoderConfigurations[i]
				s := e.DecodedSettings()
				got := wantTrack{e.Type, e.Width, e.Height, *e.Framerate.Numerator, *e.Framerate.Denominator, s.Bitrate}
				if got != w {
					t.Errorf("track %d: %+v, want %+v", i, got, w)
				}
				if s.RateControl != "CBR" || s.KeyintSec != 2 || s.Profile != "high" || e.CanvasIndex != 0 || *e.GPUScaleType != "OBS_SCALE_BICUBIC" {
					t.Errorf("track %d: settings %+v, canvas %d, scale %s", i, s, e.CanvasIndex, *e.GPUScaleType)
				}
			}
			live := c.AudioConfigurations.Live
			if len(live) != 1 || *live[0].Channels != tc.channels || *live[0].TrackID != 0 || string(live[0].Settings) != `{"bitrate":160}` {
				t.Errorf("live audio %s", body)
			}
			if vod := c.AudioConfigurations.Vod; (vod != nil) != tc.vod || tc.vod && *(*vod)[0].TrackID != 1 {
				t.Errorf("vod audio (want %v): %s", tc.vod, body)
			}
			// The same request, the same id; another ladder, another.
			_, again := askOBS(t, h, "gate.example:8080", testkit.OBSRequestBodies[tc.name])
			if !bytes.Equal(again, body) {
				t.Errorf("answers differ:\n%s\n%s", body, again)
			}
		})
	}
}

// TestOBSCodecsAndEncoders: HEVC and AV1 renditions go to the client's
// hardware encoder for them when it lists one, else become H.264; an
// operator's encoder is given as is.
func TestOBSCodecsAndEncoders(t *testing.T) {
	cfg := obsConfig(t, "1080p 6M hevc", "720p 3000k av1", "480p 1.5M")
	h := httpserve.New(newDemoHub(t, false, 0), httpserve.Config{OBS: cfg})
	for name, want := range map[string][]string{
		"obs-linux-nvidia-encoders": {"obs_nvenc_hevc_tex main 6000", "obs_nvenc_av1_tex main 3000", "obs_nvenc_h264_tex high 1500"},
		"obs31-windows-amd":         {"h264_texture_amf high 6000", "h264_texture_amf high 3000", "h264_texture_amf high 1500"},
		"obs30-windows-nvidia":      {"jim_nvenc high 6000", "jim_nvenc high 3000", "jim_nvenc high 1500"},
	} {
		// The Linux request's 7500 kbit/s would drop renditions: lift it.
		body := strings.Replace(testkit.OBSRequestBodies[name], `"maximum_aggregate_bitrate":7500`, `"maximum_aggregate_bitrate":null`, 1)
		_, got := askOBS(t, h, "h", body)
		c, err := testkit.ParseOBSConfig(got, strings.Contains(body, `"vod_track_audio":true`), 2)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var have []string
		for _, e := range c.EncoderConfigurations {
			s := e.DecodedSettings()
			have = append(have, fmt.Sprintf("%s %s %d", e.Type, s.Profile, s.Bitrate))
		}
		if strings.Join(have, ", ") != strings.Join(want, ", ") {
			t.Errorf("%s: %q, want %q", name, have, want)
		}
	}
	cfg.Encoder = "obs_x264"
	h = httpserve.New(newDemoHub(t, false, 0), httpserve.Config{OBS: cfg})
	_, got := askOBS(t, h, "h", testkit.OBSRequestBodies["obs-linux-nvidia-encoders"])
	c, err := testkit.ParseOBSConfig(got, false, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range c.EncoderConfigurations {
		if e.Type != "obs_x264" {
			t.Errorf("operator's encoder: got %s", e.Type)
		}
	}
}

// TestOBSFitting: the canvas, the track limit and the bandwidth limit shape
// the ladder; the ingest URL follows the Host or the configured URL.
func TestOBSFitting(t *testing.T) {
	req := func(prefs string) string {
		return `{"service":"IVS","schema_version":"2025-01-25","authentication":"k","client":{"name":"obs-studio","version":"31.0.0","supported_codecs":["h264"]},` +
			`"capabilities":{"cpu":{"physical_cores":4,"logical_cores":8,"speed":null,"name":null},"memory":{"total":1,"free":1},"gaming_features":null,` +
			`"system":{"version":"","name":"Linux","build":0,"release":"","revision":"","bits":64,"arm":false,"armEmulation":false},"gpu":null},` +
			`"preferences":{` + prefs + `}}`
	}
	canvas := func(w, h, num, den int) string {
		return fmt.Sprintf(`"canvases":[{"width":%d,"height":%d,"canvas_width":%d,"canvas_height":%d,"framerate":{"numerator":%d,"denominator":%d}}]`, w, h, w, h, num, den)
	}
	h := httpserve.New(newDemoHub(t, false, 0), httpserve.Config{OBS: obsConfig(t)})
	for _, tc := range []struct {
		name, host, prefs string
		sizes, status     string
		url               string
	}{
		{"720p canvas", "h", canvas(1280, 720, 30, 1), "1280x720@30/1 640x360@30/1", "success", "rtmp://h:1935/live/{stream_key}"},
		{"vertical canvas", "h", canvas(1080, 1920, 60, 1), "608x1080@60/1 406x720@60/1 202x360@60/2", "success", ""},
		{"tiny canvas keeps the smallest", "h", canvas(320, 180, 25, 1), "320x180@25/1", "success", ""},
		{"one track", "h", canvas(1920, 1080, 50, 1) + `,"maximum_video_tracks":1`, "1920x1080@50/1", "success", ""},
		{"bandwidth too low", "h", canvas(1920, 1080, 60, 1) + `,"maximum_aggregate_bitrate":500`, "640x360@60/2", "warning", ""},
		{"bandwidth with vod audio", "h", canvas(1920, 1080, 60, 1) + `,"maximum_aggregate_bitrate":4120,"vod_track_audio":true`, "1280x720@60/1 640x360@60/2", "success", ""},
		{"ipv6 host", "[2001:db8::1]:8080", canvas(1920, 1080, 60, 1), "", "success", "rtmp://[2001:db8::1]:1935/live/{stream_key}"},
		{"legacy preferences", "h", `"width":1280,"height":720,"canvas_width":1280,"canvas_height":720,"framerate":{"numerator":60,"denominator":1}`,
			"1280x720@60/1 640x360@60/2", "success", ""},
		{"nothing said", "h", ``, "1920x1080 1280x720 640x360@30/1", "success", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := askOBS(t, h, tc.host, req(tc.prefs))
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			c, err := testkit.ParseOBSConfig(body, strings.Contains(tc.prefs, "vod_track_audio"), 1)
			if err != nil {
				t.Fatalf("%v\n%s", err, body)
			}
			var sizes []string
			for _, e := range c.EncoderConfigurations {
				s := fmt.Sprintf("%dx%d", e.Width, e.Height)
				if f := e.Framerate; f != nil {
					s += fmt.Sprintf("@%d/%d", *f.Numerator, *f.Denominator)
				}
				sizes = append(sizes, s)
			}
			if tc.sizes != "" && strings.Join(sizes, " ") != tc.sizes {
				t.Errorf("renditions %q, want %q", strings.Join(sizes, " "), tc.sizes)
			}
			if *c.Status.Result != tc.status {
				t.Errorf("status %q, want %q", *c.Status.Result, tc.status)
			}
			if tc.status == "warning" && (c.Status.HTMLEnUS == nil || !strings.Contains(*c.Status.HTMLEnUS, "960 kbit/s")) {
				t.Errorf("warning without the bandwidth needed: %s", body)
			}
			if tc.url != "" && c.IngestEndpoints[0].URLTemplate != tc.url {
				t.Errorf("url_template %q, want %q", c.IngestEndpoints[0].URLTemplate, tc.url)
			}
		})
	}
	cfg := obsConfig(t)
	cfg.IngestURL = "rtmp://ingest.example.com/show"
	_, body := askOBS(t, httpserve.New(newDemoHub(t, false, 0), httpserve.Config{OBS: cfg}), "h", req(""))
	if c, err := testkit.ParseOBSConfig(body, false, 1); err != nil || c.IngestEndpoints[0].URLTemplate != "rtmp://ingest.example.com/show/{stream_key}" {
		t.Errorf("configured ingest URL: %v %s", err, body)
	}
}

// TestOBSBadRequests: what is not a request OBS could send is answered 400
// (413 for a body too large) with a JSON error saying why; GET shows the
// ladder; without a ladder the path is not served.
func TestOBSBadRequests(t *testing.T) {
	h := httpserve.New(newDemoHub(t, false, 0), httpserve.Config{OBS: obsConfig(t)})
	for _, tc := range []struct {
		name, body string
		code       int
		says       string
	}{
		{"empty", ``, 400, "not a JSON object"},
		{"array", `[]`, 400, "not a JSON object"},
		{"null", `null`, 400, "not a JSON object"},
		{"truncated", `{"client":{"name":"obs-studio"`, 400, "not JSON"},
		{"trailing data", `{} {}`, 400, "not JSON"},
		{"wrong type", `{"capabilities":{"gpu":[{"vendor_id":"nvidia"}]}}`, 400, "capabilities.gpu.vendor_id"},
		{"negative", `{"preferences":{"maximum_video_tracks":-1}}`, 400, "maximum_video_tracks"},
		{"overflow", `{"preferences":{"canvases":[{"height":4294967296}]}}`, 400, "canvases.height"},
		{"too large", `{"x":"` + strings.Repeat("a", 70000) + `"}`, 413, "over 65536 bytes"},
		{"zero frame rate", `{"preferences":{"canvases":[{"width":1920,"height":1080,"framerate":{"numerator":0,"denominator":0}}]}}`, 200, ""},
		{"zero denominator", `{"preferences":{"framerate":{"numerator":60,"denominator":0},"width":640,"height":360}}`, 200, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := askOBS(t, h, "h", tc.body)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			if tc.code != 200 {
				var e struct{ Error string }
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tc.says) {
					t.Errorf("error %q, want one saying %q", body, tc.says)
				}
				return
			}
			if _, err := testkit.ParseOBSConfig(body, false, 1); err != nil {
				t.Error(err)
			}
		})
	}
	t.Run("bad host", func(t *testing.T) {
		if code, body := askOBS(t, h, "a/b", `{}`); code != 400 || !strings.Contains(string(body), "Host") {
			t.Errorf("%d %s", code, body)
		}
	})
	t.Run("get", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, httpserve.OBSConfigPath, nil))
		c, err := testkit.ParseOBSConfig(rec.Body.Bytes(), false, 1)
		if rec.Code != 200 || err != nil || len(c.EncoderConfigurations) != 3 || c.EncoderConfigurations[0].Type != "obs_x264" ||
			rec.Header().Get("Cache-Control") != "no-store" {
			t.Errorf("%d %v %s", rec.Code, err, rec.Body.Bytes())
		}
	})
	t.Run("not configured", func(t *testing.T) {
		plain := httpserve.New(newDemoHub(t, false, 0), httpserve.Config{})
		for _, m := range []string{http.MethodGet, http.MethodPost} {
			rec := httptest.NewRecorder()
			plain.ServeHTTP(rec, httptest.NewRequest(m, httpserve.OBSConfigPath, strings.NewReader(`{}`)))
			if rec.Code != http.StatusNotFound && rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s: status %d", m, rec.Code)
			}
		}
	})
}

// TestOBSThroughGuard: OBS's POST (libcurl: a Content-Length, perhaps an
// Expect: 100-continue) passes the listener's head check, with or without the
// fast lane; the connection closes after the answer, and bytes after the
// body are never parsed as a request.
func TestOBSThroughGuard(t *testing.T) {
	body := testkit.OBSRequestBodies["obs31-windows-amd"]
	head := "POST " + httpserve.OBSConfigPath + " HTTP/1.1\r\nHost: gate.example:8080\r\nContent-Type: application/json\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n"
	for _, lane := range []bool{false, true} {
		h := httpserve.New(newDemoHub(t, false, 0), httpserve.Config{OBS: obsConfig(t)})
		addr := startGuarded(t, h, httpserve.GuardConfig{}, lane)
		for _, tc := range []struct{ name, raw string }{
			{"plain", head + "\r\n" + body + smuggled},
			{"expect", head + "Expect: 100-continue\r\n\r\n" + body},
		} {
			got, closed := rawAll(t, addr, tc.raw, false, 3*time.Second)
			br := bufio.NewReader(strings.NewReader(got))
			res, err := http.ReadResponse(br, nil)
			if err == nil && tc.name == "expect" {
				if res.StatusCode != http.StatusContinue {
					t.Errorf("lane %v %s: no 100 Continue: %q", lane, tc.name, got)
				}
				res, err = http.ReadResponse(br, nil)
			}
			if err != nil || res.StatusCode != http.StatusOK || !closed {
				t.Fatalf("lane %v %s: %v, closed %v: %q", lane, tc.name, err, closed, got)
			}
			answer, err := io.ReadAll(res.Body)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := testkit.ParseOBSConfig(answer, true, 1); err != nil {
				t.Errorf("lane %v %s: %v: %q", lane, tc.name, err, answer)
			}
			if rest, _ := io.ReadAll(br); len(rest) > 0 {
				t.Errorf("lane %v %s: more after the answer: %q", lane, tc.name, rest)
			}
		}
		// libcurl before 8.x waits for 100 Continue before sending a body over 1 KiB.
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, head+"Expect: 100-continue\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		br := bufio.NewReader(c)
		if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != http.StatusContinue {
			t.Fatalf("lane %v: waiting client: %v %v", lane, res, err)
		}
		if _, err := io.WriteString(c, body); err != nil {
			t.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil || res.StatusCode != http.StatusOK {
			t.Fatalf("lane %v: waiting client: %v %v", lane, res, err)
		}
		answer, _ := io.ReadAll(res.Body)
		c.Close()
		if _, err := testkit.ParseOBSConfig(answer, true, 1); err != nil {
			t.Errorf("lane %v: waiting client: %v", lane, err)
		}
		// A body longer than the route takes is refused before it is read.
		got, _ := test.Exchange(t, addr, "POST "+httpserve.OBSConfigPath+" HTTP/1.1\r\nHost: h\r\nContent-Length: 70000\r\n\r\n{", "POST")
		if !strings.HasPrefix(got, "HTTP/1.1 413 ") {
			t.Errorf("lane %v: %q", lane, got)
		}
	}
}
