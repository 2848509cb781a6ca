package cmaf_test

import (
	"runtime"
	"testing"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

// BenchmarkFragment measures the steady state of a live track: frames added one
// by one, a fragment flushed every 2 s (60 video frames of ~8 KiB, or 86 AAC
// frames), into a reused dst. It reports ns/frame and allocs/frame (goal 0).
func BenchmarkFragment(b *testing.B) {
	benches := []struct {
		name      string
		tr        *remux.Track
		perFrag   int
		frameMs   func(i int64) int64
		frameSize int
	}{
		{"video", videoTrack(), 60, func(i int64) int64 { return i * 1000 / 30 }, 8 << 10},
		{"audio", audioTrack(), 86, func(i int64) int64 { return (i*1024*1000 + 22050) / 44100 }, 300},
	}
	for _, bb := range benches {
		b.Run(bb.name, func(b *testing.B) {
			f, err := cmaf.NewFragmenter(bb.tr)
			if err != nil {
				b.Fatal(err)
			}
			data := make([]byte, bb.frameSize)
			dst := make([]byte, 0, 1<<20)
			fr := remux.Frame{Track: bb.tr, Data: data}
			var frame int64
			step := func() {
				fr.DTS = bb.frameMs(frame)
				fr.Key = frame%int64(bb.perFrag) == 0
				if bb.tr.Kind() == remux.KindVideo && !fr.Key {
					fr.CTS = 67
				} else {
					fr.CTS = 0
				}
				if err := f.Add(&fr); err != nil {
					b.Fatal(err)
				}
				frame++
				if frame%int64(bb.perFrag) == 0 {
					if dst, err = f.Flush(dst[:0], uint32(frame), bb.frameMs(frame)); err != nil {
						b.Fatal(err)
					}
				}
			}
			for range bb.perFrag { // warm up: size the reusable buffers
				step()
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.SetBytes(int64(bb.frameSize))
			b.ResetTimer()
			for b.Loop() {
				step()
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/frame")
		})
	}
}
