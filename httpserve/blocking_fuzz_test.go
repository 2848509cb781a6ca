package httpserve

import (
	"net/http"
	"net/url"
	"testing"
)

// FuzzBlockingQuery feeds LL-HLS delivery directives to parseBlockingQuery: it
// must not panic, never block without a valid _HLS_msn, and never accept a part
// without one.
func FuzzBlockingQuery(f *testing.F) {
	f.Add("_HLS_msn=12&_HLS_part=3&_HLS_skip=YES")
	f.Add("_HLS_part=1")
	f.Add("_HLS_msn=-1&_HLS_msn=2")
	f.Add("_HLS_msn=99999999999999999999999&_HLS_part=%zz")
	f.Add("_HLS_skip=v2;_HLS_msn=1")
	f.Fuzz(func(t *testing.T, rawQuery string) {
		r := &http.Request{URL: &url.URL{Path: "/live/a/v/index.m3u8", RawQuery: rawQuery}}
		q := parseBlockingQuery(r)
		if q.malformed {
			return
		}
		v, _ := url.ParseQuery(rawQuery)
		if q.block != (v.Get("_HLS_msn") != "") {
			t.Fatalf("%q: block %v", rawQuery, q.block)
		}
		if q.part >= 0 && !q.block {
			t.Fatalf("%q: part %d without msn", rawQuery, q.part)
		}
	})
}
