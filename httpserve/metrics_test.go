package httpserve_test

import (
	"bufio"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// extraCollector stands in for a collector cmd adds (the RTMP edge's, whose
// series cmd/rtmpgate's TestMetricsIngest checks); it grows by 100 per scrape.
func extraCollector() prometheus.Collector {
	var frames atomic.Int64
	return prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "rtmpgate_test_frames_total", Help: "A source read at scrape time.",
	}, func() float64 { return float64(frames.Add(100)) })
}

// scrape parses the text exposition into series ("name{labels}" as written) and
// their values.
func scrape(t *testing.T, url string) (map[string]float64, string) {
	t.Helper()
	res, body := get(t, url, nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("scrape: %d %q", res.StatusCode, res.Header.Get("Content-Type"))
	}
	series := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("bad sample line %q", line)
		}
		series[line[:i]] = v
	}
	return series, body
}

func TestMetrics(t *testing.T) {
	srv, hub := newServerCfg(t, false, httpserve.Config{Collectors: []prometheus.Collector{extraCollector()}})
	f := demoFiles(t, srv)
	// Two different segments, a 404 and a playlist: the route label is the
	// pattern, never the path.
	get(t, f.fragment, nil)
	get(t, f.tsSegment, nil)
	get(t, srv.URL+"/live/demo/ts/nope.ts", nil)
	get(t, srv.URL+"/nope", nil)
	get(t, srv.URL+"/healthz", nil)

	series, body := scrape(t, srv.URL+"/metrics")
	want := map[string]float64{
		`rtmpgate_store_bytes`:                               float64(hub.StoreBytes()),
		`rtmpgate_streams{state="live"}`:                     1,
		`rtmpgate_streams{state="ended"}`:                    0,
		`rtmpgate_stream_segments{app="live",stream="demo"}`: 2,
		`rtmpgate_stream_bytes{app="live",stream="demo"}`:    float64(hub.StoreBytes()),
		`rtmpgate_test_frames_total`:                         100,
		`rtmpgate_playlist_blocking_waits`:                   0,
		// demoFiles fetched the TS and video playlists; then two segments.
		`rtmpgate_http_requests_total{code="200",route="/{app}/{stream}/*"}`: 4,
		`rtmpgate_http_requests_total{code="404",route="/{app}/{stream}/*"}`: 1,
		`rtmpgate_http_requests_total{code="404",route="unmatched"}`:         1,
		`rtmpgate_http_requests_total{code="200",route="/healthz"}`:          1,
	}
	for name, v := range want {
		got, ok := series[name]
		if !ok {
			t.Errorf("missing %s", name)
			continue
		}
		if got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if n := series[`rtmpgate_http_request_duration_seconds_count{route="/{app}/{stream}/*"}`]; n != 5 {
		t.Errorf("duration histogram count %v, want 5", n)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_open_fds"} {
		if _, ok := series[name]; !ok {
			t.Errorf("missing standard metric %s", name)
		}
	}
	if strings.Contains(body, ".m4s") || strings.Contains(body, ".ts\"") || strings.Contains(body, "nope") {
		t.Errorf("a raw path leaked into a label")
	}
	// Read at scrape time: the next scrape sees the source's new value.
	series, _ = scrape(t, srv.URL+"/metrics")
	if got := series[`rtmpgate_test_frames_total`]; got != 200 {
		t.Errorf("frames on the second scrape %v, want 200", got)
	}
	promtoolCheck(t, body)
}

// TestMetricsWithoutIngest: no collector for the RTMP edge, no made-up zeros.
func TestMetricsWithoutIngest(t *testing.T) {
	srv := newServer(t, false)
	series, body := scrape(t, srv.URL+"/metrics")
	if _, ok := series["rtmpgate_store_bytes"]; !ok {
		t.Errorf("missing rtmpgate_store_bytes")
	}
	if strings.Contains(body, "rtmpgate_rtmp_") || strings.Contains(body, "rtmpgate_publishers") {
		t.Errorf("ingest metrics without an ingest source")
	}
	promtoolCheck(t, body)
}

// promtoolCheck lints an exposition with promtool check metrics.
func promtoolCheck(t *testing.T, exposition string) {
	t.Helper()
	path := testkit.NeedTool(t, "promtool")
	cmd := exec.Command(path, "check", "metrics")
	cmd.Stdin = strings.NewReader(exposition)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
