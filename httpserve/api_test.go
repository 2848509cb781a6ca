package httpserve_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/packager"
)

type apiStream struct {
	App, Name, State string
	Since            time.Time
	Segments         int
	Bytes            int64
	Uptime           int64 `json:"uptime_seconds"`
	BitrateIn        int64 `json:"bitrate_in"`
	Viewers          int
	Tracks           []struct {
		Codec, Kind, Codecs string
		Profile, Level      string
		BitDepth            int `json:"bit_depth"`
		Width, Height       int
	}
	Playback struct{ TS, HLS, DASH string }
}

// fakeClock is a settable clock for the viewer window and uptime.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// clientFrom fetches from a given loopback address, so a test can be several viewers.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return d.DialContext(ctx, network, addr)
		},
	}}
}

func TestStreamAPI(t *testing.T) {
	clock := &fakeClock{now: time.Now().Add(time.Minute)}
	srv, _ := newServerCfg(t, false, httpserve.Config{Now: clock.Now})
	f := demoFiles(t, srv)

	stream := func(t *testing.T) apiStream {
		t.Helper()
		res, body := get(t, srv.URL+"/api/streams/live/demo", nil)
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("GET one: %d %q %s", res.StatusCode, res.Header.Get("Content-Type"), body)
		}
		var s apiStream
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	s := stream(t)
	if s.App != "live" || s.Name != "demo" || s.State != "live" || s.Segments != 2 || s.Bytes <= 0 {
		t.Errorf("stream %+v", s)
	}
	if s.Uptime < 59 || s.Uptime > 61 {
		t.Errorf("uptime_seconds %d, want about 60 (clock a minute ahead)", s.Uptime)
	}
	// The synthetic media is 7-byte video frames and 3-byte audio frames at 25
	// and ~47.6 per second in CMAF fragments: some kbit/s, far from zero or Mbit/s.
	if s.BitrateIn < 1000 || s.BitrateIn > 100_000 {
		t.Errorf("bitrate_in %d", s.BitrateIn)
	}
	if s.Playback.TS != "/live/demo/ts/index.m3u8" || s.Playback.HLS != "/live/demo/index.m3u8" || s.Playback.DASH != "/live/demo/index.mpd" {
		t.Errorf("playback %+v", s.Playback)
	}
	for _, u := range []string{s.Playback.TS, s.Playback.HLS, s.Playback.DASH} {
		if res, _ := get(t, srv.URL+u, nil); res.StatusCode != 200 {
			t.Errorf("playback URL %s: %d", u, res.StatusCode)
		}
	}
	if len(s.Tracks) != 2 || s.Tracks[0].Codecs != "avc1.64001e" || s.Tracks[0].Width != 640 || s.Tracks[0].Height != 360 || s.Tracks[1].Kind != "audio" ||
		s.Tracks[0].Profile != "High" || s.Tracks[0].Level != "3.0" || s.Tracks[0].BitDepth != 8 || s.Tracks[1].Profile != "LC" {
		t.Errorf("tracks %+v", s.Tracks)
	}
	if s.Viewers != 0 {
		t.Errorf("viewers %d before any segment fetch", s.Viewers)
	}

	// Playlists do not count; segments do, once per address.
	fetch := func(c *http.Client, url string) {
		t.Helper()
		res, err := c.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	one, two := clientFrom("127.0.0.1"), clientFrom("127.0.0.2")
	defer one.CloseIdleConnections()
	defer two.CloseIdleConnections()
	fetch(one, f.tsPlaylist)
	if s := stream(t); s.Viewers != 0 {
		t.Errorf("viewers %d after a playlist fetch", s.Viewers)
	}
	fetch(one, f.tsSegment)
	fetch(one, f.fragment)
	if s := stream(t); s.Viewers != 1 {
		t.Errorf("viewers %d after one client's segments", s.Viewers)
	}
	fetch(two, f.fragment)
	if s := stream(t); s.Viewers != 2 {
		t.Errorf("viewers %d after two clients' segments", s.Viewers)
	}
	clock.Add(20 * time.Second)
	fetch(two, f.init)
	clock.Add(15 * time.Second)
	if s := stream(t); s.Viewers != 1 {
		t.Errorf("viewers %d 35 s after one client's last fetch and 15 s after the other's", s.Viewers)
	}
	clock.Add(20 * time.Second)
	if s := stream(t); s.Viewers != 0 {
		t.Errorf("viewers %d after everyone left", s.Viewers)
	}

	res, body := get(t, srv.URL+"/api/streams", nil)
	var list []apiStream
	if err := json.Unmarshal([]byte(body), &list); err != nil || res.StatusCode != 200 || len(list) != 1 || list[0].Name != "demo" {
		t.Errorf("list: %d %v %s", res.StatusCode, err, body)
	}
	for _, path := range []string{"/api/streams/live/nope", "/api/streams/nope/demo"} {
		if res, body := get(t, srv.URL+path, nil); res.StatusCode != 404 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", path, res.StatusCode, body)
		}
	}
}

func TestStreamAPIEnded(t *testing.T) {
	srv := newServer(t, true)
	res, body := get(t, srv.URL+"/api/streams/live/demo", nil)
	var s apiStream
	if err := json.Unmarshal([]byte(body), &s); err != nil || res.StatusCode != 200 {
		t.Fatalf("%d %v %s", res.StatusCode, err, body)
	}
	if s.State != "ended" || s.Segments != 3 {
		t.Errorf("ended stream %+v", s)
	}
}

func TestDeleteStream(t *testing.T) {
	const token = "0123456789abcdef-token"
	errBoom := errors.New("boom")
	for _, tc := range []struct {
		name          string
		configured    string
		kick          error // returned by the kick func
		noKick        bool
		path, auth    string
		status        int
		wantKickCalls int
	}{
		{name: "read-only API", path: "live/demo", auth: "Bearer " + token, status: 403},
		{name: "read-only API, no header", path: "live/demo", status: 403},
		{name: "no header", configured: token, path: "live/demo", status: 401},
		{name: "wrong token", configured: token, path: "live/demo", auth: "Bearer nope", status: 401},
		{name: "token prefix", configured: token, path: "live/demo", auth: "Bearer " + token[:10], status: 401},
		{name: "basic scheme", configured: token, path: "live/demo", auth: "Basic " + token, status: 401},
		{name: "right token", configured: token, path: "live/demo", auth: "Bearer " + token, status: 204, wantKickCalls: 1},
		{name: "scheme case", configured: token, path: "live/demo", auth: "bearer " + token, status: 204, wantKickCalls: 1},
		{name: "unknown stream", configured: token, path: "live/nope", auth: "Bearer " + token, status: 404},
		{name: "kick not wired", configured: token, noKick: true, path: "live/demo", auth: "Bearer " + token, status: 501},
		{name: "kick fails", configured: token, kick: errBoom, path: "live/demo", auth: "Bearer " + token, status: 500, wantKickCalls: 1},
		{name: "kick finds nothing", configured: token, kick: packager.ErrNotFound, path: "live/demo", auth: "Bearer " + token, status: 404, wantKickCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			cfg := httpserve.Config{APIToken: tc.configured}
			if !tc.noKick {
				cfg.Kick = func(app, name string) error {
					calls = append(calls, app+"/"+name)
					return tc.kick
				}
			}
			srv, _ := newServerCfg(t, false, cfg)
			h := map[string]string{}
			if tc.auth != "" {
				h["Authorization"] = tc.auth
			}
			res, body := do(t, http.MethodDelete, srv.URL+"/api/streams/"+tc.path, h)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if len(calls) != tc.wantKickCalls || (len(calls) == 1 && calls[0] != "live/demo") {
				t.Errorf("kick calls %v", calls)
			}
			if tc.status == 401 && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge")
			}
		})
	}
}

func TestReconnectStream(t *testing.T) {
	const token = "0123456789abcdef-token"
	for _, tc := range []struct {
		name       string
		configured string
		err        error // returned by the reconnect func
		notWired   bool
		path, auth string
		status     int
		wantCalls  int
	}{
		{name: "read-only API", path: "live/demo", auth: "Bearer " + token, status: 403},
		{name: "no header", configured: token, path: "live/demo", status: 401},
		{name: "wrong token", configured: token, path: "live/demo", auth: "Bearer nope", status: 401},
		{name: "right token", configured: token, path: "live/demo", auth: "Bearer " + token, status: 202, wantCalls: 1},
		{name: "unknown stream", configured: token, path: "live/nope", auth: "Bearer " + token, status: 404},
		{name: "not wired", configured: token, notWired: true, path: "live/demo", auth: "Bearer " + token, status: 501},
		{name: "no publisher", configured: token, err: packager.ErrNotLive, path: "live/demo", auth: "Bearer " + token, status: 409, wantCalls: 1},
		{name: "publisher cannot", configured: token, err: httpserve.ErrReconnectUnsupported, path: "live/demo", auth: "Bearer " + token, status: 409, wantCalls: 1},
		{name: "fails", configured: token, err: errors.New("boom"), path: "live/demo", auth: "Bearer " + token, status: 500, wantCalls: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls []string
			cfg := httpserve.Config{APIToken: tc.configured}
			if !tc.notWired {
				cfg.Reconnect = func(app, name string) error {
					calls = append(calls, app+"/"+name)
					return tc.err
				}
			}
			srv, _ := newServerCfg(t, false, cfg)
			h := map[string]string{}
			if tc.auth != "" {
				h["Authorization"] = tc.auth
			}
			res, body := do(t, http.MethodPost, srv.URL+"/api/streams/"+tc.path+"/reconnect", h)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if len(calls) != tc.wantCalls || (len(calls) == 1 && calls[0] != "live/demo") {
				t.Errorf("reconnect calls %v", calls)
			}
		})
	}
}

// TestStreamAPIHidesPublisherAddress: a publisher's address is shown only to a
// request carrying the API token, on the list and on one stream.
func TestStreamAPIHidesPublisherAddress(t *testing.T) {
	const token = "0123456789abcdef-token"
	for _, tc := range []struct {
		name, configured, auth string
		shown                  bool
	}{
		{name: "read-only API", auth: "Bearer " + token},
		{name: "no header", configured: token},
		{name: "wrong token", configured: token, auth: "Bearer 0123456789abcdef-nope"},
		{name: "right token", configured: token, auth: "Bearer " + token, shown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := newServerCfg(t, false, httpserve.Config{APIToken: tc.configured})
			h := map[string]string{}
			if tc.auth != "" {
				h["Authorization"] = tc.auth
			}
			for _, path := range []string{"/api/streams", "/api/streams/live/demo"} {
				res, body := get(t, srv.URL+path, h)
				if res.StatusCode != 200 {
					t.Fatalf("%s: %d %s", path, res.StatusCode, body)
				}
				if got := strings.Contains(body, `"remote":"127.0.0.1:5000"`); got != tc.shown {
					t.Errorf("%s: address shown %v, want %v: %s", path, got, tc.shown, body)
				}
				if !tc.shown && strings.Contains(body, "127.0.0.1") {
					t.Errorf("%s: an address leaks: %s", path, body)
				}
			}
		})
	}
}
