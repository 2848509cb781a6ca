package packager_test

import (
	"math"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// TestSegmentAvailability publishes in real time on the fake clock (each frame
// arrives at its DTS) and checks the histogram against the delays the session
// must have: a segment cut by a keyframe at K is listed when audio's first frame
// at or after K arrives, since that frame ends the segment's audio fragment.
// The segment closed by the unpublish is not counted.
func TestSegmentAvailability(t *testing.T) {
	h, clk := newHub(t, packager.Config{})
	w := mustPublish(t, h, "live", "avail")
	for _, tr := range []*remux.Track{videoA, audioA} {
		if err := w.WriteTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	frames := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 9000}.frames()
	var (
		want []int64 // ms
		now  int64
	)
	for i := range frames {
		f := &frames[i]
		clk.Advance(time.Duration(f.DTS-now) * time.Millisecond)
		now = f.DTS
		if f.Key && f.Track == videoA && f.DTS > 0 {
			for _, a := range frames[i:] {
				if a.Track == audioA && a.DTS >= f.DTS {
					want = append(want, a.DTS-f.DTS)
					break
				}
			}
		}
		if err := w.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
	}
	closeWriter(t, w)

	got := h.SegmentAvailability()
	var sum int64
	for _, d := range want {
		sum += d
	}
	if len(want) != 4 || got.Count != uint64(len(want)) || math.Abs(got.Sum-float64(sum)/1000) > 1e-9 {
		t.Fatalf("histogram count %d sum %v s, want %d segments summing to %d ms (%v)", got.Count, got.Sum, len(want), sum, want)
	}
	for le, n := range got.Buckets {
		var below uint64
		for _, d := range want {
			if float64(d)/1000 <= le {
				below++
			}
		}
		if n != below {
			t.Fatalf("bucket le=%v holds %d, want %d (delays %v ms)", le, n, below, want)
		}
	}
	// Quantiles interpolate within buckets, as histogram_quantile does: the
	// median is the second delay's bucket bound (5 ms), p99 inside the largest's.
	p50, p99 := got.Quantile(0.5), got.Quantile(0.99)
	t.Logf("delays %v ms: p50 %.4f s, p99 %.4f s", want, p50, p99)
	if math.Abs(p50-0.005) > 1e-9 || p99 <= 0.015 || p99 > 0.025 {
		t.Fatalf("p50 %v s, p99 %v s for delays %v ms", p50, p99, want)
	}
}
