package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"testing"
	"time"
)

func TestGCPercentFor(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		base uint64
		want int
	}{
		{0, 3200},         // nothing read: the floor over 1 MB
		{300 << 10, 3200}, // a fresh process's few hundred KB: the same
		{4 * mb, 800},     // a store starting to fill: 32 MB past 4 MB
		{100 * mb, 32},    // 32 MB past 100 MB
		{267 * mb, 12},    // from here on 12 % is more than the floor
		{2000 * mb, 12},   // a full store: gc_percent
	} {
		if got := gcPercentFor(12, 32*mb, c.base); got != c.want {
			t.Errorf("gcPercentFor(12, 32 MB, %d) = %d, want %d", c.base, got, c.want)
		}
	}
}

// The pacer follows the live heap: a heap above the floor's reach runs at
// gc_percent, and after it is freed the next collection raises the percent again.
func TestGCPacerFollowsLiveHeap(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	gogc := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	percent := func() int {
		metrics.Read(gogc)
		return int(gogc[0].Value.Uint64())
	}
	waitFor := func(what string, ok func(int) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(percent()) {
			if time.Now().After(deadline) {
				t.Fatalf("GC percent %d, want %s", percent(), what)
			}
			runtime.GC()
			time.Sleep(10 * time.Millisecond)
		}
	}
	const floor = 8 << 20
	stop := startGCPacer(12, floor)
	// Pointer-free and never written: address space, not memory.
	big := make([]byte, 256<<20)
	waitFor("12 with 256 MB live", func(p int) bool { return p == 12 })
	runtime.KeepAlive(big)
	big = nil
	waitFor("above 12 with a small heap", func(p int) bool { return p > 12 })
	stop()
	if p := percent(); p != 12 {
		t.Errorf("GC percent %d after stop, want 12", p)
	}
}
