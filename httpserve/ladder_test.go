package httpserve_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/test"
	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// TestLadderRoutes serves a ladder of live/demo_hi and live/demo_lo: its
// multivariant playlist and MPD at live/demo (gzip and conditional requests
// as any document), no other file under the ladder's name, each key's own
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
	// The ladder's MPD: the live members' Representations, their files
	// under the ladder's name, the time source filled in as a stream's.
	res, mpd := get(t, srv.URL+"/live/demo/index.mpd", nil)
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != packager.ContentTypeMPD || res.Header.Get("Cache-Control") == "" {
		t.Fatalf("ladder MPD: %d %s %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	for _, want := range []string{`<Representation id="demo_hi/v"`, `<Representation id="demo_lo/v"`, `<Representation id="demo_hi/a"`, `value="/time"`} {
		if !strings.Contains(mpd, want) {
			t.Errorf("ladder MPD has no %s:\n%s", want, mpd)
		}
	}
	if strings.Contains(mpd, "demo_mid") || strings.Index(mpd, "demo_hi/v") > strings.Index(mpd, "demo_lo/v") {
		t.Errorf("ladder MPD lists the member that left, or not highest first:\n%s", mpd)
	}
	tpl := regexp.MustCompile(`initialization="([^"]+)" media="([^"]+)"[^>]* startNumber="(\d+)"`)
	if m := tpl.FindAllStringSubmatch(mpd, -1); len(m) != 4 {
		t.Errorf("ladder MPD: %d SegmentTemplates, want 4:\n%s", len(m), mpd)
	}
	for _, m := range tpl.FindAllStringSubmatch(mpd, -1) {
		for _, u := range []string{m[1], strings.ReplaceAll(m[2], "$Number$", m[3])} {
			if res, _ := get(t, srv.URL+"/live/demo/"+u, nil); res.StatusCode != http.StatusOK {
				t.Errorf("ladder MPD's %s: %d", u, res.StatusCode)
			}
		}
	}
	if res, _ := get(t, srv.URL+"/live/demo/index.mpd", map[string]string{"If-None-Match": res.Header.Get("Etag")}); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET of an unchanged ladder MPD: %d", res.StatusCode)
	}
	for _, p := range []string{"/live/demo/ts/index.m3u8", "/live/demo/v/index.m3u8", "/live/other/index.m3u8"} {
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
			DASH       string   `json:"dash"`
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
		if l == nil || l.Name != "demo" || l.HLS != "/live/demo/index.m3u8" || l.DASH != "/live/demo/index.mpd" || strings.Join(l.Renditions, ",") != "demo_hi,demo_lo" || !l.Aligned || l.Compared == 0 {
			t.Errorf("API %s: ladder %+v", e.Name, l)
		}
	}
}

// TestTrackLadderRoutes serves a multitrack publish of live/demo: track 0
// and the audio are the stream, track 1 the stream demo/v1 (OpenTrack). The
// stream's multivariant playlist is the ladder of both sharing its audio,
// track 1's files are under /live/demo/v1/, and the API names the ladder on
// both with the rendition's URLs under the stream's.
func TestTrackLadderRoutes(t *testing.T) {
	hub := packager.NewHub(packager.Config{}, zerolog.Nop())
	t.Cleanup(hub.Close)
	w, err := hub.Publish("live", "demo", "127.0.0.1:5000", func() {})
	if err != nil {
		t.Fatal(err)
	}
	tw, err := w.(remux.TrackOpener).OpenTrack(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tw.Close(nil); _ = w.Close(nil) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	small := *test.Video
	small.Width, small.Height = 320, 180
	must(w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true}))
	must(tw.WriteMetadata(&remux.Metadata{HasVideo: true}))
	must(w.WriteTrack(test.Video))
	must(w.WriteTrack(test.Audio))
	must(tw.WriteTrack(&small))
	for vdts, adts := int64(0), int64(0); vdts < 5000; vdts += 40 {
		for ; adts <= vdts; adts += 21 {
			must(w.WriteFrame(&remux.Frame{Track: test.Audio, DTS: adts, Key: true, Data: []byte{0x21, 0x10, 0x04}}))
		}
		key, nal := vdts%2000 == 0, byte(0x41)
		if key {
			nal = 0x65
		}
		for _, p := range []struct {
			w   remux.Writer
			tr  *remux.Track
			pad int
		}{{w, test.Video, 2000}, {tw, &small, 100}} {
			data := make([]byte, 7+p.pad)
			n := 3 + p.pad
			copy(data, []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), nal, 0x88, 0x84})
			must(p.w.WriteFrame(&remux.Frame{Track: p.tr, DTS: vdts, Key: key, Data: data}))
		}
	}
	srv := httptest.NewServer(httpserve.New(hub, httpserve.Config{}))
	t.Cleanup(srv.Close)

	res, body := get(t, srv.URL+"/live/demo/index.m3u8", nil)
	if res.StatusCode != http.StatusOK || strings.Count(body, "TYPE=AUDIO") != 1 || !strings.Contains(body, `URI="a/index.m3u8"`) ||
		!strings.Contains(body, "RESOLUTION=320x180,FRAME-RATE=25.000,AUDIO=\"aac\",CLOSED-CAPTIONS=NONE\nv1/v/index.m3u8\n") ||
		strings.Index(body, "\nv/index.m3u8\n") > strings.Index(body, "\nv1/v/index.m3u8\n") {
		t.Fatalf("ladder: %d\n%s", res.StatusCode, body)
	}
	// The stream's MPD is the ladder's: a video Representation per track,
	// track 1's files under v1/, the audio once.
	res, body = get(t, srv.URL+"/live/demo/index.mpd", nil)
	if res.StatusCode != http.StatusOK || strings.Count(body, `contentType="video"`) != 1 || strings.Count(body, "<Representation ") != 3 ||
		!strings.Contains(body, `initialization="v1/v/init-`) || strings.Contains(body, "%2F") || !strings.Contains(body, `media="a/`) {
		t.Fatalf("ladder MPD: %d\n%s", res.StatusCode, body)
	}
	_, v1 := get(t, srv.URL+"/live/demo/v1/v/index.m3u8", nil)
	seg := ""
	for _, l := range strings.Split(v1, "\n") {
		if strings.HasSuffix(l, ".m4s") && !strings.HasPrefix(l, "#") {
			seg = l
		}
	}
	for p, want := range map[string]int{
		"/live/demo/v1/index.m3u8": 200, "/live/demo/v1/index.mpd": 200, "/live/demo/v1/v/" + seg: 200,
		"/live/demo/v1/a/index.m3u8": 404, "/live/demo/v2/v/index.m3u8": 404, "/live/demo/v0/v/index.m3u8": 404,
		"/live/demo/index.mpd": 200, "/live/demo/v/index.m3u8": 200,
	} {
		if res, _ := get(t, srv.URL+p, nil); res.StatusCode != want {
			t.Errorf("%s: %d, want %d", p, res.StatusCode, want)
		}
	}
	if seg == "" {
		t.Fatalf("no segment in track 1's playlist:\n%s", v1)
	}
	_, body = get(t, srv.URL+"/api/streams", nil)
	var list []struct {
		Name     string `json:"name"`
		Playback struct {
			HLS string `json:"hls"`
		} `json:"playback"`
		Ladder *struct {
			Name       string   `json:"name"`
			HLS        string   `json:"hls"`
			Renditions []string `json:"renditions"`
		} `json:"ladder"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("API: %v %s", err, body)
	}
	for _, s := range list {
		if s.Playback.HLS != "/live/"+s.Name+"/index.m3u8" || s.Ladder == nil || s.Ladder.Name != "demo" || s.Ladder.HLS != "/live/demo/index.m3u8" ||
			strings.Join(s.Ladder.Renditions, " ") != "demo demo/v1" {
			t.Errorf("API %s: %s", s.Name, body)
		}
	}
}

// TestTrackLadderAudioRoutes serves a multitrack publish of live/demo with
// one video track and two audio tracks: audio track 1 is the stream
// demo/a1 (OpenAudioTrack), the stream's multivariant playlist lists both
// audio tracks in its one group, its MPD an AdaptationSet each, track 1's
// files are under /live/demo/a1/, and the API names it a rendition.
func TestTrackLadderAudioRoutes(t *testing.T) {
	hub := packager.NewHub(packager.Config{}, zerolog.Nop())
	t.Cleanup(hub.Close)
	w, err := hub.Publish("live", "demo", "127.0.0.1:5000", func() {})
	if err != nil {
		t.Fatal(err)
	}
	aw, err := w.(remux.AudioTrackOpener).OpenAudioTrack(1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = aw.Close(nil); _ = w.Close(nil) })
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true, AudioLabels: []remux.TrackLabel{{ID: 1, Name: "Español", Language: "es"}}}))
	must(aw.WriteMetadata(&remux.Metadata{HasAudio: true}))
	must(w.WriteTrack(test.Video))
	must(w.WriteTrack(test.Audio))
	must(aw.WriteTrack(test.Audio))
	for vdts, adts := int64(0), int64(0); vdts < 5000; vdts += 40 {
		for ; adts <= vdts; adts += 21 {
			must(w.WriteFrame(&remux.Frame{Track: test.Audio, DTS: adts, Key: true, Data: []byte{0x21, 0x10, 0x04}}))
			must(aw.WriteFrame(&remux.Frame{Track: test.Audio, DTS: adts, Key: true, Data: []byte{0x21, 0x10, 0x05}}))
		}
		key, nal := vdts%2000 == 0, byte(0x41)
		if key {
			nal = 0x65
		}
		must(w.WriteFrame(&remux.Frame{Track: test.Video, DTS: vdts, Key: key, Data: []byte{0, 0, 0, 3, nal, 0x88, 0x84}}))
	}
	srv := httptest.NewServer(httpserve.New(hub, httpserve.Config{}))
	t.Cleanup(srv.Close)

	res, body := get(t, srv.URL+"/live/demo/index.m3u8", nil)
	if res.StatusCode != http.StatusOK || strings.Count(body, "TYPE=AUDIO") != 2 || strings.Count(body, "#EXT-X-STREAM-INF") != 1 ||
		!strings.Contains(body, `NAME="Audio 1",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a/index.m3u8"`) ||
		!strings.Contains(body, `NAME="Español",LANGUAGE="es",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="a1/a/index.m3u8"`) {
		t.Fatalf("ladder: %d\n%s", res.StatusCode, body)
	}
	res, body = get(t, srv.URL+"/live/demo/index.mpd", nil)
	if res.StatusCode != http.StatusOK || strings.Count(body, `contentType="audio"`) != 2 || !strings.Contains(body, `lang="es">`) ||
		!strings.Contains(body, "<Label>Español</Label>") || !strings.Contains(body, `initialization="a1/a/init-`) {
		t.Fatalf("ladder MPD: %d\n%s", res.StatusCode, body)
	}
	_, a1 := get(t, srv.URL+"/live/demo/a1/a/index.m3u8", nil)
	seg := ""
	for _, l := range strings.Split(a1, "\n") {
		if strings.HasSuffix(l, ".m4s") && !strings.HasPrefix(l, "#") {
			seg = l
		}
	}
	if seg == "" {
		t.Fatalf("no segment in audio track 1's playlist:\n%s", a1)
	}
	for p, want := range map[string]int{
		"/live/demo/a1/index.m3u8": 200, "/live/demo/a1/index.mpd": 200, "/live/demo/a1/a/" + seg: 200, "/live/demo/a1/ts/index.m3u8": 200,
		"/live/demo/a1/v/index.m3u8": 404, "/live/demo/a2/a/index.m3u8": 404, "/live/demo/a0/a/index.m3u8": 404,
		"/live/demo/a/index.m3u8": 200,
	} {
		if res, _ := get(t, srv.URL+p, nil); res.StatusCode != want {
			t.Errorf("%s: %d, want %d", p, res.StatusCode, want)
		}
	}
	_, body = get(t, srv.URL+"/api/streams", nil)
	var list []struct {
		Name     string `json:"name"`
		Playback struct {
			HLS string `json:"hls"`
		} `json:"playback"`
		Ladder *struct {
			Name       string   `json:"name"`
			Renditions []string `json:"renditions"`
		} `json:"ladder"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list) != 2 {
		t.Fatalf("API: %v %s", err, body)
	}
	for _, s := range list {
		if s.Playback.HLS != "/live/"+s.Name+"/index.m3u8" || s.Ladder == nil || s.Ladder.Name != "demo" || strings.Join(s.Ladder.Renditions, " ") != "demo demo/a1" {
			t.Errorf("API %s: %s", s.Name, body)
		}
	}
}
