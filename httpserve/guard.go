package httpserve

import (
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// GuardConfig bounds the HTTP connections a Guard lets through.
type GuardConfig struct {
	// MaxConns and MaxConnsPerIP cap the connections open at once, in all and
	// from one address; a connection over either is closed at accept, before a
	// byte of it is read. Zero: no cap. Trusted proxies count only in MaxConns.
	MaxConns, MaxConnsPerIP int
	// WriteTimeout bounds each write's progress, not a whole response: every
	// write of up to guardWriteChunk bytes must be taken by the client within
	// it. Zero: no bound.
	WriteTimeout time.Duration
	// MaxHeaderBytes is the http.Server's; the head check holds at most this
	// plus net/http's own slack of a request head.
	MaxHeaderBytes int
	// TrustedProxies are exempt from the per-IP cap (a CDN or load balancer
	// brings many viewers over one address).
	TrustedProxies []netip.Prefix
	Logger         zerolog.Logger
}

// Guard is the HTTP listener's first line: it caps connections at accept,
// bounds each write, and checks the framing of every request head before
// net/http or the fast lane parses it (see headCheck). It wraps the listener
// given to http.Server.Serve (or to fastlane.New).
type Guard struct {
	net.Listener
	cfg GuardConfig

	mu      sync.Mutex
	active  int
	perIP   map[netip.Addr]int
	lastLog time.Time // last rejection log line
	quiet   int       // rejections since, not logged

	rejected   *prometheus.CounterVec // reason
	badFraming *prometheus.CounterVec // reason
	activeG    atomic.Int64
}

// guardLogInterval bounds the rejection log lines: one per burst.
const guardLogInterval = 10 * time.Second

// guardWriteChunk is the most one write deadline covers: a client must take
// at least this much per WriteTimeout, so a slow but reading viewer of a large
// segment is never cut, and one that stops reading is.
const guardWriteChunk = 64 << 10

// NewGuard wraps ln. When h is New's handler, the guard's metrics join its
// registry: rtmpgate_http_connections, rtmpgate_http_connections_rejected_total
// and rtmpgate_http_requests_rejected_total.
func NewGuard(ln net.Listener, h http.Handler, cfg GuardConfig) *Guard {
	if cfg.MaxHeaderBytes <= 0 {
		cfg.MaxHeaderBytes = http.DefaultMaxHeaderBytes
	}
	g := &Guard{
		Listener: ln,
		cfg:      cfg,
		perIP:    map[netip.Addr]int{},
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtmpgate_http_connections_rejected_total",
			Help: "HTTP connections closed at accept, by reason (max_conns, max_conns_per_ip).",
		}, []string{"reason"}),
		badFraming: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rtmpgate_http_requests_rejected_total",
			Help: "HTTP requests answered 400 and closed before parsing, by reason (content_length_and_transfer_encoding, transfer_encoding_http10, obs_fold).",
		}, []string{"reason"}),
	}
	for _, r := range []string{"max_conns", "max_conns_per_ip"} {
		g.rejected.WithLabelValues(r)
	}
	for _, r := range []string{rejectCLTE, rejectTE10, rejectFold} {
		g.badFraming.WithLabelValues(r)
	}
	if s, ok := h.(*server); ok {
		s.metrics.registry.MustRegister(g.rejected, g.badFraming, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "rtmpgate_http_connections",
			Help: "HTTP connections open now.",
		}, func() float64 { return float64(g.activeG.Load()) }))
	}
	return g
}

// Accept returns the next connection within the caps; those over them are
// closed here.
func (g *Guard) Accept() (net.Conn, error) {
	for {
		c, err := g.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteAddrIP(c.RemoteAddr())
		if why := g.admit(ip); why != "" {
			_ = c.Close()
			continue
		}
		g.activeG.Add(1)
		return &guardConn{Conn: c, g: g, ip: ip, check: headCheck{limit: g.cfg.MaxHeaderBytes + headSlack}}, nil
	}
}

func (g *Guard) admit(ip netip.Addr) (why string) {
	now := time.Now()
	g.mu.Lock()
	switch {
	case g.cfg.MaxConns > 0 && g.active >= g.cfg.MaxConns:
		why = "max_conns"
	case g.cfg.MaxConnsPerIP > 0 && g.perIP[ip] >= g.cfg.MaxConnsPerIP && !trusted(g.cfg.TrustedProxies, ip):
		why = "max_conns_per_ip"
	}
	if why == "" {
		g.active++
		g.perIP[ip]++
		g.mu.Unlock()
		return ""
	}
	logIt := now.Sub(g.lastLog) >= guardLogInterval
	quiet := g.quiet
	if logIt {
		g.lastLog, g.quiet = now, 0
	} else {
		g.quiet++
	}
	active := g.active
	g.mu.Unlock()
	g.rejected.WithLabelValues(why).Inc()
	if logIt {
		g.cfg.Logger.Warn().Str("remote", ip.String()).Str("reason", why).Int("active", active).
			Int("max_conns", g.cfg.MaxConns).Int("max_conns_per_ip", g.cfg.MaxConnsPerIP).
			Int("rejected_unlogged", quiet).Msg("http connection refused (logged once per 10 s)")
	}
	return why
}

func (g *Guard) release(ip netip.Addr) {
	g.activeG.Add(-1)
	g.mu.Lock()
	g.active--
	if g.perIP[ip]--; g.perIP[ip] <= 0 {
		delete(g.perIP, ip)
	}
	g.mu.Unlock()
}

func remoteAddrIP(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

func trusted(proxies []netip.Prefix, ip netip.Addr) bool {
	for _, p := range proxies {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// guardConn is one admitted connection: reads pass through the head check,
// writes are bounded one chunk at a time.
type guardConn struct {
	net.Conn
	g         *Guard
	ip        netip.Addr
	closeOnce sync.Once

	check headCheck // read side: one reader at a time, as net/http and the lane read
}

func (c *guardConn) Close() error {
	err := c.Conn.Close()
	c.closeOnce.Do(func() { c.g.release(c.ip) })
	return err
}

// CloseWrite lets net/http and the lane half-close, as on a *net.TCPConn.
func (c *guardConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *guardConn) Write(p []byte) (int, error) {
	wt := c.g.cfg.WriteTimeout
	if wt <= 0 {
		return c.Conn.Write(p)
	}
	n := 0
	for len(p) > 0 {
		chunk := p[:min(len(p), guardWriteChunk)]
		_ = c.Conn.SetWriteDeadline(time.Now().Add(wt))
		m, err := c.Conn.Write(chunk)
		n += m
		p = p[m:]
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (c *guardConn) Read(p []byte) (int, error) {
	n, err := c.check.read(c.Conn, p)
	if r := c.check.rejected; r != "" && !c.check.counted {
		c.check.counted = true
		c.g.badFraming.WithLabelValues(r).Inc()
	}
	return n, err
}
