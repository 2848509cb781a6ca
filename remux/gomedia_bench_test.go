package remux_test

import (
	"runtime"
	"testing"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
	mpeg2 "github.com/yapingcat/gomedia/go-mpeg2"
)

// BenchmarkTSMuxers compares remux/ts with gomedia's TS muxer (which rtmpgate
// used first) on the same real frames. gomedia takes Annex B video with the
// parameter sets in line and ADTS audio: that conversion is done before the
// timer for gomedia, while remux/ts does it inside AppendFrame, so the
// comparison favours gomedia.
func BenchmarkTSMuxers(b *testing.B) {
	c := loadBenchClip(b)
	n := len(c.frames)
	b.Run("remux-ts", func(b *testing.B) {
		m := ts.NewMuxer(c.video, c.audio)
		buf := make([]byte, 0, 4<<20)
		var fr remux.Frame
		var err error
		step := func(i int) {
			if i%n == 0 {
				buf = m.AppendSegmentStart(buf[:0])
			}
			fr = c.frames[i%n]
			fr.DTS += int64(i/n) * c.duration
			if buf, err = m.AppendFrame(buf, &fr); err != nil {
				b.Fatal(err)
			}
		}
		runTSBench(b, n, step)
	})
	b.Run("gomedia", func(b *testing.B) {
		annexB := make([][]byte, n)
		for i := range c.frames {
			annexB[i] = toGomediaInput(&c.frames[i])
		}
		m := mpeg2.NewTSMuxer()
		vpid := m.AddStream(mpeg2.TS_STREAM_H264)
		apid := m.AddStream(mpeg2.TS_STREAM_AAC)
		buf := make([]byte, 0, 4<<20)
		m.OnPacket = func(pkt []byte) { buf = append(buf, pkt...) }
		step := func(i int) {
			if i%n == 0 {
				buf = buf[:0]
			}
			f := &c.frames[i%n]
			dts := uint64(f.DTS + int64(i/n)*c.duration)
			pid := apid
			if f.Track == c.video {
				pid = vpid
			}
			if err := m.Write(pid, annexB[i%n], dts+uint64(f.CTS), dts); err != nil {
				b.Fatal(err)
			}
		}
		runTSBench(b, n, step)
	})
}

func runTSBench(b *testing.B, n int, step func(i int)) {
	for i := range n { // warm up: size the reused buffers
		step(i)
	}
	var ms0, ms1 runtime.MemStats
	b.ReportAllocs()
	runtime.ReadMemStats(&ms0)
	b.ResetTimer()
	for i := range b.N {
		step(n + i)
	}
	b.StopTimer()
	runtime.ReadMemStats(&ms1)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/frame")
}

// toGomediaInput is what gomedia's muxer wants for f: Annex B with SPS and PPS
// before an IDR, or ADTS-framed AAC.
func toGomediaInput(f *remux.Frame) []byte {
	t := f.Track
	if t.Kind() == remux.KindAudio {
		n := len(f.Data) + 7
		freq := map[int]int{96000: 0, 88200: 1, 64000: 2, 48000: 3, 44100: 4, 32000: 5, 24000: 6, 22050: 7, 16000: 8}[t.SampleRate]
		h := []byte{0xff, 0xf1,
			byte((t.AudioObjectType-1)<<6 | freq<<2 | t.Channels>>2),
			byte((t.Channels&3)<<6 | n>>11), byte(n >> 3), byte(n&7<<5 | 0x1f), 0xfc}
		return append(h, f.Data...)
	}
	var out []byte
	sc := []byte{0, 0, 0, 1}
	if f.Key {
		for _, ps := range append(append([][]byte{}, t.SPS...), t.PPS...) {
			out = append(append(out, sc...), ps...)
		}
	}
	for d := f.Data; len(d) >= t.NALULengthSize; {
		var l int
		for _, c := range d[:t.NALULengthSize] {
			l = l<<8 | int(c)
		}
		d = d[t.NALULengthSize:]
		if l > len(d) {
			break
		}
		out = append(append(out, sc...), d[:l]...)
		d = d[l:]
	}
	return out
}
