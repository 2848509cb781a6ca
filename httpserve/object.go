package httpserve

import (
	"bytes"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rtmpgate/rtmpgate/packager"
)

// object serves any file of a stream: playlists and the MPD (short-lived,
// gzip-compressed when accepted) and segments and init segments (immutable, never
// compressed: media does not shrink and CDNs serve byte ranges of it).
func (s *server) object(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	path := chi.URLParam(r, "*")
	if path == packager.VideoPlaylistPath || path == packager.AudioPlaylistPath {
		s.servePlaylist(w, r, st, path)
		return
	}
	obj, ok := st.Object(path)
	if !ok {
		if !s.serveUpcoming(w, r, st, path) {
			notFound(w, r)
		}
		return
	}
	if !obj.Immutable {
		w.Header().Set("Content-Type", obj.ContentType)
		s.serveDoc(w, r, st, path, obj)
		return
	}
	if r.Method == http.MethodGet {
		s.viewers.seen(chi.URLParam(r, "app"), chi.URLParam(r, "stream"), r.RemoteAddr, s.cfg.Now())
	}
	s.serveImmutable(w, r, path, obj)
}

// immutableETag is strong and needs no hashing of the body: an immutable object's
// path is unique per publish (it carries the publish epoch and a sequence number),
// so path and size identify its bytes.
func immutableETag(path string, size int) string {
	f := fnv.New64a()
	_, _ = f.Write([]byte(path))
	b := make([]byte, 0, 40)
	b = append(b, '"')
	b = strconv.AppendUint(b, f.Sum64(), 16)
	b = append(b, '-')
	b = strconv.AppendUint(b, uint64(size), 16)
	b = append(b, '"')
	return string(b)
}

// serveDoc serves a playlist or MPD. It sends an ETag but no Last-Modified: a
// playlist can change twice within a second, and If-Modified-Since has one-second
// resolution, so a CDN revalidating by date could be told 304 for a stale one.
func (s *server) serveDoc(w http.ResponseWriter, r *http.Request, st *packager.Stream, path string, obj packager.Object) {
	origin := ""
	vary := "Accept-Encoding"
	if obj.ContentType == packager.ContentTypeMPD {
		origin = requestOrigin(r)
		vary = "Accept-Encoding, X-Forwarded-Proto"
	}
	d := s.docs.get(st, path, origin, obj.Data)
	h := w.Header()
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.cfg.PlaylistMaxAge/time.Second)))
	h.Set("Vary", vary)
	body, etag := d.plain, d.etag
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = d.gzipped()
		h.Set("Content-Encoding", "gzip")
	}
	h.Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// requestOrigin is the scheme and host a request came to, XML-escaped for the MPD.
// A TLS-terminating proxy or CDN says the scheme in X-Forwarded-Proto; only http
// and https are believed.
func requestOrigin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p != "" {
		if i := strings.IndexByte(p, ','); i >= 0 {
			p = p[:i]
		}
		switch p = strings.ToLower(strings.TrimSpace(p)); p {
		case "http", "https":
			scheme = p
		}
	}
	host := r.Host
	if host == "" {
		host = "localhost"
	}
	return scheme + "://" + xmlEscaper.Replace(host)
}

// xmlEscaper keeps a Host header from breaking out of the MPD's attribute: net/http
// lets through & and ' in hosts.
var xmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")

// acceptsGzip reports whether an Accept-Encoding value allows gzip with a non-zero
// quality; "*" counts when gzip is not named.
func acceptsGzip(ae string) bool {
	star := false
	for ae != "" {
		var item string
		item, ae, _ = strings.Cut(ae, ",")
		coding, params, _ := strings.Cut(item, ";")
		switch coding = strings.TrimSpace(coding); {
		case strings.EqualFold(coding, "gzip"), strings.EqualFold(coding, "x-gzip"):
			return !zeroQuality(params)
		case coding == "*":
			star = !zeroQuality(params)
		}
	}
	return star
}

func zeroQuality(params string) bool {
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q <= 0
		}
	}
	return false
}
