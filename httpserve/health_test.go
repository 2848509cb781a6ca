package httpserve_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/httpserve"
)

func TestReadyz(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    httpserve.Config
		status int
		reason string
	}{
		{"zero config", httpserve.Config{}, 200, "ok"},
		{"listening", httpserve.Config{Ready: func() error { return nil }}, 200, "ok"},
		{"not listening", httpserve.Config{Ready: func() error { return errors.New("not listening") }}, 503, "not ready: not listening"},
		{"store over budget", httpserve.Config{MaxStoreBytes: 1000}, 503, "not ready: store "},
		{"store under budget", httpserve.Config{MaxStoreBytes: 1 << 30}, 200, "ok"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, hub := newServerCfg(t, false, tc.cfg)
			if hub.StoreBytes() <= 1000 {
				t.Fatalf("the demo stream holds only %d bytes", hub.StoreBytes())
			}
			res, body := get(t, srv.URL+"/readyz", nil)
			if res.StatusCode != tc.status || !strings.HasPrefix(body, tc.reason) || strings.Count(body, "\n") != 1 {
				t.Errorf("readyz: %d %q, want %d %q...", res.StatusCode, body, tc.status, tc.reason)
			}
			if res.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("readyz cacheable")
			}
			if res, _ := get(t, srv.URL+"/healthz", nil); res.StatusCode != 200 {
				t.Errorf("healthz %d while readyz %d", res.StatusCode, tc.status)
			}
		})
	}
}
