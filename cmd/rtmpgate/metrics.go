package main

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rtmpgate/rtmpgate/ingest"
)

// ingestCollector exports the RTMP edge's counters on httpserve's /metrics,
// read from src at scrape time so the media path pays nothing for them. It
// lives here, where ingest and the HTTP surface meet, so neither imports the other.
type ingestCollector struct {
	src interface{ Stats() ingest.Stats } // *ingest.Server

	publishers                            *prometheus.Desc
	connsTotal, connsActive, connsRefused *prometheus.Desc
	bytesIn, framesIn, protocolErrors     *prometheus.Desc
	panics, publishRefused                *prometheus.Desc
	unsupportedCodecs                     *prometheus.Desc
}

func newIngestCollector(src interface{ Stats() ingest.Stats }) *ingestCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &ingestCollector{
		src:            src,
		publishers:     d("rtmpgate_publishers", "RTMP sessions publishing now."),
		connsTotal:     d("rtmpgate_rtmp_connections_total", "RTMP connections accepted."),
		connsActive:    d("rtmpgate_rtmp_connections_active", "RTMP connections open now."),
		connsRefused:   d("rtmpgate_rtmp_connections_refused_total", "RTMP connections refused by a connection limit."),
		bytesIn:        d("rtmpgate_rtmp_bytes_received_total", "Bytes read from RTMP connections."),
		framesIn:       d("rtmpgate_rtmp_frames_received_total", "Audio and video frames received from publishers."),
		protocolErrors: d("rtmpgate_protocol_errors_total", "RTMP connections ended by a protocol error, by kind.", "kind"),
		panics:         d("rtmpgate_panics_recovered_total", "Panics recovered at the RTMP connection boundary (each closed one connection)."),
		publishRefused: d("rtmpgate_publish_refused_total", "Publish requests refused (busy key, bad name, limits)."),
		unsupportedCodecs: d("rtmpgate_ingest_unsupported_codec_total",
			"Published tracks refused for a codec the outputs cannot carry, by codec (FourCC, other, or flv-video-N / flv-audio-N for a legacy FLV codec id).", "codec"),
	}
}

func (c *ingestCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.publishers, c.connsTotal, c.connsActive, c.connsRefused, c.bytesIn, c.framesIn,
		c.protocolErrors, c.panics, c.publishRefused, c.unsupportedCodecs,
	} {
		ch <- d
	}
}

func (c *ingestCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	counter := func(d *prometheus.Desc, v int64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	st := c.src.Stats()
	gauge(c.publishers, st.Publishing)
	counter(c.connsTotal, st.ConnsAccepted)
	gauge(c.connsActive, st.ConnsActive)
	counter(c.connsRefused, st.ConnsRefused)
	counter(c.bytesIn, st.BytesIn)
	counter(c.framesIn, st.Frames)
	counter(c.panics, st.Panics)
	counter(c.publishRefused, st.PublishRefused)
	kinds := make([]string, 0, len(st.ProtocolErrors))
	for k := range st.ProtocolErrors {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		counter(c.protocolErrors, st.ProtocolErrors[k], k)
	}
	codecs := make([]string, 0, len(st.UnsupportedCodecs))
	for k := range st.UnsupportedCodecs {
		codecs = append(codecs, k)
	}
	sort.Strings(codecs)
	for _, k := range codecs {
		counter(c.unsupportedCodecs, st.UnsupportedCodecs[k], k)
	}
}
