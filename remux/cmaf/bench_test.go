package cmaf_test

import (
	"runtime"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixturemedia"
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

// BenchmarkFragmentFixture runs the Enhanced RTMP fixtures' real frames (HEVC
// with B-frames, AV1, and their AAC / Opus audio, read with ingest/flv) through
// a Fragmenter in a loop, the DTS moving on by the clip's length each time, a
// fragment flushed before every video key frame (every 2 s) and audio flushed
// at the same cuts. It reports ns/frame and allocs/frame (goal 0).
func BenchmarkFragmentFixture(b *testing.B) {
	for _, bb := range []struct{ name, file string }{{"hevc", "hevc-aac.flv"}, {"av1", "av1-opus.flv"}} {
		b.Run(bb.name, func(b *testing.B) {
			c := fixturemedia.Read(b, bb.file)
			frames := c.Frames
			loop := frames[len(frames)-1].DTS + 40
			frags := map[*remux.Track]*cmaf.Fragmenter{}
			for _, tr := range []*remux.Track{c.Video, c.Audio} {
				f, err := cmaf.NewFragmenter(tr)
				if err != nil {
					b.Fatal(err)
				}
				frags[tr] = f
			}
			var (
				size int64
				seq  uint32
				err  error
			)
			for _, f := range frames {
				size += int64(len(f.Data))
			}
			dst := make([]byte, 0, 4<<20)
			var i int
			step := func() {
				n := i % len(frames)
				fr := frames[n]
				fr.DTS += int64(i/len(frames)) * loop
				if fr.Key && fr.Track == c.Video {
					for _, f := range frags {
						if f.Len() > 0 {
							seq++
							if dst, err = f.Flush(dst[:0], seq, fr.DTS); err != nil {
								b.Fatal(err)
							}
						}
					}
				}
				if err := frags[fr.Track].Add(&fr); err != nil {
					b.Fatal(err)
				}
				i++
			}
			for range 2 * len(frames) { // warm up: size the reusable buffers
				step()
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.SetBytes(size / int64(len(frames)))
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
