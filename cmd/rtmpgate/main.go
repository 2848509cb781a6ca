// Command rtmpgate is an RTMP-to-HLS/DASH origin gateway: publishers push RTMP
// to rtmp://HOST:1935/{app}/{stream}; viewers pull /{app}/{stream}/index.m3u8
// (CMAF HLS, LL-HLS), /{app}/{stream}/ts/index.m3u8 (MPEG-TS HLS) and
// /{app}/{stream}/index.mpd (DASH). "rtmpgate sign" makes publish tokens and
// "rtmpgate healthcheck" asks a running gateway's /healthz.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/ingest"
	"github.com/rtmpgate/rtmpgate/internal/hugeheap"
	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Args[2:], os.Getenv))
	}
	if len(os.Args) > 1 && os.Args[1] == "sign" {
		os.Exit(signMain(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	cfg, err := loadConfig(os.Args[1:], os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpgate:", err)
		os.Exit(2)
	}
	if os.Getenv("GOGC") == "" {
		// The heap is almost all segment bytes: pointer-free, so a collection is
		// cheap, while the default GOGC=100 lets RSS reach twice the store. run
		// paces it from there (startGCPacer).
		debug.SetGCPercent(cfg.GCPercent)
		paceGC = true
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, nil); err != nil {
		fmt.Fprintln(os.Stderr, "rtmpgate:", err)
		os.Exit(1)
	}
}

// paceGC is set by main when the collector is the gateway's to pace (no GOGC in
// the environment); tests running the gateway in-process leave their own.
var paceGC bool

func newLogger(cfg config) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return zerolog.Logger{}, err
	}
	zerolog.TimeFieldFormat = time.RFC3339Nano
	var log zerolog.Logger
	if cfg.LogFormat == "console" {
		log = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.RFC3339})
	} else {
		log = zerolog.New(os.Stderr)
	}
	return log.Level(level).With().Timestamp().Logger(), nil
}

// run serves until ctx ends, then shuts down in order: ingest first (each publisher's
// partial segment is flushed into its playlist), then the hub, then HTTP. listening,
// when set, learns the bound addresses (tests listen on port 0).
func run(ctx context.Context, cfg config, listening func(rtmp, http net.Addr)) error {
	log, err := newLogger(cfg)
	if err != nil {
		return err
	}
	g, err := build(cfg, log)
	if err != nil {
		return err
	}
	// The heap mapped ahead: the store's budget and the collector's headroom over
	// it, which is what RSS reaches (docs/CONFIG.md, Memory).
	stopHugeHeap := hugeheap.Advise(cfg.HugePages, g.maxStoreBytes*3/2, log)
	defer stopHugeHeap()
	if paceGC {
		// After the heap mapped ahead is freed: its collection must not count as
		// a heap the gateway needed.
		defer startGCPacer(cfg.GCPercent, gcMinHeadroom)()
	}

	errc := g.serve()
	if listening != nil {
		listening(g.rtmpLn.Addr(), g.http.addr())
	}
	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	g.shutdown(cfg.ShutdownTimeout)
	if serveErr != nil && !errors.Is(serveErr, ingest.ErrServerClosed) && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info().Msg("stopped")
	return nil
}

// servers are one run's parts: built by build, started by serve, stopped by
// shutdown.
type servers struct {
	log     zerolog.Logger
	hub     *packager.Hub
	rtmp    *ingest.Server
	rtmpLn  net.Listener
	http    *httpFront
	debug   *http.Server // nil: no debug listener
	debugLn net.Listener
	ready   atomic.Bool // both listeners served and not shutting down: GET /readyz
	// maxStoreBytes is the store budget storeBudget settled on (max_store_bytes,
	// or a share of the memory the process may use).
	maxStoreBytes int64
}

// build binds the listeners and makes the hub and the servers; nothing is
// served yet.
func build(cfg config, log zerolog.Logger) (*servers, error) {
	g := &servers{log: log}
	httpLn, err := g.listen(cfg)
	if err != nil {
		return nil, err
	}
	// After the listeners: a gateway that cannot listen says only that.
	cfg.MaxStoreBytes = storeBudget(cfg.MaxStoreBytes, log)
	g.maxStoreBytes = cfg.MaxStoreBytes
	g.hub = packager.NewHub(hubConfig(cfg), log)
	g.rtmp = ingestServer(cfg, g.hub, log)
	proxies, _ := trustedProxies(cfg.TrustedProxies) // validated
	rtmpPort := 0
	if a, ok := g.rtmpLn.Addr().(*net.TCPAddr); ok {
		rtmpPort = a.Port
	}
	obs, _ := cfg.obsConfig(rtmpPort) // validated
	handler := httpserve.New(g.hub, httpserve.Config{
		Logger: log, MaxStoreBytes: cfg.MaxStoreBytes, APIToken: cfg.APIToken,
		MaxBlockingWait: cfg.HTTPMaxBlockingWait, PublicBaseURL: cfg.PublicBaseURL, TrustedProxies: proxies,
		Collectors: []prometheus.Collector{newIngestCollector(g.rtmp)},
		Ready: func() error {
			if !g.ready.Load() {
				return errors.New("not listening: starting or shutting down")
			}
			return nil
		},
		Kick:      g.hub.Kick,
		Reconnect: g.reconnect,
		OBS:       obs,
	})
	g.http = newHTTPFront(httpLn, handler, cfg, proxies, log)
	return g, nil
}

// listen binds the RTMP, HTTP and debug listeners, or none: on an error it
// closes those it bound.
func (g *servers) listen(cfg config) (httpLn net.Listener, err error) {
	if g.rtmpLn, err = net.Listen("tcp", cfg.RTMP); err != nil {
		return nil, fmt.Errorf("rtmp: %w", err)
	}
	if httpLn, err = net.Listen("tcp", cfg.HTTP); err != nil {
		g.rtmpLn.Close()
		return nil, fmt.Errorf("http: %w", err)
	}
	if g.debug, g.debugLn, err = listenDebug(cfg.DebugAddr); err != nil {
		g.rtmpLn.Close()
		httpLn.Close()
		return nil, err
	}
	return httpLn, nil
}

func hubConfig(cfg config) packager.Config {
	return packager.Config{
		SegmentDuration:    cfg.SegmentDuration,
		MaxSegmentDuration: cfg.MaxSegmentDuration,
		WindowSegments:     cfg.WindowSegments,
		Linger:             cfg.Linger,
		TakeoverAfter:      cfg.TakeoverAfter,
		MaxStreams:         cfg.MaxStreams,
		MaxStoreBytes:      cfg.MaxStoreBytes,
		MaxSegmentBytes:    cfg.MaxSegmentBytes,
		PartTarget:         cfg.PartTarget,
		DisableLowLatency:  !cfg.LowLatency,
		Variants:           cfg.Variants,
	}
}

// ingestServer is the RTMP edge, publishing into hub.
func ingestServer(cfg config, hub *packager.Hub, log zerolog.Logger) *ingest.Server {
	return &ingest.Server{
		Handler:          withPublishAuth(cfg, publishHandler{hub}),
		Logger:           log,
		HandshakeTimeout: cfg.HandshakeTimeout,
		ReadTimeout:      cfg.ReadTimeout,
		ReadInterval:     cfg.ReadInterval,
		WriteTimeout:     cfg.WriteTimeout,
		MaxMessageSize:   cfg.MaxMessageSize,
		MaxConns:         cfg.MaxConns,
		MaxConnsPerIP:    cfg.MaxConnsPerIP,
		MaxChunkStreams:  cfg.MaxChunkStreams,
		MaxTracks:        cfg.MaxTracks,
	}
}

// serve starts serving every listener and returns where their Serve errors go.
func (g *servers) serve() <-chan error {
	errc := make(chan error, 3)
	go func() { errc <- g.rtmp.Serve(g.rtmpLn) }()
	go func() { errc <- g.http.serve() }()
	if g.debug != nil {
		go func() { errc <- g.debug.Serve(g.debugLn) }()
		g.log.Info().Str("debug", g.debugLn.Addr().String()).Msg("pprof listening")
	}
	g.ready.Store(true)
	g.log.Info().Str("rtmp", g.rtmpLn.Addr().String()).Str("http", g.http.addr().String()).Msg("listening")
	return errc
}

// shutdown stops in order within timeout: ingest (each publisher's partial
// segment is flushed), the hub, then HTTP, then the debug listener.
func (g *servers) shutdown(timeout time.Duration) {
	g.ready.Store(false)
	g.log.Info().Msg("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := g.rtmp.Shutdown(ctx); err != nil {
		g.log.Warn().Err(err).Msg("rtmp shutdown")
	}
	g.hub.Close()
	g.http.shutdown(ctx)
	if g.debug != nil {
		g.debug.Close() // profiles in flight are cut: nothing to drain
	}
}

// reconnect asks the publisher of app/name to reconnect, in httpserve's terms.
func (g *servers) reconnect(app, name string) error {
	err := g.rtmp.RequestReconnect(app, name, "")
	switch {
	case errors.Is(err, ingest.ErrNotPublishing):
		return fmt.Errorf("%w: %w", packager.ErrNotLive, err)
	case errors.Is(err, ingest.ErrNoReconnect):
		return fmt.Errorf("%w: %w", httpserve.ErrReconnectUnsupported, err)
	}
	return err
}

// publishHandler connects ingest to the hub, so neither imports the other.
type publishHandler struct{ hub *packager.Hub }

func (h publishHandler) OnPublish(_ context.Context, req ingest.PublishRequest) (remux.Writer, error) {
	remote := ""
	if req.Remote != nil {
		remote = req.Remote.String()
	}
	return h.hub.Publish(req.App, req.Name, remote, req.Kick)
}

// listenDebug serves net/http/pprof on addr, apart from the public HTTP listener
// so profiles are never reachable where viewers are; empty addr: off (nil server).
// Its own mux, not http.DefaultServeMux, so nothing else registered there leaks out.
func listenDebug(addr string) (*http.Server, net.Listener, error) {
	if addr == "" {
		return nil, nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, fmt.Errorf("debug: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln, nil
}
