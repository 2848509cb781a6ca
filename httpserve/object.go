package httpserve

import (
	"bytes"
	"errors"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rtmpgate/rtmpgate/packager"
)

// objectRoute serves a stream's file routed by chi (requests the fast path in
// ServeHTTP leaves to it).
func (s *server) objectRoute(w http.ResponseWriter, r *http.Request) {
	s.object(w, r, chi.URLParam(r, "app"), chi.URLParam(r, "stream"), chi.URLParam(r, "*"))
}

// object serves any file of a stream: playlists and the MPD (short-lived,
// gzip-compressed when accepted) and segments and init segments (immutable, never
// compressed: media does not shrink and CDNs serve byte ranges of it).
func (s *server) object(w http.ResponseWriter, r *http.Request, app, name, path string) {
	name, path = s.trackPath(app, name, path)
	st, err := s.hub.Stream(app, name)
	if err != nil {
		if errors.Is(err, packager.ErrNotFound) && s.serveLadder(w, r, app, name, path) {
			return
		}
		// Answered from this lookup's error: looking the stream up again could
		// find it just published and answer nothing (an empty 200).
		s.lookupFailed(w, r, err)
		return
	}
	if path == packager.VideoPlaylistPath || path == packager.AudioPlaylistPath {
		s.servePlaylist(w, r, st, path, nil)
		return
	}
	if (path == packager.MultivariantPath || path == packager.MPDPath) && s.serveTrackLadder(w, r, app, name, path) {
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
		s.serveDoc(w, r, st, path, obj)
		return
	}
	if r.Method == http.MethodGet {
		s.viewers.seen(app, name, s.clientAddr(r), s.cfg.Now())
	}
	s.serveImmutable(w, r, st, path, obj)
}

// Response headers are set here by assigning prepared values under canonical
// keys (Header.Set would canonicalise the key and allocate a slice per call).
// Sharing one slice between responses is safe: net/http only reads it, Set and
// Del replace or drop it, and a one-element slice has no room for an Add to
// write into.
var (
	acceptRanges = []string{"bytes"}
	gzipEncoding = []string{"gzip"}
	varyEncoding = []string{"Accept-Encoding"}
	contentTypes = map[string][]string{}
)

func init() {
	for _, ct := range []string{packager.ContentTypePlaylist, packager.ContentTypeTS, packager.ContentTypeMPD,
		packager.ContentTypeVideoMP4, packager.ContentTypeAudioMP4} {
		contentTypes[ct] = []string{ct}
	}
}

func contentTypeHeader(ct string) []string {
	if v, ok := contentTypes[ct]; ok {
		return v
	}
	return []string{ct}
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
	s.writeDoc(w, r, s.docs.get(st, path, obj.Data), obj.ContentType)
}

// writeDoc answers with a cached document, gzip-compressed when accepted.
func (s *server) writeDoc(w http.ResponseWriter, r *http.Request, d *doc, contentType string) {
	h := w.Header()
	h["Content-Type"] = contentTypeHeader(contentType)
	h["Cache-Control"] = s.playlistCC
	h["Vary"] = varyEncoding
	body, etag, length := d.plain, d.etag, d.length
	if acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag, length = d.gzipped()
		h["Content-Encoding"] = gzipEncoding
	}
	h["Etag"] = etag
	serveBytes(w, r, body, time.Time{}, length, nil)
}

// serveImmutable serves a segment, part or init segment: cacheable for ever,
// with a strong ETag, byte ranges and conditional requests.
func (s *server) serveImmutable(w http.ResponseWriter, r *http.Request, st *packager.Stream, path string, obj packager.Object) {
	e := s.imm.get(st, path, obj)
	h := w.Header()
	h["Content-Type"] = contentTypeHeader(obj.ContentType)
	h["Cache-Control"] = s.segmentCC
	h["Etag"] = e.etag
	serveBytes(w, r, obj.Data, obj.ModTime, e.length, e.lastModified)
}

// serveBytes answers a whole, unconditional GET or HEAD itself, with the
// headers http.ServeContent would send (Last-Modified unless modTime is zero,
// Accept-Ranges, Content-Length) and the body in one Write: ServeContent copies
// through io.CopyN, which allocates a buffer of up to 32 KB and writes in pieces
// of that size. Conditional and Range requests go to ServeContent, which
// implements RFC 9110's preconditions, 304, 206 and 416.
func serveBytes(w http.ResponseWriter, r *http.Request, body []byte, modTime time.Time, length, lastModified []string) {
	if !wholeUnconditional(r.Header) {
		if rg := r.Header.Get("Range"); rg != "" {
			// ServeContent neither caps nor merges ranges (see coalesceRanges).
			if v, ok := coalesceRanges(rg, int64(len(body))); !ok || v != rg {
				r = r.Clone(r.Context())
				if ok {
					r.Header.Set("Range", v)
				} else {
					r.Header.Del("Range")
				}
			}
		}
		http.ServeContent(w, r, "", modTime, bytes.NewReader(body))
		return
	}
	h := w.Header()
	if lastModified != nil {
		h["Last-Modified"] = lastModified
	}
	h["Accept-Ranges"] = acceptRanges
	h["Content-Length"] = length
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

// wholeUnconditional reports whether a request has none of the headers that
// make http.ServeContent answer other than 200 with the whole body.
func wholeUnconditional(h http.Header) bool {
	return len(h["Range"]) == 0 && len(h["If-None-Match"]) == 0 && len(h["If-Modified-Since"]) == 0 &&
		len(h["If-Match"]) == 0 && len(h["If-Unmodified-Since"]) == 0
}

// xmlEscaper keeps the public base URL from breaking out of the MPD's attribute.
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
