package ts_test

import (
	"runtime"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixturemedia"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

// BenchmarkAppendFrame muxes a 2 s GOP at 30 fps (one 60 KB IDR, 59 P/B frames of
// 6 KB, each in several NAL units) with AAC frames in between, into a reused
// segment buffer, and reports per-frame cost and allocations.
func BenchmarkAppendFrame(b *testing.B) {
	v, a := testVideo(4), testAudio()
	idrNAL := append([]byte{0x65}, make([]byte, 60000)...)
	pNAL := append([]byte{0x41}, make([]byte, 3000)...)
	var frames []remux.Frame
	for i := range 60 {
		f := remux.Frame{Track: v, DTS: int64(i) * 33, CTS: 66, Key: i == 0, Data: lp(4, sei, pNAL, pNAL)}
		if i == 0 {
			f.Data = lp(4, sei, idrNAL)
		}
		frames = append(frames, f, remux.Frame{Track: a, DTS: int64(i) * 33, Key: true, Data: make([]byte, 370)})
	}
	var bytesPerGOP int64
	for _, f := range frames {
		bytesPerGOP += int64(len(f.Data))
	}
	m := ts.NewMuxer(v, a)
	buf := make([]byte, 0, 4<<20)
	b.SetBytes(bytesPerGOP / int64(len(frames)))
	var ms0, ms1 runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&ms0)
	var err error
	for i := 0; i < b.N; i++ {
		j := i % len(frames)
		if j == 0 {
			buf = m.AppendSegmentStart(buf[:0])
		}
		f := &frames[j]
		if buf, err = m.AppendFrame(buf, f); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
	// Whole allocations per frame, rounded down as allocs/op is: a stray runtime
	// allocation over millions of frames is not a per-frame cost.
	b.ReportMetric(float64((ms1.Mallocs-ms0.Mallocs)/uint64(b.N)), "allocs/frame")
}

// BenchmarkAppendFrameHEVC muxes the HEVC+AAC Enhanced RTMP fixture's real
// frames (read with ingest/flv) in a loop, a segment started (PAT/PMT) at every
// key frame, into a reused buffer, and reports per-frame cost and allocations.
// AV1 has no TS carriage (ts.Carries), so there is no AV1 case.
func BenchmarkAppendFrameHEVC(b *testing.B) {
	c := fixturemedia.Read(b, "hevc-aac.flv")
	frames := c.Frames
	loop := frames[len(frames)-1].DTS + 40
	var size int64
	for _, f := range frames {
		size += int64(len(f.Data))
	}
	m := ts.NewMuxer(c.Video, c.Audio)
	buf := make([]byte, 0, 4<<20)
	var err error
	b.SetBytes(size / int64(len(frames)))
	var ms0, ms1 runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&ms0)
	for i := 0; i < b.N; i++ {
		f := frames[i%len(frames)]
		f.DTS += int64(i/len(frames)) * loop
		if f.Key && f.Track == c.Video || len(buf) > 3<<20 {
			buf = m.AppendSegmentStart(buf[:0])
		}
		if buf, err = m.AppendFrame(buf, &f); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
	b.ReportMetric(float64((ms1.Mallocs-ms0.Mallocs)/uint64(b.N)), "allocs/frame")
}
