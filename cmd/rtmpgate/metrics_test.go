package main

import (
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/ingest"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/packager"
)

// fakeIngest stands in for *ingest.Server; frames grows per scrape.
type fakeIngest struct{ frames atomic.Int64 }

func (f *fakeIngest) Stats() ingest.Stats {
	return ingest.Stats{
		ConnsAccepted: 7, ConnsRefused: 2, ConnsActive: 3, Publishing: 1, BytesIn: 123456,
		Frames: f.frames.Add(100), Panics: 1, PublishRefused: 4,
		ProtocolErrors:    map[string]int64{"handshake": 5, "chunk": 0, "amf": 1},
		UnsupportedCodecs: map[string]int64{"vp08": 2, "flv-audio-2": 1},
	}
}

// TestMetricsIngest: the RTMP edge's counters, collected here and served on
// httpserve's /metrics under their names, read at scrape time, lint-clean.
func TestMetricsIngest(t *testing.T) {
	testkit.NeedTools(t, "promtool")
	hub := packager.NewHub(packager.Config{}, zerolog.Nop())
	defer hub.Close()
	srv := httptest.NewServer(httpserve.New(hub, httpserve.Config{
		Collectors: []prometheus.Collector{newIngestCollector(&fakeIngest{})},
	}))
	defer srv.Close()
	g := &gateway{httpAddr: srv.Listener.Addr().String()}

	body, series := opsScrape(t, g)
	want := map[string]float64{
		`rtmpgate_publishers`:                                          1,
		`rtmpgate_rtmp_connections_total`:                              7,
		`rtmpgate_rtmp_connections_active`:                             3,
		`rtmpgate_rtmp_connections_refused_total`:                      2,
		`rtmpgate_rtmp_bytes_received_total`:                           123456,
		`rtmpgate_rtmp_frames_received_total`:                          100,
		`rtmpgate_protocol_errors_total{kind="handshake"}`:             5,
		`rtmpgate_protocol_errors_total{kind="chunk"}`:                 0,
		`rtmpgate_protocol_errors_total{kind="amf"}`:                   1,
		`rtmpgate_panics_recovered_total`:                              1,
		`rtmpgate_publish_refused_total`:                               4,
		`rtmpgate_ingest_unsupported_codec_total{codec="vp08"}`:        2,
		`rtmpgate_ingest_unsupported_codec_total{codec="flv-audio-2"}`: 1,
		`rtmpgate_streams{state="live"}`:                               0,
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
	// Read at scrape time: the next scrape sees the source's new value.
	if _, series = opsScrape(t, g); series[`rtmpgate_rtmp_frames_received_total`] != 200 {
		t.Errorf("frames on the second scrape %v, want 200", series[`rtmpgate_rtmp_frames_received_total`])
	}
	opsPromtool(t, body)
}
