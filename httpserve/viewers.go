package httpserve

import (
	"net/netip"
	"strings"
	"sync"
	"time"
)

// viewerEntries bounds the (stream, client address) pairs remembered, across
// streams: about 50 bytes each, so a few MB at most.
const viewerEntries = 100_000

// viewerTracker estimates each stream's viewers as the distinct client addresses
// that fetched one of its segments within the window. Behind a CDN the clients
// are the CDN's edges, so the estimate counts those; X-Forwarded-For is not
// believed because anyone can send it.
//
// Per request it costs one map lookup under a mutex. Memory is bounded: at the cap
// expired entries are swept (at most once per second); if the cap still holds, new
// addresses are not recorded until older ones expire.
type viewerTracker struct {
	window time.Duration
	max    int

	mu        sync.Mutex
	streams   map[viewerKey]map[netip.Addr]int64 // last fetch, unix ns
	n         int
	lastSweep time.Time
}

type viewerKey struct{ app, name string }

func newViewerTracker(window time.Duration, max int) *viewerTracker {
	return &viewerTracker{window: window, max: max, streams: make(map[viewerKey]map[netip.Addr]int64)}
}

// seen records a segment fetch from remote ("ip:port", as http.Request.RemoteAddr).
func (v *viewerTracker) seen(app, name, remote string, now time.Time) {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return
	}
	addr := ap.Addr().Unmap()
	key := viewerKey{app, name}
	v.mu.Lock()
	defer v.mu.Unlock()
	set := v.streams[key]
	if _, ok := set[addr]; ok {
		set[addr] = now.UnixNano()
		return
	}
	if v.n >= v.max {
		if now.Sub(v.lastSweep) < time.Second {
			return
		}
		v.sweepLocked(now)
		if v.n >= v.max {
			return
		}
		set = v.streams[key]
	}
	if set == nil {
		set = make(map[netip.Addr]int64)
		// The names are slices of the request's path; do not keep it alive.
		v.streams[viewerKey{strings.Clone(app), strings.Clone(name)}] = set
	}
	set[addr] = now.UnixNano()
	v.n++
}

// count is the number of distinct addresses that fetched a segment of app/name
// within the window before now. It drops the stream's expired entries on the way.
func (v *viewerTracker) count(app, name string, now time.Time) int {
	key := viewerKey{app, name}
	cutoff := now.Add(-v.window).UnixNano()
	v.mu.Lock()
	defer v.mu.Unlock()
	set := v.streams[key]
	for a, t := range set {
		if t < cutoff {
			delete(set, a)
			v.n--
		}
	}
	if set != nil && len(set) == 0 {
		delete(v.streams, key)
	}
	return len(set)
}

func (v *viewerTracker) sweepLocked(now time.Time) {
	v.lastSweep = now
	cutoff := now.Add(-v.window).UnixNano()
	for key, set := range v.streams {
		for a, t := range set {
			if t < cutoff {
				delete(set, a)
				v.n--
			}
		}
		if len(set) == 0 {
			delete(v.streams, key)
		}
	}
}
