// Package httpserve is rtmpgate's HTTP surface: playlists, MPDs and segments for
// players and CDNs, the stream API, Prometheus metrics and health. Handlers are
// plain net/http; routing is chi, but for the requests players make most (a
// stream's playlists and segments), which a fast path routes without it.
package httpserve

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/packager"
)

// Streams is what the HTTP surface needs of the stream registry
// (*packager.Hub satisfies it): find and list streams, the store's bytes for
// /readyz and /metrics, and the hub-wide media timing histograms.
type Streams interface {
	// Stream returns a stream, live or lingering, or packager.ErrNotFound.
	Stream(app, name string) (*packager.Stream, error)
	// Streams lists every stream held.
	Streams() []*packager.Stream
	// StoreBytes is the segment bytes held, StoreCommitted what live windows
	// and one more stream will hold (see packager.Hub).
	StoreBytes() int64
	StoreCommitted() int64
	PartStats() packager.PartStats
	SegmentAvailability() packager.Histogram
	// Ladder returns the ladder of streams published as app/name plus a
	// configured variant suffix, or packager.ErrNotFound; LadderOf names the
	// ladder a stream name belongs to.
	Ladder(app, name string) (*packager.Ladder, error)
	LadderOf(name string) (string, bool)
	// LadderMPD is a ladder's DASH MPD, nil while it has nothing to list.
	LadderMPD(l *packager.Ladder) []byte
}

// Config holds the HTTP surface's settings and the sources it reports on; the zero
// value works (no metrics beyond the HTTP surface's and the streams', always
// ready, read-only API).
type Config struct {
	Logger zerolog.Logger
	// PlaylistMaxAge is the Cache-Control max-age of playlists and MPDs: they
	// change every segment, so a CDN may hold one for at most this long. Default 1 s.
	PlaylistMaxAge time.Duration
	// SegmentMaxAge is the Cache-Control max-age of segments and init segments,
	// which never change once published and have names unique per publish.
	// Default 24 h.
	SegmentMaxAge time.Duration

	// Collectors are registered on the /metrics registry beside the HTTP
	// surface's and the streams' own: cmd adds the RTMP edge's, so httpserve
	// needs to know nothing of ingest.
	Collectors []prometheus.Collector
	// Ready reports whether the process can take traffic (cmd: its listeners
	// are up and it is not shutting down); a non-nil error is the reason given
	// by GET /readyz. Nil means ready.
	Ready func() error
	// MaxStoreBytes is the hub's store budget: /readyz answers 503 while
	// Hub.StoreBytes() is at or above it. Default packager.DefaultMaxStoreBytes.
	MaxStoreBytes int64
	// APIToken guards the API's write methods (DELETE kicks a publisher), sent as
	// "Authorization: Bearer <token>". Empty: the API is read-only.
	APIToken string
	// Kick disconnects the publisher of app/name. Nil: DELETE answers 501.
	Kick func(app, name string) error
	// Reconnect asks the publisher of app/name to reconnect (POST
	// .../reconnect); it returns packager.ErrNotLive without a publisher and
	// ErrReconnectUnsupported for one that cannot. Nil: the POST answers 501.
	Reconnect func(app, name string) error
	// MaxBlockingWait bounds an LL-HLS blocking playlist request and a request
	// for a hinted part or a segment in production. Default 0: three target
	// durations, at least 6 s (RFC 8216bis 6.2.5.2).
	MaxBlockingWait time.Duration
	// ViewerWindow is how far back a segment fetch counts towards a stream's
	// viewers estimate. Default 30 s.
	ViewerWindow time.Duration
	// PublicBaseURL, when set, is the scheme, host and path prefix players
	// reach this server at (https://cdn.example): the MPD's UTCTiming URL is
	// made from it. Empty: the absolute path /time. Nothing in a request
	// changes a document.
	PublicBaseURL string
	// TrustedProxies are the proxies and CDNs whose X-Forwarded-For is
	// believed for a client's address (access log, viewers estimate); see
	// clientAddr.
	TrustedProxies []netip.Prefix
	// OBS, when set, is the ladder served to OBS Studio's multitrack video at
	// OBSConfigPath (see obsconfig.go). Nil: that path is not served.
	OBS *OBSConfig
	// Now is the clock, for tests; time.Now if nil.
	Now func() time.Time
}

func (c *Config) setDefaults() {
	if c.PlaylistMaxAge <= 0 {
		c.PlaylistMaxAge = time.Second
	}
	if c.SegmentMaxAge <= 0 {
		c.SegmentMaxAge = 24 * time.Hour
	}
	if c.MaxStoreBytes <= 0 {
		c.MaxStoreBytes = packager.DefaultMaxStoreBytes
	}
	if c.ViewerWindow <= 0 {
		c.ViewerWindow = 30 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

type server struct {
	hub     Streams
	cfg     Config
	docs    *docCache
	imm     *immCache
	viewers *viewerTracker
	metrics *metrics
	mux     http.Handler // chi, for every request the fast path does not take
	objects *routeStats  // the metrics of objectRoute

	// Header values prepared once (see the note on acceptRanges in object.go).
	playlistCC, segmentCC []string
}

// New returns the handler for every rtmpgate HTTP route over hub's streams.
// Each handler has its own Prometheus registry, served at GET /metrics. The
// handler is also a fastlane.Handler: its LaneTakes tells the optional fast
// lane which requests it may answer.
func New(hub Streams, cfg Config) http.Handler {
	cfg.setDefaults()
	s := &server{
		hub:     hub,
		cfg:     cfg,
		docs:    newDocCache(docCacheEntries, strings.TrimSuffix(cfg.PublicBaseURL, "/")),
		imm:     newImmCache(immCacheEntries),
		viewers: newViewerTracker(cfg.ViewerWindow, viewerEntries),

		playlistCC: []string{"public, max-age=" + strconv.Itoa(int(cfg.PlaylistMaxAge/time.Second))},
		segmentCC:  []string{"public, max-age=" + strconv.Itoa(int(cfg.SegmentMaxAge/time.Second)) + ", immutable"},
	}
	s.metrics = newMetrics(s)
	s.objects = s.metrics.route(objectRoute)
	s.metrics.registry.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "rtmpgate_http_document_renders_total",
			Help: "Playlists and MPDs prepared for serving (ETag, time source URL): one per document version.",
		}, func() float64 { return float64(s.docs.renders.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "rtmpgate_http_document_gzips_total",
			Help: "Playlists and MPDs gzip-compressed: at most one per document version.",
		}, func() float64 { return float64(s.docs.gzips.Load()) }),
	)
	s.metrics.registry.MustRegister(cfg.Collectors...)

	r := chi.NewRouter()
	r.Use(s.observe)

	r.Get("/healthz", s.healthz)
	r.Get("/readyz", s.readyz)
	r.Method(http.MethodGet, "/metrics", s.metrics.handler)

	r.Get("/api/streams", s.listStreams)
	r.Get("/api/streams/{app}/{stream}", s.getStream)
	r.Delete("/api/streams/{app}/{stream}", s.deleteStream)
	r.Post("/api/streams/{app}/{stream}/reconnect", s.reconnectStream)
	if cfg.OBS != nil {
		r.Get(OBSConfigPath, s.obsClientConfiguration)
		r.Post(OBSConfigPath, s.obsClientConfiguration)
	}

	static := staticFiles()
	r.Method(http.MethodGet, "/", static)
	r.Method(http.MethodGet, "/play.html", static)
	r.Method(http.MethodGet, "/player.js", static)
	r.Method(http.MethodGet, "/vendor/*", static)

	// What a player fetches, from any origin.
	r.Group(func(r chi.Router) {
		r.Use(cors)
		r.Get("/time", serveTime)
		r.Head("/time", serveTime)
		r.Options("/time", preflight)
		r.Get(objectRoute, s.objectRoute)
		r.Head(objectRoute, s.objectRoute)
		r.Options(objectRoute, preflight)
	})
	r.NotFound(notFound)
	s.mux = r
	return s
}

var connectionClose = []string{"close"}

// objectRoute is the chi pattern of a stream's files, and their metrics label.
const objectRoute = "/{app}/{stream}/*"

// ServeHTTP answers GET and HEAD of a stream's files (playlists, MPD, segments,
// parts: nearly every request an origin sees) without chi, whose routing
// allocates a context and a request copy per request; every other request goes
// through chi. The fast path takes only what chi would route to objectRoute:
// three or more non-empty path segments, not under the /api/ and /vendor/
// trees, no escaped path.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 || len(r.TransferEncoding) > 0 {
		// A body is taken by one route only (OBSConfigPath), and the head
		// check passes it and nothing after it: answer, then close.
		w.Header()["Connection"] = connectionClose
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		if app, name, path, ok := splitObjectPath(r); ok {
			start := time.Now()
			rec := newRecorder(w)
			setCORS(w.Header())
			s.object(rec, r, app, name, path)
			s.finish(rec, r, s.objects, start)
			rec.release()
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// LaneTakes reports whether the HTTP/1.1 fast lane (internal/fastlane) may
// answer r: a request ServeHTTP's fast path takes, but for a GET of a part
// or segment still to come, which waits for it and may stream it as it
// grows; net/http, which notices a client that leaves, keeps those.
func (s *server) LaneTakes(r *http.Request) bool {
	app, name, path, ok := splitObjectPath(r)
	if !ok {
		return false
	}
	if r.Method != http.MethodGet {
		return true // a HEAD never waits
	}
	name, path = s.trackPath(app, name, path)
	st, err := s.hub.Stream(app, name)
	if err != nil {
		member, rest, ok := s.ladderFile(app, name, path)
		if !ok {
			return true
		}
		if st, err = s.hub.Stream(app, member); err != nil {
			return true
		}
		path = rest
	}
	snap := st.Snapshot()
	if _, ok := snap.Object(path); ok {
		return true
	}
	return !snap.Upcoming(path)
}

func splitObjectPath(r *http.Request) (app, name, path string, ok bool) {
	p := r.URL.Path
	if r.URL.RawPath != "" || len(p) < 6 || p[0] != '/' {
		return "", "", "", false
	}
	app, rest, ok := strings.Cut(p[1:], "/")
	if !ok || app == "" || app == "api" || app == "vendor" {
		return "", "", "", false
	}
	name, path, ok = strings.Cut(rest, "/")
	if !ok || name == "" || path == "" {
		return "", "", "", false
	}
	return app, name, path, true
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

// lookupFailed answers a stream lookup's error: 404, and a log line when the
// error is other than the stream not existing.
func (s *server) lookupFailed(w http.ResponseWriter, r *http.Request, err error) {
	if !errors.Is(err, packager.ErrNotFound) {
		s.cfg.Logger.Error().Err(err).Msg("stream lookup")
	}
	notFound(w, r)
}
