package httpserve

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request came from, "ip:port" as
// http.Request.RemoteAddr: the peer's, unless the peer is a trusted proxy,
// whose X-Forwarded-For is believed as far back as it names trusted proxies
// (the rightmost address that is not one is the client; port 0). A header
// from anyone else is ignored: a client could write any address there.
func (s *server) clientAddr(r *http.Request) string {
	if len(s.cfg.TrustedProxies) == 0 {
		return r.RemoteAddr
	}
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil || !trusted(s.cfg.TrustedProxies, peer.Addr().Unmap()) {
		return r.RemoteAddr
	}
	xff := r.Header.Values("X-Forwarded-For")
	for i := len(xff) - 1; i >= 0; i-- {
		hops := strings.Split(xff[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			ip, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return r.RemoteAddr // a hop we cannot read: stop believing
			}
			if ip = ip.Unmap(); !trusted(s.cfg.TrustedProxies, ip) {
				return netip.AddrPortFrom(ip, 0).String()
			}
		}
	}
	return r.RemoteAddr
}
