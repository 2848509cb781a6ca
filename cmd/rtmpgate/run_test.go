package main

import (
	"context"
	"net"
	"net/http"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// The gateway run in-process: a publish in flight when the context ends is flushed,
// run returns nil, and no goroutine outlives it.
func TestRunShutsDownCleanly(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	src := clip(t, "av")
	cfg := defaultConfig()
	cfg.RTMP, cfg.HTTP, cfg.LogLevel = "127.0.0.1:0", "127.0.0.1:0", "error"
	a, stop := startRun(t, cfg)
	g := &gateway{rtmpAddr: a[0].String(), httpAddr: a[1].String()}
	pub := publishFFmpeg(t, src, g.ingestURL("inproc"), true)
	waitPlaylist(t, g.tsPlaylistURL("inproc"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	stop()
	if err := pub.wait(t, 5*time.Second); err == nil {
		t.Log("publisher ended without error after the server closed")
	}
}

// With http_fast_lane off (the default) the HTTP listener is served by
// net/http alone, with it on by the lane first; either way a run starts,
// answers and ends without a goroutine left behind.
func TestRunWithoutFastLane(t *testing.T) {
	for _, lane := range []bool{false, true} {
		runAndAnswer(t, lane)
	}
}

func runAndAnswer(t *testing.T, lane bool) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	cfg := defaultConfig()
	cfg.RTMP, cfg.HTTP, cfg.LogLevel, cfg.HTTPFastLane = "127.0.0.1:0", "127.0.0.1:0", "error", lane
	a, stop := startRun(t, cfg)
	h := a[1]
	for path, want := range map[string]int{"/healthz": 200, "/live/none/index.m3u8": 404} {
		resp, err := http.Get("http://" + h.String() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
	stop()
}

// startRun runs the gateway in-process with cfg and returns its RTMP and HTTP
// addresses and a stop that ends the run and fails the test unless run
// returns nil within the shutdown timeout.
func startRun(t *testing.T, cfg config) (addrs [2]net.Addr, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	listening := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, func(r, h net.Addr) { listening <- [2]net.Addr{r, h} })
	}()
	select {
	case addrs = <-listening:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	return addrs, func() {
		t.Helper()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("run returned %v", err)
			}
		case <-time.After(cfg.ShutdownTimeout + time.Second):
			t.Fatal("run did not return within the shutdown timeout")
		}
	}
}
