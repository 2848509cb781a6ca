package httpserve_test

import (
	"compress/gzip"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/httpserve"
)

// files names one file of each kind the demo stream serves.
type files struct {
	tsPlaylist, multivariant, videoPlaylist, audioPlaylist, mpd string
	tsSegment, fragment, init                                   string
}

func demoFiles(t *testing.T, srv *httptest.Server) files {
	t.Helper()
	base := srv.URL + "/live/demo/"
	f := files{
		tsPlaylist: base + "ts/index.m3u8", multivariant: base + "index.m3u8",
		videoPlaylist: base + "v/index.m3u8", audioPlaylist: base + "a/index.m3u8", mpd: base + "index.mpd",
	}
	_, pl := get(t, f.tsPlaylist, nil)
	if m := regexp.MustCompile(`(?m)^(\S+\.ts)$`).FindStringSubmatch(pl); m != nil {
		f.tsSegment = base + "ts/" + m[1]
	}
	_, vpl := get(t, f.videoPlaylist, nil)
	if m := regexp.MustCompile(`(?m)^(\S+\.m4s)$`).FindStringSubmatch(vpl); m != nil {
		f.fragment = base + "v/" + m[1]
	}
	if m := regexp.MustCompile(`EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(vpl); m != nil {
		f.init = base + "v/" + m[1]
	}
	if f.tsSegment == "" || f.fragment == "" || f.init == "" {
		t.Fatalf("demo stream lacks files:\n%s\n%s", pl, vpl)
	}
	return f
}

func TestCacheHeaders(t *testing.T) {
	srv := newServer(t, false)
	f := demoFiles(t, srv)
	const doc, media = "public, max-age=1", "public, max-age=86400, immutable"
	for _, tc := range []struct {
		name, url, cacheControl, contentType string
		status                               int
	}{
		{"ts playlist", f.tsPlaylist, doc, "application/vnd.apple.mpegurl", 200},
		{"multivariant", f.multivariant, doc, "application/vnd.apple.mpegurl", 200},
		{"video playlist", f.videoPlaylist, doc, "application/vnd.apple.mpegurl", 200},
		{"audio playlist", f.audioPlaylist, doc, "application/vnd.apple.mpegurl", 200},
		{"mpd", f.mpd, doc, "application/dash+xml", 200},
		{"ts segment", f.tsSegment, media, "video/mp2t", 200},
		{"fragment", f.fragment, media, "video/mp4", 200},
		{"init", f.init, media, "video/mp4", 200},
		{"unknown stream", srv.URL + "/live/nope/index.mpd", doc, "text/plain; charset=utf-8", 404},
		{"unknown segment", srv.URL + "/live/demo/v/nope.m4s", doc, "text/plain; charset=utf-8", 404},
		{"unknown path", srv.URL + "/nope", doc, "text/plain; charset=utf-8", 404},
		{"time", srv.URL + "/time", "no-store", "text/plain; charset=utf-8", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, _ := get(t, tc.url, nil)
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.status)
			}
			if cc := res.Header.Get("Cache-Control"); cc != tc.cacheControl {
				t.Errorf("Cache-Control %q, want %q", cc, tc.cacheControl)
			}
			if ct := res.Header.Get("Content-Type"); ct != tc.contentType {
				t.Errorf("Content-Type %q, want %q", ct, tc.contentType)
			}
			if tc.status == 200 && tc.cacheControl == media {
				if res.Header.Get("ETag") == "" || res.Header.Get("Last-Modified") == "" {
					t.Errorf("immutable object without validators: %v", res.Header)
				}
			}
			if tc.status == 200 && tc.cacheControl == doc {
				if res.Header.Get("ETag") == "" || !strings.Contains(res.Header.Get("Vary"), "Accept-Encoding") {
					t.Errorf("document without ETag or Vary: %v", res.Header)
				}
				// A date validator would let a CDN keep a playlist that changed
				// within the same second.
				if lm := res.Header.Get("Last-Modified"); lm != "" {
					t.Errorf("document with Last-Modified %q", lm)
				}
			}
		})
	}
}

func TestCORS(t *testing.T) {
	srv := newServer(t, false)
	f := demoFiles(t, srv)
	for _, url := range []string{f.tsPlaylist, f.mpd, f.tsSegment, f.fragment, f.init, srv.URL + "/time", srv.URL + "/live/nope/index.m3u8"} {
		t.Run("GET "+strings.TrimPrefix(url, srv.URL), func(t *testing.T) {
			res, _ := get(t, url, map[string]string{"Origin": "https://player.example"})
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Allow-Origin %q", got)
			}
			exp := res.Header.Get("Access-Control-Expose-Headers")
			for _, h := range []string{"Content-Length", "Content-Range", "ETag", "Date"} {
				if !strings.Contains(exp, h) {
					t.Errorf("Expose-Headers %q lacks %s", exp, h)
				}
			}
		})
		t.Run("OPTIONS "+strings.TrimPrefix(url, srv.URL), func(t *testing.T) {
			res, body := do(t, http.MethodOptions, url, map[string]string{
				"Origin": "https://player.example", "Access-Control-Request-Method": "GET",
				"Access-Control-Request-Headers": "range, if-none-match",
			})
			if res.StatusCode != http.StatusNoContent || body != "" {
				t.Fatalf("preflight: %d %q", res.StatusCode, body)
			}
			if got := res.Header.Get("Access-Control-Allow-Origin"); got != "*" {
				t.Errorf("Allow-Origin %q", got)
			}
			methods := res.Header.Get("Access-Control-Allow-Methods")
			for _, m := range []string{"GET", "HEAD", "OPTIONS"} {
				if !strings.Contains(methods, m) {
					t.Errorf("Allow-Methods %q lacks %s", methods, m)
				}
			}
			headers := strings.ToLower(res.Header.Get("Access-Control-Allow-Headers"))
			for _, h := range []string{"range", "if-none-match", "if-modified-since"} {
				if !strings.Contains(headers, h) {
					t.Errorf("Allow-Headers %q lacks %s", headers, h)
				}
			}
		})
	}
	// The API and metrics are for operators, not players on other origins.
	res, _ := get(t, srv.URL+"/api/streams", nil)
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("API answers with CORS headers")
	}
}

func TestConditional(t *testing.T) {
	srv := newServer(t, false)
	f := demoFiles(t, srv)
	for _, url := range []string{f.tsSegment, f.fragment, f.init} {
		t.Run(strings.TrimPrefix(url, srv.URL), func(t *testing.T) {
			res, body := get(t, url, nil)
			etag, lm := res.Header.Get("ETag"), res.Header.Get("Last-Modified")
			if !regexp.MustCompile(`^"[0-9a-f]+-[0-9a-f]+"$`).MatchString(etag) {
				t.Fatalf("ETag %q is not strong", etag)
			}
			if n, _ := strconv.ParseUint(etag[strings.IndexByte(etag, '-')+1:len(etag)-1], 16, 64); int(n) != len(body) {
				t.Errorf("ETag %q does not carry the size %d", etag, len(body))
			}
			modTime, err := http.ParseTime(lm)
			if err != nil {
				t.Fatalf("Last-Modified %q: %v", lm, err)
			}
			for _, c := range []struct {
				name   string
				header map[string]string
				status int
			}{
				{"If-None-Match same", map[string]string{"If-None-Match": etag}, 304},
				{"If-None-Match list", map[string]string{"If-None-Match": `"x", ` + etag}, 304},
				{"If-None-Match other", map[string]string{"If-None-Match": `"other"`}, 200},
				{"If-Modified-Since same", map[string]string{"If-Modified-Since": lm}, 304},
				{"If-Modified-Since later", map[string]string{"If-Modified-Since": modTime.Add(time.Hour).Format(http.TimeFormat)}, 304},
				{"If-Modified-Since earlier", map[string]string{"If-Modified-Since": modTime.Add(-time.Hour).Format(http.TimeFormat)}, 200},
			} {
				t.Run(c.name, func(t *testing.T) {
					res, b := get(t, url, c.header)
					if res.StatusCode != c.status {
						t.Fatalf("status %d, want %d", res.StatusCode, c.status)
					}
					if c.status == 304 && (b != "" || res.Header.Get("ETag") != etag) {
						t.Errorf("304 with %d bytes, ETag %q", len(b), res.Header.Get("ETag"))
					}
					if c.status == 200 && b != body {
						t.Errorf("200 body differs")
					}
				})
			}
		})
	}
	// Documents revalidate by ETag, one per encoding.
	for _, url := range []string{f.tsPlaylist, f.mpd} {
		t.Run(strings.TrimPrefix(url, srv.URL), func(t *testing.T) {
			res, _ := get(t, url, nil)
			plain := res.Header.Get("ETag")
			res, _ = get(t, url, map[string]string{"Accept-Encoding": "gzip"})
			gz := res.Header.Get("ETag")
			if plain == "" || gz == "" || plain == gz {
				t.Fatalf("ETags plain %q gzip %q", plain, gz)
			}
			if res, _ := get(t, url, map[string]string{"If-None-Match": plain}); res.StatusCode != 304 {
				t.Errorf("If-None-Match plain: %d", res.StatusCode)
			}
			if res, _ := get(t, url, map[string]string{"If-None-Match": gz, "Accept-Encoding": "gzip"}); res.StatusCode != 304 {
				t.Errorf("If-None-Match gzip: %d", res.StatusCode)
			}
			if res, _ := get(t, url, map[string]string{"If-None-Match": gz}); res.StatusCode != 200 {
				t.Errorf("gzip ETag on an identity request: %d", res.StatusCode)
			}
		})
	}
}

func TestRangeAndHead(t *testing.T) {
	srv := newServer(t, true)
	f := demoFiles(t, srv)
	for _, url := range []string{f.tsSegment, f.fragment, f.init} {
		t.Run(strings.TrimPrefix(url, srv.URL), func(t *testing.T) {
			_, body := get(t, url, nil)
			if len(body) < 200 {
				t.Fatalf("%d bytes", len(body))
			}
			for _, c := range []struct {
				rng, want, contentRange string
			}{
				{"bytes=0-99", body[:100], "bytes 0-99/" + strconv.Itoa(len(body))},
				{"bytes=100-", body[100:], "bytes 100-" + strconv.Itoa(len(body)-1) + "/" + strconv.Itoa(len(body))},
				{"bytes=-10", body[len(body)-10:], "bytes " + strconv.Itoa(len(body)-10) + "-" + strconv.Itoa(len(body)-1) + "/" + strconv.Itoa(len(body))},
			} {
				res, part := get(t, url, map[string]string{"Range": c.rng})
				if res.StatusCode != http.StatusPartialContent || part != c.want || res.Header.Get("Content-Range") != c.contentRange {
					t.Errorf("%s: %d, %d bytes, Content-Range %q", c.rng, res.StatusCode, len(part), res.Header.Get("Content-Range"))
				}
			}
			res, _ := get(t, url, map[string]string{"Range": "bytes=" + strconv.Itoa(len(body)) + "-"})
			if res.StatusCode != http.StatusRequestedRangeNotSatisfiable {
				t.Errorf("range past the end: %d", res.StatusCode)
			}
			res, head := do(t, http.MethodHead, url, nil)
			if res.StatusCode != 200 || head != "" || res.Header.Get("Content-Length") != strconv.Itoa(len(body)) || res.Header.Get("ETag") == "" {
				t.Errorf("HEAD: %d, %d bytes, Content-Length %q", res.StatusCode, len(head), res.Header.Get("Content-Length"))
			}
		})
	}
	for _, url := range []string{f.tsPlaylist, f.mpd} {
		res, head := do(t, http.MethodHead, url, nil)
		_, body := get(t, url, nil)
		if res.StatusCode != 200 || head != "" || res.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
			t.Errorf("HEAD %s: %d, %d bytes, Content-Length %q", url, res.StatusCode, len(head), res.Header.Get("Content-Length"))
		}
	}
}

func TestGzip(t *testing.T) {
	srv := newServer(t, false)
	f := demoFiles(t, srv)
	for _, tc := range []struct {
		url  string
		gzip bool
	}{
		{f.tsPlaylist, true}, {f.multivariant, true}, {f.videoPlaylist, true}, {f.audioPlaylist, true}, {f.mpd, true},
		{f.tsSegment, false}, {f.fragment, false}, {f.init, false},
	} {
		t.Run(strings.TrimPrefix(tc.url, srv.URL), func(t *testing.T) {
			_, plain := get(t, tc.url, nil)
			for _, ae := range []string{"gzip", "br, gzip;q=0.5", "*", "deflate, x-gzip"} {
				res, body := get(t, tc.url, map[string]string{"Accept-Encoding": ae})
				if !tc.gzip {
					if ce := res.Header.Get("Content-Encoding"); ce != "" || body != plain {
						t.Errorf("%q: media with Content-Encoding %q", ae, ce)
					}
					continue
				}
				if ce := res.Header.Get("Content-Encoding"); ce != "gzip" {
					t.Fatalf("%q: Content-Encoding %q", ae, ce)
				}
				zr, err := gzip.NewReader(strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				dec, err := io.ReadAll(zr)
				if err != nil || string(dec) != plain {
					t.Errorf("%q: gzip body does not decode to the plain one (%v)", ae, err)
				}
				if res.Header.Get("Content-Length") != strconv.Itoa(len(body)) {
					t.Errorf("Content-Length %q, %d bytes", res.Header.Get("Content-Length"), len(body))
				}
			}
			for _, ae := range []string{"", "identity", "gzip;q=0", "gzip;q=0, *", "br"} {
				res, body := get(t, tc.url, map[string]string{"Accept-Encoding": ae})
				if res.Header.Get("Content-Encoding") != "" || body != plain {
					t.Errorf("%q: Content-Encoding %q", ae, res.Header.Get("Content-Encoding"))
				}
			}
		})
	}
}

// TestMPDDoesNotVaryByRequest: the MPD's UTCTiming URL is the absolute path
// /time, or under the configured public base URL; Host and X-Forwarded-*
// change nothing, so every client gets the same bytes and ETag per encoding.
func TestMPDDoesNotVaryByRequest(t *testing.T) {
	type mpd struct {
		UTCTiming struct {
			Scheme string `xml:"schemeIdUri,attr"`
			Value  string `xml:"value,attr"`
		}
	}
	for _, base := range []struct{ cfg, want string }{{"", "/time"}, {"https://cdn.example/", "https://cdn.example/time"}} {
		srv, _ := newServerCfg(t, false, httpserve.Config{PublicBaseURL: base.cfg})
		f := demoFiles(t, srv)
		etags := map[string]bool{}
		for _, header := range []map[string]string{
			nil,
			{"Host": "cdn.example:8443"},
			{"Host": "evil.example", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
			{"Host": "a&b'c"},
		} {
			for _, ae := range []string{"", "gzip"} {
				h := map[string]string{"Accept-Encoding": ae}
				for k, v := range header {
					h[k] = v
				}
				res, body := get(t, f.mpd, h)
				if res.StatusCode != 200 {
					t.Fatalf("status %d", res.StatusCode)
				}
				if ae == "gzip" {
					zr, err := gzip.NewReader(strings.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					b, _ := io.ReadAll(zr)
					body = string(b)
				}
				var m mpd
				if err := xml.Unmarshal([]byte(body), &m); err != nil {
					t.Fatalf("MPD does not parse: %v\n%s", err, body)
				}
				if m.UTCTiming.Value != base.want || m.UTCTiming.Scheme != "urn:mpeg:dash:utc:http-xsdate:2014" {
					t.Errorf("headers %v: UTCTiming %+v, want %q", header, m.UTCTiming, base.want)
				}
				if v := res.Header.Get("Vary"); v != "Accept-Encoding" {
					t.Errorf("Vary %q", v)
				}
				etags[res.Header.Get("ETag")] = true
			}
		}
		if len(etags) != 2 {
			t.Errorf("base %q: %d distinct ETags, want one per encoding", base.cfg, len(etags))
		}
	}
}

func TestTime(t *testing.T) {
	srv := newServer(t, false)
	before := time.Now().Add(-time.Millisecond)
	res, body := get(t, srv.URL+"/time", nil)
	after := time.Now().Add(time.Millisecond)
	if res.StatusCode != 200 || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`).MatchString(body) {
		t.Fatalf("/time: %d %q", res.StatusCode, body)
	}
	got, err := time.Parse(time.RFC3339Nano, body)
	if err != nil || got.Before(before.Truncate(time.Millisecond)) || got.After(after) {
		t.Errorf("/time %q (%v) not between %v and %v", body, err, before, after)
	}
	if res.Header.Get("Cache-Control") != "no-store" || res.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("/time headers %v", res.Header)
	}
	res, head := do(t, http.MethodHead, srv.URL+"/time", nil)
	if res.StatusCode != 200 || head != "" || res.Header.Get("Date") == "" {
		t.Errorf("HEAD /time: %d %q %v", res.StatusCode, head, res.Header)
	}
}

// TestPlainGETAsServeContent holds the fast path for whole, unconditional GETs
// (headers prepared once, the body in one write) to what http.ServeContent, which
// answers every conditional request, sends for the same object: a non-matching
// If-None-Match makes the request go through ServeContent and still get a 200.
func TestPlainGETAsServeContent(t *testing.T) {
	srv := newServer(t, false)
	f := demoFiles(t, srv)
	for _, url := range []string{f.tsPlaylist, f.multivariant, f.videoPlaylist, f.audioPlaylist, f.mpd, f.tsSegment, f.fragment, f.init} {
		for _, enc := range []string{"", "gzip"} {
			t.Run(strings.TrimPrefix(url, srv.URL)+" "+enc, func(t *testing.T) {
				h := map[string]string{"Accept-Encoding": enc}
				fast, fastBody := get(t, url, h)
				h["If-None-Match"] = `"not-this-one"`
				slow, slowBody := get(t, url, h)
				if fast.StatusCode != 200 || slow.StatusCode != 200 || fastBody != slowBody || fastBody == "" {
					t.Fatalf("status %d and %d, bodies of %d and %d bytes differ", fast.StatusCode, slow.StatusCode, len(fastBody), len(slowBody))
				}
				if cl := fast.Header.Get("Content-Length"); cl != strconv.Itoa(len(fastBody)) {
					t.Errorf("Content-Length %q for %d bytes", cl, len(fastBody))
				}
				for k := range merge(fast.Header, slow.Header) {
					if k == "Date" || k == "Content-Length" && slow.Header.Get(k) == "" {
						continue // net/http's own; ServeContent leaves out the length of a gzip body
					}
					if a, b := fast.Header.Values(k), slow.Header.Values(k); strings.Join(a, "\n") != strings.Join(b, "\n") {
						t.Errorf("%s: %q, ServeContent %q", k, a, b)
					}
				}
			})
		}
	}
}

func merge(a, b http.Header) map[string]bool {
	keys := map[string]bool{}
	for k := range a {
		keys[k] = true
	}
	for k := range b {
		keys[k] = true
	}
	return keys
}
