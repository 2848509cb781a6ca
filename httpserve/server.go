// Package httpserve is rtmpgate's HTTP surface: playlists, segments, the stream API
// and health. Handlers are plain net/http; routing is chi.
package httpserve

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/packager"
)

// Config holds the HTTP surface's settings; the zero value works.
type Config struct {
	Logger zerolog.Logger
	// PlaylistMaxAge is the Cache-Control max-age of playlists: they change every
	// segment, so a CDN may hold one for at most this long. Default 1 s.
	PlaylistMaxAge time.Duration
	// SegmentMaxAge is the Cache-Control max-age of segments, which never change once
	// published and have names unique per publish. Default 24 h.
	SegmentMaxAge time.Duration
	// Metrics serves GET /metrics when set.
	Metrics http.Handler
}

func (c *Config) setDefaults() {
	if c.PlaylistMaxAge <= 0 {
		c.PlaylistMaxAge = time.Second
	}
	if c.SegmentMaxAge <= 0 {
		c.SegmentMaxAge = 24 * time.Hour
	}
}

type server struct {
	hub *packager.Hub
	cfg Config
}

// New returns the handler for every rtmpgate HTTP route.
func New(hub *packager.Hub, cfg Config) http.Handler {
	cfg.setDefaults()
	s := &server{hub: hub, cfg: cfg}
	r := chi.NewRouter()
	r.Use(s.accessLog)
	r.Get("/healthz", s.healthz)
	r.Get("/api/streams", s.listStreams)
	if cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics)
	}
	static := staticFiles()
	r.Method(http.MethodGet, "/", static)
	r.Method(http.MethodGet, "/play.html", static)
	r.Method(http.MethodGet, "/player.js", static)
	r.Method(http.MethodGet, "/vendor/*", static)
	r.Get("/{app}/{stream}/ts/index.m3u8", s.tsPlaylist)
	r.Get("/{app}/{stream}/*", s.object)
	r.Head("/{app}/{stream}/*", s.object)
	r.NotFound(notFound)
	return r
}

func (s *server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// notFound answers 404s with a short cache lifetime, so a CDN in front of us does not
// hammer the origin for a stream that is about to start, nor remember its absence long.
func notFound(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "public, max-age=1")
	http.Error(w, "not found", http.StatusNotFound)
}

func (s *server) stream(w http.ResponseWriter, r *http.Request) (*packager.Stream, bool) {
	st, err := s.hub.Stream(chi.URLParam(r, "app"), chi.URLParam(r, "stream"))
	if err != nil {
		if !errors.Is(err, packager.ErrNotFound) {
			s.cfg.Logger.Error().Err(err).Msg("stream lookup")
		}
		notFound(w, r)
		return nil, false
	}
	return st, true
}

func (s *server) tsPlaylist(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	snap := st.Snapshot()
	if snap.TSPlaylist == nil {
		notFound(w, r)
		return
	}
	s.servePlaylist(w, r, snap.TSPlaylist)
}

func (s *server) servePlaylist(w http.ResponseWriter, _ *http.Request, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/vnd.apple.mpegurl")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.cfg.PlaylistMaxAge/time.Second)))
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func (s *server) object(w http.ResponseWriter, r *http.Request) {
	st, ok := s.stream(w, r)
	if !ok {
		return
	}
	obj, ok := st.Object(chi.URLParam(r, "*"))
	if !ok {
		notFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", obj.ContentType)
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(s.cfg.SegmentMaxAge/time.Second))+", immutable")
	h.Set("Access-Control-Allow-Origin", "*")
	http.ServeContent(w, r, "", obj.ModTime, bytes.NewReader(obj.Data))
}

// streamJSON is one entry of GET /api/streams.
type streamJSON struct {
	App        string      `json:"app"`
	Name       string      `json:"name"`
	State      string      `json:"state"`
	Since      time.Time   `json:"since"`
	Remote     string      `json:"remote,omitempty"`
	Tracks     []trackJSON `json:"tracks"`
	Segments   int         `json:"segments"`
	Bytes      int64       `json:"bytes"`
	PlaybackTS string      `json:"playback_ts"`
}

type trackJSON struct {
	Codec      string `json:"codec"`
	Kind       string `json:"kind"`
	Codecs     string `json:"codecs"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
}

func (s *server) listStreams(w http.ResponseWriter, _ *http.Request) {
	streams := s.hub.Streams()
	out := make([]streamJSON, 0, len(streams))
	for _, st := range streams {
		snap := st.Snapshot()
		state := "ended"
		if snap.Live {
			state = "live"
		}
		e := streamJSON{
			App: snap.App, Name: snap.Name, State: state, Since: snap.Since, Remote: snap.Remote,
			Tracks: make([]trackJSON, 0, len(snap.Tracks)), Segments: snap.Segments, Bytes: snap.Bytes,
			PlaybackTS: "/" + snap.App + "/" + snap.Name + "/ts/index.m3u8",
		}
		for _, t := range snap.Tracks {
			e.Tracks = append(e.Tracks, trackJSON{
				Codec: t.Codec.String(), Kind: t.Kind().String(), Codecs: t.CodecString,
				Width: t.Width, Height: t.Height, SampleRate: t.SampleRate, Channels: t.Channels,
			})
		}
		out = append(out, e)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}
