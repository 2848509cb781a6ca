package httpserve_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/test"
	"github.com/rtmpgate/rtmpgate/packager"
)

// TestLadderRoutes serves a ladder of live/demo_hi and live/demo_lo: its
// multivariant playlist at live/demo (gzip and conditional requests as any
// document), no MPD or other file under the ladder's name, each key's own
// files, and the API's ladder entry.
func TestLadderRoutes(t *testing.T) {
	hub := packager.NewHub(packager.Config{Variants: []string{"_hi", "_mid", "_lo"}}, zerolog.Nop())
	t.Cleanup(hub.Close)
	test.PublishDemo(t, hub, "live", "demo_hi", false, 2000)
	test.PublishDemo(t, hub, "live", "demo_mid", true, 500) // its publisher left
	test.PublishDemo(t, hub, "live", "demo_lo", false, 0)
	srv := httptest.NewServer(httpserve.New(hub, httpserve.Config{}))
	t.Cleanup(srv.Close)

	res, body := get(t, srv.URL+"/live/demo/index.m3u8", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != packager.ContentTypePlaylist {
		t.Fatalf("ladder: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	hi, lo := strings.Index(body, "\ndemo_hi/v/index.m3u8\n"), strings.Index(body, "\ndemo_lo/v/index.m3u8\n")
	if hi < 0 || lo < 0 || hi > lo {
		t.Fatalf("ladder not demo_hi then demo_lo:\n%s", body)
	}
	etag := res.Header.Get("Etag")
	if res, _ := get(t, srv.URL+"/live/demo/index.m3u8", map[string]string{"If-None-Match": etag}); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET of an unchanged ladder: %d", res.StatusCode)
	}
	if res, _ := get(t, srv.URL+"/live/demo/index.m3u8", map[string]string{"Accept-Encoding": "gzip"}); res.Header.Get("Content-Encoding") != "gzip" {
		t.Errorf("ladder not gzipped for a client that accepts it")
	}
	for _, p := range []string{"/live/demo/index.mpd", "/live/demo/ts/index.m3u8", "/live/demo/v/index.m3u8", "/live/other/index.m3u8"} {
		if res, _ := get(t, srv.URL+p, nil); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
	for _, p := range []string{"/live/demo_hi/index.m3u8", "/live/demo_lo/index.mpd", "/live/demo_lo/v/index.m3u8", "/live/demo_mid/v/index.m3u8"} {
		if res, _ := get(t, srv.URL+p, nil); res.StatusCode != http.StatusOK {
			t.Errorf("%s: %d", p, res.StatusCode)
		}
	}
	// The members' files under the ladder's name: the same bytes as their
	// own, but for the playlists of a member that left while others are live.
	for _, m := range []string{"demo_hi", "demo_lo"} {
		for _, p := range []string{"v/index.m3u8", "a/index.m3u8"} {
			_, own := get(t, srv.URL+"/live/"+m+"/"+p, nil)
			res, body := get(t, srv.URL+"/live/demo/"+m+"/"+p, nil)
			if res.StatusCode != http.StatusOK || body != own {
				t.Errorf("/live/demo/%s/%s: %d, same as its own: %v", m, p, res.StatusCode, body == own)
			}
			seg := ""
			for _, l := range strings.Split(body, "\n") {
				if strings.HasSuffix(l, ".m4s") {
					seg = l
				}
			}
			if res, _ := get(t, srv.URL+"/live/demo/"+m+"/"+strings.TrimSuffix(p, "index.m3u8")+seg, nil); seg == "" || res.StatusCode != http.StatusOK {
				t.Errorf("segment %q of /live/demo/%s/%s: %d", seg, m, p, res.StatusCode)
			}
		}
	}
	_, mid := get(t, srv.URL+"/live/demo_mid/v/index.m3u8", nil)
	if res, _ := get(t, srv.URL+"/live/demo/demo_mid/v/index.m3u8", nil); res.StatusCode != http.StatusNotFound {
		t.Errorf("the playlist of a member that left, under the ladder: %d, want 404", res.StatusCode)
	}
	if strings.Contains(body, "demo_mid") {
		t.Errorf("a member that left is listed:\n%s", body)
	}
	for _, l := range strings.Split(mid, "\n") {
		if strings.HasSuffix(l, ".m4s") {
			if res, _ := get(t, srv.URL+"/live/demo/demo_mid/v/"+l, nil); res.StatusCode != http.StatusOK {
				t.Errorf("a segment of a member that left, under the ladder: %d", res.StatusCode)
			}
			break
		}
	}

	_, body = get(t, srv.URL+"/api/streams", nil)
	var list []struct {
		Name   string `json:"name"`
		Ladder *struct {
			Name       string   `json:"name"`
			HLS        string   `json:"hls"`
			Renditions []string `json:"renditions"`
			Aligned    bool     `json:"aligned"`
			Compared   int      `json:"compared_segments"`
		} `json:"ladder"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 3 {
		t.Fatalf("API: %v\n%s", err, body)
	}
	for _, e := range list {
		l := e.Ladder
		if l == nil || l.Name != "demo" || l.HLS != "/live/demo/index.m3u8" || strings.Join(l.Renditions, ",") != "demo_hi,demo_lo" || !l.Aligned || l.Compared == 0 {
			t.Errorf("API %s: ladder %+v", e.Name, l)
		}
	}
}
