package httpserve

import (
	"net/http"
	"strconv"
	"time"
)

// Players on other origins read playlists, MPDs, segments and /time, and need a few
// response headers that CORS hides by default: Content-Range for byte-range
// segment loads, ETag and Last-Modified for revalidation, Date for dash.js's
// http-head clock sync.
const (
	corsExposeHeaders = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, Date, Age"
	corsAllowHeaders  = "Range, If-None-Match, If-Modified-Since, If-Range, Origin, Accept, Content-Type, Cache-Control"
	corsAllowMethods  = "GET, HEAD, OPTIONS"
)

// Header values shared by every response (see the note on acceptRanges in
// object.go).
var (
	corsAnyOrigin = []string{"*"}
	corsExpose    = []string{corsExposeHeaders}
)

// cors marks every response of a player route, 404s included, as readable from
// any origin. Media is public; nothing here uses cookies.
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setCORS(w.Header())
		next.ServeHTTP(w, r)
	})
}

// setCORS marks a response readable from any origin; the fast path in
// ServeHTTP calls it for the requests it takes from chi.
func setCORS(h http.Header) {
	h["Access-Control-Allow-Origin"] = corsAnyOrigin
	h["Access-Control-Expose-Headers"] = corsExpose
}

// preflight answers a CORS preflight. Players send one for Range requests and
// conditional GETs, so caching it for a day saves a round trip per segment.
func preflight(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", corsAllowMethods)
	h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
	h.Set("Access-Control-Max-Age", "86400")
	h.Set("Allow", corsAllowMethods)
	w.WriteHeader(http.StatusNoContent)
}

// xsDateTime is the DASH UTCTiming urn:mpeg:dash:utc:http-xsdate:2014 format: an
// xs:dateTime in UTC with milliseconds.
const xsDateTime = "2006-01-02T15:04:05.000Z"

// serveTime is the clock DASH players synchronise with (the MPD's UTCTiming
// element points here), so it must never come from a cache.
func serveTime(w http.ResponseWriter, r *http.Request) {
	body := time.Now().UTC().Format(xsDateTime)
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write([]byte(body))
}
