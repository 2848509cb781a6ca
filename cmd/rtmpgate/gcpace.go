package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
	"time"
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

// gcKeepFor is how long the heap the gateway last needed is kept before the
// runtime may give it back. When streams end, their segments become garbage; the
// next collection used to lower the heap goal to the few MB left live and the
// runtime then returned the memory to the system, so streams that came back
// (reconnecting encoders, the next show) wrote every page of their store into
// fresh memory again: on the bench VM 50 streams published, ended and published
// again paid the same ~1 s of first writes the second time as the first
// (docs/BENCHMARKS.md). Kept, the pages are reused; an idle gateway gives them
// back some minutes after its streams left (the runtime collects at least every
// 2 minutes, and each collection re-sets the percent).
const gcKeepFor = 3 * time.Minute

// gcPercentFor is the GC percent that lets the heap grow past its live bytes by
// the most of: percent, floor bytes, and up to keep bytes in all. base is what
// the runtime applies the percent to: the live heap, the goroutine stacks and
// the globals the last collection scanned.
func gcPercentFor(percent int, floor, keep, live, base uint64) int {
	base = max(base, 1<<20)
	headroom := floor
	if keep > live {
		headroom = max(headroom, keep-live)
	}
	want := (headroom*100 + base - 1) / base
	if want <= uint64(percent) {
		return percent
	}
	return int(min(want, 1_000_000))
}

// gcPacer re-sets the GC percent after each collection from what that
// collection found live (gcPercentFor): the headroom never drops below the
// floor, and the heap goal not below the highest of the last gcKeepFor.
type gcPacer struct {
	percent int
	floor   uint64
	set     int
	sample  []metrics.Sample
	stopped atomic.Bool
	now     func() time.Time

	peak   uint64    // the highest heap goal gc_percent and the floor gave, kept for gcKeepFor
	peakAt time.Time // when it was last reached
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
	p := &gcPacer{percent: percent, floor: floor, set: -2, now: time.Now,
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
	var v [3]uint64 // live heap, stacks, globals
	for i, s := range p.sample {
		if s.Value.Kind() == metrics.KindUint64 {
			v[i] = s.Value.Uint64()
		}
	}
	if want := p.percentAfter(v[0], v[0]+v[1]+v[2]); want != p.set {
		debug.SetGCPercent(want)
		p.set = want
	}
}

// percentAfter is the GC percent after a collection that found live heap bytes
// and base bytes in all (heap, stacks, globals), keeping the highest goal of the
// last gcKeepFor.
func (p *gcPacer) percentAfter(live, base uint64) int {
	natural := live + max(p.floor, base*uint64(p.percent)/100)
	if now := p.now(); natural >= p.peak || now.Sub(p.peakAt) > gcKeepFor {
		p.peak, p.peakAt = natural, now
	}
	return gcPercentFor(p.percent, p.floor, p.peak, live, base)
}
