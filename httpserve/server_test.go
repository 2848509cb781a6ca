package httpserve_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/test"
	"github.com/rtmpgate/rtmpgate/packager"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newServer publishes 5 s of synthetic media (2 s GOPs) on live/demo and serves it.
func newServer(t *testing.T, end bool) *httptest.Server {
	t.Helper()
	srv, _ := newServerCfg(t, end, httpserve.Config{})
	return srv
}

// newServerCfg is newServer with an httpserve.Config; it also returns the hub.
func newServerCfg(t *testing.T, end bool, cfg httpserve.Config) (*httptest.Server, *packager.Hub) {
	t.Helper()
	hub := newDemoHub(t, end, 0)
	srv := httptest.NewServer(httpserve.New(hub, cfg))
	t.Cleanup(srv.Close)
	return srv, hub
}

// newDemoHub publishes 5 s of synthetic media (2 s GOPs, 25 fps) on live/demo;
// each video frame carries pad more bytes of slice data.
var newDemoHub = test.DemoHub

// client never adds Accept-Encoding nor decodes gzip by itself, so tests see
// exactly what the server sent.
var client = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}

func get(t *testing.T, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	return do(t, http.MethodGet, url, header)
}

func do(t *testing.T, method, url string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
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
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func TestRoutes(t *testing.T) {
	srv := newServer(t, true)
	res, pl := get(t, srv.URL+"/live/demo/ts/index.m3u8", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/vnd.apple.mpegurl" {
		t.Fatalf("playlist: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=1") {
		t.Errorf("playlist Cache-Control %q", cc)
	}
	if !strings.Contains(pl, "#EXT-X-ENDLIST") {
		t.Errorf("ended stream's playlist has no ENDLIST:\n%s", pl)
	}
	var seg string
	for _, line := range strings.Split(pl, "\n") {
		if strings.HasSuffix(line, ".ts") {
			seg = line
			break
		}
	}
	res, body := get(t, srv.URL+"/live/demo/ts/"+seg, nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "video/mp2t" || len(body)%188 != 0 || body[0] != 0x47 {
		t.Fatalf("segment: %d %q %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(body))
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("segment Cache-Control %q", cc)
	}
	if res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("segment without CORS header")
	}
	// Range requests come from CDNs and players resuming a download.
	res, part := get(t, srv.URL+"/live/demo/ts/"+seg, map[string]string{"Range": "bytes=188-375"})
	if res.StatusCode != http.StatusPartialContent || part != body[188:376] {
		t.Errorf("range: status %d, %d bytes", res.StatusCode, len(part))
	}
	for _, path := range []string{"/live/nope/ts/index.m3u8", "/live/demo/ts/nope.ts", "/live/demo/../../etc/passwd"} {
		res, _ := get(t, srv.URL+path, nil)
		if res.StatusCode != 404 {
			t.Errorf("%s: status %d, want 404", path, res.StatusCode)
		}
		if cc := res.Header.Get("Cache-Control"); path != "/live/demo/../../etc/passwd" && !strings.Contains(cc, "max-age=1") {
			t.Errorf("%s: 404 Cache-Control %q", path, cc)
		}
	}
	if res, body := get(t, srv.URL+"/healthz", nil); res.StatusCode != 200 || body != "ok\n" {
		t.Errorf("healthz: %d %q", res.StatusCode, body)
	}
}

func TestStreamsAPI(t *testing.T) {
	srv := newServer(t, false)
	res, body := get(t, srv.URL+"/api/streams", nil)
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("api: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	var streams []struct {
		App, Name, State, Remote string
		Since                    time.Time
		Segments                 int
		Tracks                   []struct {
			Kind, Codecs  string
			Width, Height int
			SampleRate    int `json:"sample_rate"`
			Channels      int
		}
		PlaybackTS string `json:"playback_ts"`
	}
	if err := json.Unmarshal([]byte(body), &streams); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(streams) != 1 {
		t.Fatalf("want one stream: %s", body)
	}
	s := streams[0]
	if s.App != "live" || s.Name != "demo" || s.State != "live" || s.Remote != "" || s.Segments != 2 || s.Since.IsZero() {
		t.Errorf("stream entry %+v", s)
	}
	if len(s.Tracks) != 2 || s.Tracks[0].Kind != "video" || s.Tracks[0].Width != 640 || s.Tracks[1].Codecs != "mp4a.40.2" || s.Tracks[1].SampleRate != 48000 {
		t.Errorf("tracks %+v", s.Tracks)
	}
	if s.PlaybackTS != "/live/demo/ts/index.m3u8" {
		t.Errorf("playback URL %q", s.PlaybackTS)
	}
}

// TestFastPathLeavesOthersToChi checks that the routes chi matches before the
// stream files' pattern keep their handlers now that a fast path answers
// stream files itself.
func TestFastPathLeavesOthersToChi(t *testing.T) {
	srv := newServer(t, false)
	for _, tc := range []struct {
		path, body string
		status     int
	}{
		{"/live/demo/ts/index.m3u8", "#EXTM3U", 200},
		{"/vendor/nope/nope.js", "404 page not found", 404}, // the file server, not a stream called nope
		{"/api/streams/live/demo", `"name":"demo"`, 200},    // the API, not a stream called streams
		{"/live/demo/ts%2Findex.m3u8", "not found", 404},    // chi routes escaped paths raw
	} {
		res, body := get(t, srv.URL+tc.path, nil)
		if res.StatusCode != tc.status || !strings.Contains(body, tc.body) {
			t.Errorf("%s: %d, want %d and a body with %q: %.80s", tc.path, res.StatusCode, tc.status, tc.body, body)
		}
	}
}

// publishedMeanwhile is a registry whose stream appears between a request's
// first lookup and any later one, as a publish that starts mid-request does.
type publishedMeanwhile struct {
	*packager.Hub
	misses atomic.Int32
}

func (p *publishedMeanwhile) Stream(app, name string) (*packager.Stream, error) {
	if p.misses.Add(-1) >= 0 {
		return nil, packager.ErrNotFound
	}
	return p.Hub.Stream(app, name)
}

// TestStreamPublishedMidRequest: a request that found no stream answers 404
// even when the stream exists by the time it answers (it answered an empty
// 200: a second lookup found the stream and nothing was written).
func TestStreamPublishedMidRequest(t *testing.T) {
	reg := &publishedMeanwhile{Hub: newDemoHub(t, false, 0)}
	srv := httptest.NewServer(httpserve.New(reg, httpserve.Config{}))
	t.Cleanup(srv.Close)
	for _, path := range []string{"ts/index.m3u8", "v/index.m3u8", "index.m3u8", "index.mpd", "ts/init.ts"} {
		reg.misses.Store(1)
		res, body := get(t, srv.URL+"/live/demo/"+path, nil)
		if res.StatusCode != http.StatusNotFound || body == "" {
			t.Errorf("%s while the stream was not found: %d %q, want 404", path, res.StatusCode, body)
		}
	}
	reg.misses.Store(0)
	if res, body := get(t, srv.URL+"/live/demo/ts/index.m3u8", nil); res.StatusCode != http.StatusOK || !strings.HasPrefix(body, "#EXTM3U") {
		t.Errorf("ts/index.m3u8 once found: %d %q", res.StatusCode, body)
	}
}
