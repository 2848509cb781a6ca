package httpserve

import (
	"net/http"
	"net/netip"
	"testing"
)

func TestClientAddr(t *testing.T) {
	s := &server{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}}}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"192.0.2.1:5000", []string{"203.0.113.9"}, "192.0.2.1:5000"},                  // untrusted peer: header ignored
		{"10.1.2.3:5000", []string{"203.0.113.9"}, "203.0.113.9:0"},                    // trusted proxy
		{"10.1.2.3:5000", []string{"1.1.1.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9:0"}, // rightmost untrusted hop
		{"10.1.2.3:5000", []string{"203.0.113.9", "10.2.2.2"}, "203.0.113.9:0"},        // across field lines
		{"10.1.2.3:5000", []string{"garbage, 10.2.2.2"}, "10.1.2.3:5000"},              // unreadable hop: the peer
		{"10.1.2.3:5000", nil, "10.1.2.3:5000"},
		{"[::1]:80", []string{"2001:db8::1"}, "[2001:db8::1]:0"},
	} {
		r := &http.Request{RemoteAddr: tc.remote, Header: http.Header{}}
		for _, v := range tc.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := s.clientAddr(r); got != tc.want {
			t.Errorf("%s %q: %s, want %s", tc.remote, tc.xff, got, tc.want)
		}
	}
	if got := (&server{}).clientAddr(&http.Request{RemoteAddr: "10.1.2.3:1", Header: http.Header{"X-Forwarded-For": {"1.2.3.4"}}}); got != "10.1.2.3:1" {
		t.Errorf("no trusted proxies: %s", got)
	}
}
