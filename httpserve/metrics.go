package httpserve

import (
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics is the HTTP surface's Prometheus registry. It is private to one New
// call, so tests and embedders can run several servers, and nothing registered
// globally by a library leaks into the scrape.
type metrics struct {
	registry *prometheus.Registry
	handler  http.Handler

	requests *prometheus.CounterVec   // route, code
	duration *prometheus.HistogramVec // route
	// blockingWaits counts LL-HLS playlist requests parked until the next part.
	blockingWaits prometheus.Gauge
	// mediaWaits counts requests waiting for the next part or streaming the
	// segment being produced.
	mediaWaits prometheus.Gauge

	routes sync.Map // route pattern -> *routeStats
}

// route returns the metric series of a route pattern.
func (m *metrics) route(route string) *routeStats {
	if rs, ok := m.routes.Load(route); ok {
		return rs.(*routeStats)
	}
	rs, _ := m.routes.LoadOrStore(route, newRouteStats(m, route))
	return rs.(*routeStats)
}

func newMetrics(s *server) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtmpgate_http_requests_total",
			Help: "HTTP requests answered, by chi route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rtmpgate_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by chi route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		blockingWaits: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rtmpgate_playlist_blocking_waits",
			Help: "LL-HLS blocking playlist requests waiting now.",
		}),
		mediaWaits: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rtmpgate_media_blocking_waits",
			Help: "Requests waiting now for the next part, or streaming the segment being produced.",
		}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.duration, m.blockingWaits, m.mediaWaits,
		newStateCollector(s),
	)
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{
		ErrorLog:            promLogger{s},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
	})
	return m
}

// promLogger passes the scrape's collection errors to zerolog.
type promLogger struct{ s *server }

func (l promLogger) Println(v ...any) {
	l.s.cfg.Logger.Error().Interface("error", v).Msg("metrics")
}

// stateCollector reads the hub when scraped, so the media path pays nothing
// for these metrics: no counter is touched per frame or segment here.
type stateCollector struct {
	s *server

	streams, storeBytes           *prometheus.Desc
	streamSegments, streamBytes   *prometheus.Desc
	partDelay, partDelayMax       *prometheus.Desc
	segAvail                      *prometheus.Desc
	streamFramesIn, streamBytesIn *prometheus.Desc
}

func newStateCollector(s *server) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &stateCollector{
		s:              s,
		streams:        d("rtmpgate_streams", "Streams held by the hub, live (publishing) or ended (lingering).", "state"),
		storeBytes:     d("rtmpgate_store_bytes", "Segment bytes held in the store, all streams."),
		streamSegments: d("rtmpgate_stream_segments", "Segments in a stream's playlist window.", "app", "stream"),
		streamBytes:    d("rtmpgate_stream_bytes", "Store bytes held by a stream.", "app", "stream"),
		streamFramesIn: d("rtmpgate_stream_frames_received_total", "Audio and video frames received for a stream, all its publish sessions.", "app", "stream"),
		streamBytesIn:  d("rtmpgate_stream_bytes_received_total", "Media bytes (frame payloads) received for a stream, all its publish sessions.", "app", "stream"),
		partDelay:      d("rtmpgate_part_publish_delay_seconds", "From the arrival of a CMAF part's last frame to the part being fetchable (at least one frame interval: a part is cut when the track's next frame arrives)."),
		partDelayMax:   d("rtmpgate_part_publish_delay_max_seconds", "The longest part publish delay seen."),
		segAvail:       d("rtmpgate_segment_availability_delay_seconds", "From the arrival of the keyframe that closes a segment to the segment being listed in the playlists (a cut on a video keyframe is listed at once; a stream whose audio came off its expected timing waits for audio's next frame)."),
	}
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.streams, c.storeBytes, c.streamSegments, c.streamBytes,
		c.partDelay, c.partDelayMax, c.segAvail,
		c.streamFramesIn, c.streamBytesIn,
	} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}

	var live, ended int64
	for _, st := range c.s.hub.Streams() {
		snap := st.Snapshot()
		if snap.Live {
			live++
		} else {
			ended++
		}
		gauge(c.streamSegments, int64(snap.Segments), snap.App, snap.Name)
		gauge(c.streamBytes, snap.Bytes, snap.App, snap.Name)
		frames, bytes := st.Received()
		counter(c.streamFramesIn, frames, snap.App, snap.Name)
		counter(c.streamBytesIn, bytes, snap.App, snap.Name)
	}
	gauge(c.streams, live, "live")
	gauge(c.streams, ended, "ended")
	gauge(c.storeBytes, c.s.hub.StoreBytes())
	ps := c.s.hub.PartStats()
	ch <- prometheus.MustNewConstSummary(c.partDelay, uint64(ps.Parts), ps.DelaySum.Seconds(), nil)
	ch <- prometheus.MustNewConstMetric(c.partDelayMax, prometheus.GaugeValue, ps.DelayMax.Seconds())
	sa := c.s.hub.SegmentAvailability()
	ch <- prometheus.MustNewConstHistogram(c.segAvail, sa.Count, sa.Sum, sa.Buckets)
}
