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
		keep, live, base uint64
		want             int
	}{
		{0, 0, 0, 3200},                    // nothing read: the floor over 1 MB
		{0, 300 << 10, 300 << 10, 3200},    // a fresh process's few hundred KB: the same
		{0, 4 * mb, 4 * mb, 800},           // a store starting to fill: 32 MB past 4 MB
		{0, 100 * mb, 100 * mb, 32},        // 32 MB past 100 MB
		{0, 267 * mb, 267 * mb, 12},        // from here on 12 % is more than the floor
		{0, 2000 * mb, 2000 * mb, 12},      // a full store: gc_percent
		{560 * mb, 500 * mb, 500 * mb, 12}, // keep below what 12 % gives: no change
		{600 * mb, 500 * mb, 500 * mb, 20}, // keep 600 MB: 100 MB past 500
		{600 * mb, 8 * mb, 10 * mb, 5920},  // streams ended: 592 MB past 8, on a base of 10
		{600 * mb, 700 * mb, 700 * mb, 12}, // more live than kept
	} {
		if got := gcPercentFor(12, 32*mb, c.keep, c.live, c.base); got != c.want {
			t.Errorf("gcPercentFor(12, 32 MB, keep %d, live %d, base %d) = %d, want %d", c.keep, c.live, c.base, got, c.want)
		}
	}
}

// After the live heap drops (streams ended), the goal stays at the highest of
// the last gcKeepFor, then follows the live heap again.
func TestGCPacerKeepsTheHeapItNeeded(t *testing.T) {
	const mb = 1 << 20
	now := time.Unix(0, 0)
	p := &gcPacer{percent: 12, floor: 32 * mb, set: -2, now: func() time.Time { return now }}
	step := func(live uint64) int { return p.percentAfter(live, live) }
	if got := step(500 * mb); got != 12 {
		t.Fatalf("full store: percent %d, want 12", got)
	}
	now = now.Add(time.Minute)
	if got, want := step(10*mb), int((560*mb-10*mb)*100/(10*mb)); got != want {
		t.Fatalf("a minute after the streams ended: percent %d, want %d (goal 560 MB)", got, want)
	}
	now = now.Add(gcKeepFor)
	if got := step(10 * mb); got != 320 {
		t.Fatalf("after gcKeepFor: percent %d, want 320 (the floor)", got)
	}
}

// The pacer in a live process: a heap above the floor's reach runs at about
// gc_percent; once it is freed, the next collections keep the goal it had
// (gcKeepFor), so the percent is far above; stopping leaves gc_percent.
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
	waitFor("12 or 13 with 256 MB live", func(p int) bool { return p == 12 || p == 13 })
	runtime.KeepAlive(big)
	big = nil
	waitFor("the 256 MB kept once freed", func(p int) bool { return p >= 1000 })
	stop()
	if p := percent(); p != 12 {
		t.Errorf("GC percent %d after stop, want 12", p)
	}
}
