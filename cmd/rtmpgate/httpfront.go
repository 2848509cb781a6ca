package main

import (
	"context"
	"net"
	"net/http"
	"net/netip"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/fastlane"
)

// httpFront is the public HTTP listener and what serves it: the bound socket,
// the guard over it, the fast lane over the guard when http_fast_lane is on,
// and the http.Server. It alone closes the listener, in shutdown.
type httpFront struct {
	bound net.Listener
	srv   *http.Server
	ln    net.Listener   // what srv serves: the guard, or the lane over it
	lane  *fastlane.Lane // nil when the lane is off
	log   zerolog.Logger
}

func newHTTPFront(bound net.Listener, handler http.Handler, cfg config, proxies []netip.Prefix, log zerolog.Logger) *httpFront {
	f := &httpFront{bound: bound, log: log, srv: &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: cfg.HTTPReadHeaderTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    cfg.HTTPMaxHeaderBytes,
	}}
	// Every HTTP connection, the fast lane's too, goes through the guard:
	// caps at accept, a bound on each write, request heads checked before parsing.
	f.ln = httpserve.NewGuard(bound, handler, httpserve.GuardConfig{
		MaxConns: fitHTTPConns(cfg, openFileLimit(), log), MaxConnsPerIP: cfg.HTTPMaxConnsPerIP,
		WriteTimeout: cfg.HTTPWriteTimeout, MaxHeaderBytes: cfg.HTTPMaxHeaderBytes, TrustedProxies: proxies, Logger: log,
	})
	if cfg.HTTPFastLane {
		// The lane answers stream-file GETs on its own keep-alive loop and
		// hands every other connection to srv.
		f.lane = fastlane.New(f.ln, f.srv, log)
		f.ln = f.lane
	}
	return f
}

func (f *httpFront) addr() net.Addr { return f.bound.Addr() }

// serve serves until shutdown; it returns http.ErrServerClosed then.
func (f *httpFront) serve() error { return f.srv.Serve(f.ln) }

// shutdown closes the listener (srv.Shutdown closes what it serves: the
// lane, which closes the guard and the socket under it), drains net/http's
// connections and then the lane's within ctx, and cuts what is left.
func (f *httpFront) shutdown(ctx context.Context) {
	if err := f.srv.Shutdown(ctx); err != nil {
		f.log.Warn().Err(err).Msg("http shutdown")
		f.srv.Close()
	}
	if f.lane != nil {
		if err := f.lane.Shutdown(ctx); err != nil {
			f.log.Warn().Err(err).Msg("http fast lane shutdown")
		}
	}
}
