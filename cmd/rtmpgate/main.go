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
		// cheap, while the default GOGC=100 lets RSS reach twice the store.
		debug.SetGCPercent(cfg.GCPercent)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, nil); err != nil {
		fmt.Fprintln(os.Stderr, "rtmpgate:", err)
		os.Exit(1)
	}
}

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
	rtmpLn, err := net.Listen("tcp", cfg.RTMP)
	if err != nil {
		return fmt.Errorf("rtmp: %w", err)
	}
	httpLn, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		rtmpLn.Close()
		return fmt.Errorf("http: %w", err)
	}
	// After the listeners: a gateway that cannot listen says only that.
	cfg.MaxStoreBytes = storeBudget(cfg.MaxStoreBytes, log)

	hub := packager.NewHub(packager.Config{
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
	}, log)
	rtmpSrv := &ingest.Server{
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
	}
	var ready atomic.Bool                            // both listeners served and not shutting down: GET /readyz
	proxies, _ := trustedProxies(cfg.TrustedProxies) // validated
	httpMaxConns := fitHTTPConns(cfg, openFileLimit(), log)
	httpSrv := &http.Server{
		Handler: httpserve.New(hub, httpserve.Config{
			Logger: log, Ingest: rtmpSrv, MaxStoreBytes: cfg.MaxStoreBytes, APIToken: cfg.APIToken,
			MaxBlockingWait: cfg.HTTPMaxBlockingWait, PublicBaseURL: cfg.PublicBaseURL, TrustedProxies: proxies,
			Ready: func() error {
				if !ready.Load() {
					return errors.New("not listening: starting or shutting down")
				}
				return nil
			},
			Kick: hub.Kick,
		}),
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    cfg.HTTPMaxHeaderBytes,
	}
	// Every HTTP connection, the fast lane's too, goes through the guard:
	// caps at accept, a bound on each write, request heads checked before parsing.
	guarded := httpserve.NewGuard(httpLn, httpSrv.Handler, httpserve.GuardConfig{
		MaxConns: httpMaxConns, MaxConnsPerIP: cfg.HTTPMaxConnsPerIP, WriteTimeout: cfg.HTTPWriteTimeout,
		MaxHeaderBytes: cfg.HTTPMaxHeaderBytes, TrustedProxies: proxies, Logger: log,
	})

	debugSrv, debugLn, err := listenDebug(cfg.DebugAddr)
	if err != nil {
		rtmpLn.Close()
		httpLn.Close()
		return err
	}

	// The heap mapped ahead: the store's budget and the collector's headroom over
	// it, which is what RSS reaches (about 1.3x the store; see Memory).
	stopHugeHeap := hugeheap.Advise(cfg.HugePages, cfg.MaxStoreBytes*3/2, log)
	defer stopHugeHeap()

	errc := make(chan error, 3)
	go func() { errc <- rtmpSrv.Serve(rtmpLn) }()
	// The fast lane answers stream-file GETs on its own keep-alive loop and
	// hands every other connection to httpSrv (httpserve.Lane).
	var lane *httpserve.Lane
	if cfg.HTTPFastLane {
		lane = httpserve.NewLane(guarded, httpSrv)
		go func() { errc <- httpSrv.Serve(lane) }()
	} else {
		go func() { errc <- httpSrv.Serve(guarded) }()
	}
	if debugSrv != nil {
		go func() { errc <- debugSrv.Serve(debugLn) }()
		log.Info().Str("debug", debugLn.Addr().String()).Msg("pprof listening")
	}
	ready.Store(true)
	log.Info().Str("rtmp", rtmpLn.Addr().String()).Str("http", httpLn.Addr().String()).Msg("listening")
	if listening != nil {
		listening(rtmpLn.Addr(), httpLn.Addr())
	}

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
	}
	ready.Store(false)
	log.Info().Msg("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	if err := rtmpSrv.Shutdown(shutCtx); err != nil {
		log.Warn().Err(err).Msg("rtmp shutdown")
	}
	hub.Close()
	if err := httpSrv.Shutdown(shutCtx); err != nil {
		log.Warn().Err(err).Msg("http shutdown")
		httpSrv.Close()
	}
	if lane != nil {
		if err := lane.Shutdown(shutCtx); err != nil {
			log.Warn().Err(err).Msg("http fast lane shutdown")
		}
	}
	if debugSrv != nil {
		debugSrv.Close() // profiles in flight are cut: nothing to drain
	}
	if serveErr != nil && !errors.Is(serveErr, ingest.ErrServerClosed) && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	log.Info().Msg("stopped")
	return nil
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
