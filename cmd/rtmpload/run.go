package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

// run starts the publishers (and viewers), prints progress to progressOut, waits
// for all of them and returns the summary. An error means nothing could start.
func run(ctx context.Context, cfg config, progressOut io.Writer) (*summary, error) {
	tgt, err := parseTarget(cfg.url)
	if err != nil {
		return nil, err
	}
	cl, err := rtmpclient.ReadFLV(cfg.clipPath)
	if err != nil {
		return nil, err
	}
	var base *url.URL
	if cfg.viewers > 0 {
		if base, err = url.Parse(strings.TrimRight(cfg.httpBase, "/") + "/"); err != nil || (base.Scheme != "http" && base.Scheme != "https") {
			return nil, fmt.Errorf("-http %q: want http://HOST:PORT", cfg.httpBase)
		}
	}
	cpu0 := cpuTime()
	began := time.Now()
	pubs := make([]*publisher, cfg.n)
	for i := range pubs {
		var delay time.Duration
		if cfg.n > 1 {
			delay = cfg.ramp * time.Duration(i) / time.Duration(cfg.n)
		}
		pubs[i] = &publisher{
			name:     fmt.Sprintf("%s%04d", cfg.prefix, i),
			start:    began.Add(delay),
			duration: cfg.duration,
			loop:     cfg.loop,
			batch:    cfg.batch,
			clip:     cl,
			target:   tgt,
		}
	}
	var vstats viewerStats
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        cfg.viewers,
		MaxIdleConnsPerHost: cfg.viewers,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: requestTimeout}

	var pubWG, viewWG sync.WaitGroup
	for _, p := range pubs {
		pubWG.Go(func() { p.run(ctx) })
	}
	for j := range cfg.viewers {
		p := pubs[j%len(pubs)]
		u := base.ResolveReference(&url.URL{Path: tgt.app + "/" + p.name + "/ts/index.m3u8"})
		v := &viewer{id: j, pub: p, url: u, client: client, stats: &vstats, endWait: cmp.Or(cfg.endWait, endWithin)}
		viewWG.Go(func() { v.run(ctx) })
	}
	done := make(chan struct{})
	go func() { pubWG.Wait(); viewWG.Wait(); close(done) }()
	if cfg.progress > 0 {
		tick := time.NewTicker(cfg.progress)
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-tick.C:
				fmt.Fprintln(progressOut, progressLine(began, pubs, &vstats, cfg.viewers))
			}
		}
		tick.Stop()
	} else {
		<-done
	}
	return summarize(cfg, began, cpu0, pubs, &vstats), nil
}

// progressLine is one line of counters for stderr.
func progressLine(began time.Time, pubs []*publisher, vs *viewerStats, viewers int) string {
	var live, failed, done int
	var bytes int64
	for _, p := range pubs {
		switch publisherState(p.state.Load()) {
		case stateLive:
			live++
		case stateFailed:
			failed++
		case stateDone:
			done++
		}
		bytes += p.payloadBytes.Load()
	}
	elapsed := time.Since(began)
	line := fmt.Sprintf("rtmpload: %5.0fs publishers live %d done %d failed %d, sent %.1f MB (%.1f Mbit/s)",
		elapsed.Seconds(), live, done, failed, float64(bytes)/1e6, float64(bytes)*8/1e6/elapsed.Seconds())
	if viewers > 0 {
		line += fmt.Sprintf("; viewers: %d segments %.1f MB, errors playlist %d segment %d/404 %d",
			vs.segments.Load(), float64(vs.bytes.Load())/1e6, vs.playlistErrors.Load(), vs.segmentErrors.Load(), vs.segmentMissing.Load())
	}
	return line
}
