package httpserve

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// streamJSON is one stream of the API.
type streamJSON struct {
	App   string    `json:"app"`
	Name  string    `json:"name"`
	State string    `json:"state"` // live or ended
	Since time.Time `json:"since"`
	// Remote is the publisher's address: only for a request with the API token,
	// since a viewer has no business knowing where a streamer is.
	Remote   string      `json:"remote,omitempty"`
	Tracks   []trackJSON `json:"tracks"`
	Segments int         `json:"segments"`
	Bytes    int64       `json:"bytes"`
	// UptimeSeconds counts from the first publish, so it spans republishes.
	UptimeSeconds int64 `json:"uptime_seconds"`
	// BitrateIn is the media bitrate over the playlist window, bits/s.
	BitrateIn int64 `json:"bitrate_in"`
	// FramesIn and BytesIn count what the stream's publishers sent, all sessions.
	FramesIn int64 `json:"frames_in"`
	BytesIn  int64 `json:"bytes_in"`
	// Viewers estimates the distinct clients that fetched a segment lately.
	Viewers    int          `json:"viewers"`
	Playback   playbackJSON `json:"playback"`
	PlaybackTS string       `json:"playback_ts,omitempty"` // kept for older clients: Playback.TS
	// Ladder is set on a stream published as a rendition of a ladder
	// (the variants setting).
	Ladder *ladderJSON `json:"ladder,omitempty"`
}

// playbackJSON holds path-absolute URLs, so they work behind any host or CDN.
type playbackJSON struct {
	TS string `json:"ts,omitempty"` // HLS, MPEG-TS segments; absent when TSUnavailable says why
	// TSUnavailable says why a stream has no MPEG-TS output (AV1, VP9, Opus).
	TSUnavailable string `json:"ts_unavailable,omitempty"`
	HLS           string `json:"hls"`  // HLS, fMP4 (CMAF) segments: the multivariant playlist
	DASH          string `json:"dash"` // DASH MPD over the same CMAF segments
}

type trackJSON struct {
	Codec      string `json:"codec"`
	Kind       string `json:"kind"`
	Codecs     string `json:"codecs"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
	Profile    string `json:"profile,omitempty"`
	Level      string `json:"level,omitempty"`
	// BitDepth is the video luma bit depth.
	BitDepth int `json:"bit_depth,omitempty"`
	// HDR is "PQ" or "HLG" when the colour description's transfer says so.
	HDR string `json:"hdr,omitempty"`
	// FPS is the video frame rate measured over the playlist window.
	FPS float64 `json:"fps,omitempty"`
}

func (s *server) streamEntry(st *packager.Stream, now time.Time, private bool) streamJSON {
	snap := st.Snapshot()
	state := "ended"
	if snap.Live {
		state = "live"
	}
	base := "/" + url.PathEscape(snap.App) + "/" + escapeName(snap.Name) + "/"
	e := streamJSON{
		App: snap.App, Name: snap.Name, State: state, Since: snap.Since,
		Tracks: make([]trackJSON, 0, len(snap.Tracks)), Segments: snap.Segments, Bytes: snap.Bytes,
		UptimeSeconds: int64(max(now.Sub(snap.Since), 0) / time.Second),
		BitrateIn:     snap.BitrateIn,
		Viewers:       s.viewers.count(snap.App, snap.Name, now),
		Playback: playbackJSON{
			TS:   base + packager.PlaylistPath,
			HLS:  base + packager.MultivariantPath,
			DASH: base + packager.MPDPath,
		},
	}
	if why := snap.TSUnavailable(); why != "" {
		e.Playback.TS, e.Playback.TSUnavailable = "", why
	}
	e.PlaybackTS = e.Playback.TS
	e.Ladder = s.ladderEntry(snap.App, snap.Name)
	if private {
		e.Remote = snap.Remote
	}
	e.FramesIn, e.BytesIn = st.Received()
	for _, t := range snap.Tracks {
		tj := trackJSON{
			Codec: t.Codec.String(), Kind: t.Kind().String(), Codecs: t.CodecString,
			Width: t.Width, Height: t.Height, SampleRate: t.SampleRate, Channels: t.Channels,
			Profile: t.Profile, Level: t.Level, HDR: t.Color.HDR(),
		}
		if t.Kind() == remux.KindVideo {
			tj.BitDepth = max(t.BitDepth, 8)
			tj.FPS = math.Round(snap.FrameRate*1000) / 1000
		}
		e.Tracks = append(e.Tracks, tj)
	}
	return e
}

func (s *server) listStreams(w http.ResponseWriter, r *http.Request) {
	now, private := s.cfg.Now(), s.authorized(r)
	streams := s.hub.Streams()
	out := make([]streamJSON, 0, len(streams))
	for _, st := range streams {
		out = append(out, s.streamEntry(st, now, private))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) getStream(w http.ResponseWriter, r *http.Request) {
	st, err := s.hub.Stream(chi.URLParam(r, "app"), chi.URLParam(r, "stream"))
	if err != nil {
		writeError(w, http.StatusNotFound, "no such stream")
		return
	}
	writeJSON(w, http.StatusOK, s.streamEntry(st, s.cfg.Now(), s.authorized(r)))
}

// deleteStream disconnects the stream's publisher. The stream itself lingers like
// any ended one, so players see the end of the playlist.
func (s *server) deleteStream(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	if s.cfg.Kick == nil {
		writeError(w, http.StatusNotImplemented, "kicking a publisher is not supported by this build")
		return
	}
	app, name := chi.URLParam(r, "app"), chi.URLParam(r, "stream")
	if _, err := s.hub.Stream(app, name); err != nil {
		writeError(w, http.StatusNotFound, "no such stream")
		return
	}
	if err := s.cfg.Kick(app, name); err != nil {
		if errors.Is(err, packager.ErrNotFound) {
			writeError(w, http.StatusNotFound, "no such stream")
			return
		}
		if errors.Is(err, packager.ErrNotLive) {
			writeError(w, http.StatusConflict, "the stream has no publisher")
			return
		}
		s.cfg.Logger.Error().Err(err).Str("app", app).Str("stream", name).Msg("kick")
		writeError(w, http.StatusInternalServerError, "kick failed")
		return
	}
	s.cfg.Logger.Info().Str("app", app).Str("stream", name).Str("remote", r.RemoteAddr).Msg("publisher kicked through the API")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// admin answers a write request that lacks the API token (403 when none is
// configured, 401 with a Bearer challenge otherwise) and reports whether it
// may go on.
func (s *server) admin(w http.ResponseWriter, r *http.Request) bool {
	if s.cfg.APIToken == "" {
		writeError(w, http.StatusForbidden, "the API is read-only: no api_token is configured")
		return false
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="rtmpgate"`)
		writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
		return false
	}
	return true
}

// ErrReconnectUnsupported is returned by Config.Reconnect when the publisher
// did not announce that it can reconnect on request.
var ErrReconnectUnsupported = errors.New("httpserve: the publisher did not announce reconnect support")

// reconnectStream asks the stream's publisher to reconnect (Enhanced RTMP
// NetConnection.Connect.ReconnectRequest): 202, since the publisher moves at
// its next key frame; the stream goes on with one discontinuity.
func (s *server) reconnectStream(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	if s.cfg.Reconnect == nil {
		writeError(w, http.StatusNotImplemented, "reconnect requests are not supported by this build")
		return
	}
	app, name := chi.URLParam(r, "app"), chi.URLParam(r, "stream")
	if _, err := s.hub.Stream(app, name); err != nil {
		writeError(w, http.StatusNotFound, "no such stream")
		return
	}
	if err := s.cfg.Reconnect(app, name); err != nil {
		switch {
		case errors.Is(err, packager.ErrNotFound):
			writeError(w, http.StatusNotFound, "no such stream")
		case errors.Is(err, packager.ErrNotLive):
			writeError(w, http.StatusConflict, "the stream has no publisher")
		case errors.Is(err, ErrReconnectUnsupported):
			writeError(w, http.StatusConflict, "the publisher did not announce reconnect support (Enhanced RTMP capsEx)")
		default:
			s.cfg.Logger.Error().Err(err).Str("app", app).Str("stream", name).Msg("reconnect request")
			writeError(w, http.StatusInternalServerError, "reconnect request failed")
		}
		return
	}
	s.cfg.Logger.Info().Str("app", app).Str("stream", name).Str("remote", r.RemoteAddr).Msg("publisher asked to reconnect through the API")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusAccepted)
}

// authorized compares the bearer token in constant time, so response timing does
// not reveal how much of a guess was right. Without an api_token nobody is.
func (s *server) authorized(r *http.Request) bool {
	if s.cfg.APIToken == "" {
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.cfg.APIToken)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
