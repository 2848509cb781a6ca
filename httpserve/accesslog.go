package httpserve

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// statusRecorder remembers the status and size for the metrics and access log. It forwards
// Flush because blocking playlist requests and chunked parts need it.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

// recorders are reused: nothing keeps a recorder past the handler it was made
// for (the handlers write only from their own goroutine and return when done).
var recorders = sync.Pool{New: func() any { return new(statusRecorder) }}

func newRecorder(w http.ResponseWriter) *statusRecorder {
	rec := recorders.Get().(*statusRecorder)
	rec.ResponseWriter = w
	return rec
}

// release returns rec to the pool; a handler that panicked never gets here,
// and its recorder is left to the collector.
func (r *statusRecorder) release() {
	*r = statusRecorder{}
	recorders.Put(r)
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (r *statusRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection underneath.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// observe counts every request chi routes in the HTTP metrics by its route
// pattern (the raw path would give a series per segment) and logs it at debug
// level; the log costs nothing when debug is off.
func (s *server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := newRecorder(w)
		next.ServeHTTP(rec, r)
		route := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			route = rc.RoutePattern()
		}
		if route == "" {
			route = "unmatched"
		}
		s.finish(rec, r, s.metrics.route(route), start)
		rec.release()
	})
}

// finish counts a request answered and logs it at debug level.
func (s *server) finish(rec *statusRecorder, r *http.Request, rs *routeStats, start time.Time) {
	took := time.Since(start)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rs.counter(rec.status).Inc()
	rs.duration().Observe(took.Seconds())
	if s.cfg.Logger.GetLevel() > zerolog.DebugLevel || zerolog.GlobalLevel() > zerolog.DebugLevel {
		return
	}
	ev := s.cfg.Logger.Debug().Str("remote", s.clientAddr(r)).Str("method", r.Method).Str("path", r.URL.Path)
	if r.URL.RawQuery != "" {
		// LL-HLS delivery directives (_HLS_msn, _HLS_part) decide a playlist
		// request's answer; a log without them cannot explain a 400.
		ev = ev.Str("query", r.URL.RawQuery)
	}
	ev.Str("route", rs.route).Int("status", rec.status).Int64("bytes", rec.bytes).Dur("took", took).Msg("http")
}

// routeStats holds one route's metric series once made, so counting a request
// hashes no label values: the series are made on a route's first request with
// each status, as CounterVec would, so /metrics lists only what happened.
type routeStats struct {
	m     *metrics
	route string
	dur   atomic.Pointer[prometheus.Observer]
	codes [500]atomic.Pointer[prometheus.Counter] // status 100 to 599
}

func newRouteStats(m *metrics, route string) *routeStats {
	return &routeStats{m: m, route: route}
}

func (rs *routeStats) counter(status int) prometheus.Counter {
	if status < 100 || status > 599 {
		return rs.m.requests.WithLabelValues(rs.route, strconv.Itoa(status))
	}
	slot := &rs.codes[status-100]
	if c := slot.Load(); c != nil {
		return *c
	}
	c := rs.m.requests.WithLabelValues(rs.route, strconv.Itoa(status))
	slot.Store(&c)
	return c
}

func (rs *routeStats) duration() prometheus.Observer {
	if o := rs.dur.Load(); o != nil {
		return *o
	}
	o := rs.m.duration.WithLabelValues(rs.route)
	rs.dur.Store(&o)
	return o
}
