package main

import (
	"context"
	"net"
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
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, cfg, func(r, h net.Addr) { addrs <- [2]net.Addr{r, h} })
	}()
	var a [2]net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	g := &gateway{rtmpAddr: a[0].String(), httpAddr: a[1].String()}
	pub := publishFFmpeg(t, src, g.ingestURL("inproc"), true)
	waitPlaylist(t, g.tsPlaylistURL("inproc"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v", err)
		}
	case <-time.After(cfg.ShutdownTimeout + time.Second):
		t.Fatal("run did not return within the shutdown timeout")
	}
	if err := pub.wait(t, 5*time.Second); err == nil {
		t.Log("publisher ended without error after the server closed")
	}
}
