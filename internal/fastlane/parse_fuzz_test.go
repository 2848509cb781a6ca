package fastlane

import (
	"bufio"
	"bytes"
	"net/http"
	"reflect"
	"testing"
)

// FuzzLaneParse checks the fast lane's request parser against net/http's: a
// request the lane takes must be one net/http parses to the same method,
// target, Host, header fields and Close, with nothing left to read as its
// body. A verdict may be "hand off" for anything; it must never be "take" for
// a request net/http would see differently.
func FuzzLaneParse(f *testing.F) {
	f.Add([]byte("GET /live/demo/index.m3u8 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"), 4096)
	f.Add([]byte("HEAD /live/demo/v/index.m3u8 HTTP/1.1\r\nhost: x\r\nAccept-Encoding: gzip\r\nConnection: keep-alive, close\r\n\r\nGET /"), 4096)
	f.Add([]byte("GET /a/b/c HTTP/1.1\r\nHost: h\r\nPragma: no-cache\r\nX-A: 1\r\nx-a:  2 \r\n\r\n"), 64)
	f.Add([]byte("GET /a/b/c HTTP/1.1\nHost: h\n\n"), 4096)
	f.Add([]byte("GET /a/b/c?_HLS_msn=3 HTTP/1.1\r\nHost: h\r\n\r\n"), 4096)
	f.Add([]byte("GET /a/b/c HTTP/1.1\r\nHost: h\r\nRange: bytes=0-1\r\n\r\n"), 4096)
	f.Add([]byte("GET /a/b/c HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n"), 4096)
	f.Fuzz(func(t *testing.T, b []byte, limit int) {
		if limit < 16 || limit > 1<<16 {
			limit = 4096
		}
		var p request
		v := parseRequest(b, limit, &p)
		if v != verdictTake {
			return
		}
		if p.size > len(b) || p.size > limit {
			t.Fatalf("size %d of %d bytes, limit %d", p.size, len(b), limit)
		}
		lc := &conn{p: p, req: &http.Request{}, remote: "192.0.2.1:1"}
		lc.load()
		got := lc.req

		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(b[:p.size])))
		if err != nil {
			t.Fatalf("lane takes what net/http refuses (%v): %q", err, b[:p.size])
		}
		delete(want.Header, "Host") // as http.Server does
		if want.Method != got.Method || want.RequestURI != got.RequestURI || want.Host != got.Host ||
			want.URL.Path != got.URL.Path || want.URL.RawPath != "" || want.URL.RawQuery != "" ||
			want.Close != got.Close || want.Proto != got.Proto || want.ContentLength != 0 {
			t.Fatalf("lane %s %q host %q close %v; net/http %s %q path %q raw %q host %q close %v",
				got.Method, got.RequestURI, got.Host, got.Close, want.Method, want.RequestURI,
				want.URL.Path, want.URL.RawPath, want.Host, want.Close)
		}
		if len(want.Header) == 0 && len(got.Header) == 0 {
			return
		}
		if !reflect.DeepEqual(want.Header, got.Header) {
			t.Fatalf("header: lane %q, net/http %q", got.Header, want.Header)
		}
		// The Handler's LaneTakes, and whatever routes on the URL (httpserve's
		// splitObjectPath), sees what it would see under net/http.
		if *got.URL != *want.URL {
			t.Fatalf("URL differs for %q: lane %#v, net/http %#v", got.RequestURI, *got.URL, *want.URL)
		}
	})
}

// The parser reuses the previous request's strings when the bytes match: a
// second, different request must not see the first one's values.
func TestLaneLoadReuse(t *testing.T) {
	lc := &conn{req: &http.Request{}}
	parse := func(s string) {
		t.Helper()
		if v := parseRequest([]byte(s), 4096, &lc.p); v != verdictTake {
			t.Fatalf("verdict %d for %q", v, s)
		}
		lc.load()
	}
	parse("GET /live/a/index.m3u8 HTTP/1.1\r\nHost: h1\r\nX-Forwarded-Proto: https\r\nAccept-Encoding: gzip\r\n\r\n")
	parse("HEAD /live/b/index.mpd HTTP/1.1\r\nHost: h2\r\nAccept-Encoding: br\r\nPragma: no-cache\r\n\r\n")
	r := lc.req
	if r.Method != http.MethodHead || r.URL.Path != "/live/b/index.mpd" || r.Host != "h2" {
		t.Fatalf("request %s %s host %s", r.Method, r.URL.Path, r.Host)
	}
	want := http.Header{"Accept-Encoding": {"br"}, "Pragma": {"no-cache"}, "Cache-Control": {"no-cache"}}
	if !reflect.DeepEqual(r.Header, want) {
		t.Fatalf("header %q, want %q", r.Header, want)
	}
}
