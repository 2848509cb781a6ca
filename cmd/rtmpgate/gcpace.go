package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// gcMinHeadroom is the least the heap may grow past its live bytes before a
// collection. gc_percent alone scales the headroom with the heap, so while a
// fresh gateway's store fills from a few MB the collector ran every few hundred
// KB of segments: 78 collections in the first 10 s of 50 publishers, about a
// third of the gateway's CPU over those seconds (docs/BENCHMARKS.md). From a
// live heap of 267 MB on, gc_percent 12 gives more than this anyway, so a
// full store's pacing and RSS are unchanged; a small gateway's RSS may reach
// this much past its segments.
const gcMinHeadroom = 32 << 20

// gcPercentFor is the GC percent that lets the heap grow by at least floor bytes
// past its live bytes, and by percent when that is more. base is what the
// runtime applies the percent to: the live heap, the goroutine stacks and the
// globals the last collection scanned.
func gcPercentFor(percent int, floor, base uint64) int {
	base = max(base, 1<<20)
	want := (floor*100 + base - 1) / base
	if want <= uint64(percent) {
		return percent
	}
	return int(min(want, 10000))
}

// gcPacer re-sets the GC percent after each collection from the live heap that
// collection found (gcPercentFor), so the collector's headroom never drops
// below the floor.
type gcPacer struct {
	percent int
	floor   uint64
	set     int
	sample  []metrics.Sample
	stopped atomic.Bool
}

// gcSentinel is the object whose finalizer runs once per collection; it holds a
// pointer so that it is never a tiny allocation (whose finalizers may not run).
type gcSentinel struct {
	_ *byte
	_ [8]byte
}

// startGCPacer sets the GC percent and keeps the headroom at least floor; the
// returned function stops the pacing and leaves percent in effect.
func startGCPacer(percent int, floor uint64) (stop func()) {
	p := &gcPacer{percent: percent, floor: floor, set: -2,
		sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/gc/scan/stack:bytes"}, {Name: "/gc/scan/globals:bytes"}}}
	p.adjust()
	p.arm()
	return func() {
		if !p.stopped.Swap(true) {
			debug.SetGCPercent(percent)
		}
	}
}

// arm sets up the next adjustment: the sentinel is garbage at once, so the next
// collection finds it and runs its finalizer.
func (p *gcPacer) arm() {
	runtime.SetFinalizer(&gcSentinel{}, func(*gcSentinel) {
		if p.stopped.Load() {
			return
		}
		p.adjust()
		p.arm()
	})
}

func (p *gcPacer) adjust() {
	metrics.Read(p.sample)
	var base uint64
	for _, s := range p.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			base += s.Value.Uint64()
		}
	}
	if want := gcPercentFor(p.percent, p.floor, base); want != p.set {
		debug.SetGCPercent(want)
		p.set = want
	}
}
