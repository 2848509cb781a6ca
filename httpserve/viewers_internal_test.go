package httpserve

import (
	"strconv"
	"testing"
	"time"
)

func TestViewerTrackerBounded(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	v := newViewerTracker(30*time.Second, 100)
	for i := range 300 {
		v.seen("live", "a", "10.0."+strconv.Itoa(i/250)+"."+strconv.Itoa(i%250)+":1234", now)
	}
	if v.n != 100 || v.count("live", "a", now) != 100 {
		t.Fatalf("entries %d, count %d: the cap is 100", v.n, v.count("live", "a", now))
	}
	// Known addresses still refresh at the cap.
	v.seen("live", "a", "10.0.0.5:999", now.Add(20*time.Second))
	// Within a second of a sweep, a full tracker does not sweep again.
	v.seen("live", "b", "10.1.0.1:1", now.Add(500*time.Millisecond))
	if v.count("live", "b", now.Add(500*time.Millisecond)) != 0 {
		t.Errorf("a new address was recorded at the cap")
	}
	// Once the old entries expire, a sweep makes room.
	later := now.Add(45 * time.Second)
	v.seen("live", "b", "10.1.0.1:1", later)
	if got := v.count("live", "b", later); got != 1 {
		t.Errorf("after expiry: b has %d viewers, want 1", got)
	}
	if got := v.count("live", "a", later); got != 1 {
		t.Errorf("after expiry: a has %d viewers, want the refreshed one", got)
	}
	if v.n != 2 {
		t.Errorf("entries %d after the sweep, want 2", v.n)
	}
	for _, bad := range []string{"", "pipe", "1.2.3.4", "[::1]"} {
		v.seen("live", "c", bad, later)
	}
	if got := v.count("live", "c", later); got != 0 {
		t.Errorf("unparsable remotes counted: %d", got)
	}
	// IPv4-mapped IPv6 and plain IPv4 are one client.
	v.seen("live", "d", "[::ffff:10.2.0.1]:1", later)
	v.seen("live", "d", "10.2.0.1:2", later)
	if got := v.count("live", "d", later); got != 1 {
		t.Errorf("mapped and plain IPv4 counted as %d clients", got)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"", false}, {"gzip", true}, {"GZIP", true}, {"x-gzip", true}, {"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.8", true}, {"gzip;q=0", false}, {"gzip; q=0.000", false}, {"gzip;q=0.001", true},
		{"*", true}, {"*;q=0", false}, {"gzip;q=0, *", false}, {"*;q=0, gzip", true}, {"identity", false},
		{"gzipx", false}, {"gzip;q=bogus", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			if got := acceptsGzip(tc.in); got != tc.want {
				t.Errorf("acceptsGzip(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestDocCacheBounded(t *testing.T) {
	c := newDocCache(8, "")
	src := []byte("#EXTM3U\n")
	for i := range 100 {
		d := c.get(nil, strconv.Itoa(i), src)
		if string(d.plain) != "#EXTM3U\n" {
			t.Fatal("plain body changed")
		}
	}
	if len(c.entries) > 8 {
		t.Errorf("%d entries, cap 8", len(c.entries))
	}
	// Same slice: the prepared doc is reused; a new slice with equal bytes is a
	// new snapshot and prepared again.
	a, b := c.get(nil, "x", src), c.get(nil, "x", src)
	if a != b {
		t.Errorf("same snapshot prepared twice")
	}
	if c.get(nil, "x", []byte("#EXTM3U\n")) == a {
		t.Errorf("a new snapshot reused the old preparation")
	}
	// The time source: an absolute path without a public base URL, else under it.
	mpd := []byte(`<UTCTiming value="ORIGIN/time"/>`)
	if d := c.get(nil, "index.mpd", mpd); string(d.plain) != `<UTCTiming value="/time"/>` {
		t.Errorf("no base: %s", d.plain)
	}
	if d := newDocCache(8, "https://cdn.example/live").get(nil, "index.mpd", mpd); string(d.plain) != `<UTCTiming value="https://cdn.example/live/time"/>` {
		t.Errorf("base: %s", d.plain)
	}
}
