package remux_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

// benchClip is a real encoder's output: testdata/make-clips.sh's av.flv
// (640x360 30 fps, 2 s GOP, ~1 Mbit/s H.264 main, AAC 48 kHz stereo), parsed by
// ingest/flv as a connection would, frames in file order.
type benchClip struct {
	video, audio *remux.Track
	frames       []remux.Frame
	duration     int64 // ms: the DTS step between loops of the clip
	bytes        int
}

var (
	clipOnce sync.Once
	clip     *benchClip
	clipErr  error
)

// loadBenchClip makes the 6 s clips of testdata/make-clips.sh once per test
// binary and reads av.flv. ffmpeg is needed; its absence skips the benchmark,
// or fails it under CI=true.
func loadBenchClip(tb testing.TB) *benchClip {
	tb.Helper()
	testkit.NeedTool(tb, "ffmpeg")
	clipOnce.Do(func() {
		dir, err := os.MkdirTemp("", "remux-bench")
		if err != nil {
			clipErr = err
			return
		}
		defer os.RemoveAll(dir)
		if clipErr = testkit.MakeClips(dir, 6); clipErr != nil {
			return
		}
		clip, clipErr = readBenchClip(filepath.Join(dir, "av.flv"))
	})
	if clipErr != nil {
		tb.Fatal(clipErr)
	}
	return clip
}

func readBenchClip(path string) (*benchClip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tags, err := testkit.FLVTags(b)
	if err != nil {
		return nil, err
	}
	c := &benchClip{}
	var last int64
	for _, tag := range tags {
		typ, ts, body := tag.Type, int64(tag.TS), tag.Body
		var pkt flv.Packet
		switch typ {
		case 9:
			pkt, err = flv.ParseVideo(body)
		case 8:
			pkt, err = flv.ParseAudio(body)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tag at %d ms: %w", ts, err)
		}
		switch pkt.Type {
		case flv.PacketSequenceHeader:
			if typ == 9 {
				c.video = pkt.Track
			} else {
				c.audio = pkt.Track
			}
		case flv.PacketFrame:
			t := c.audio
			if typ == 9 {
				t = c.video
			}
			if t == nil {
				return nil, fmt.Errorf("frame at %d ms before its sequence header", ts)
			}
			c.frames = append(c.frames, remux.Frame{Track: t, DTS: ts, CTS: pkt.CTS, Key: pkt.Key, Data: pkt.Data})
			c.bytes += len(pkt.Data)
			last = max(last, ts)
		}
	}
	if c.video == nil || c.audio == nil || len(c.frames) < 100 || !c.frames[0].Key {
		return nil, errors.New("clip lacks a track, frames or a leading keyframe")
	}
	c.duration = (last/2000 + 1) * 2000 // whole GOPs, so the loop point is a keyframe
	return c, nil
}

// muxPipeline is what a publish session does with each frame after ingest: the
// segmenter's cut decision, the TS segment and one CMAF fragmenter per track,
// optionally cut into parts (LL-HLS). Segment and part bytes go to reused buffers,
// as a store would receive them (copying them there is the packager's cost).
type muxPipeline struct {
	seg        remux.Segmenter
	tsm        *ts.Muxer
	frag       [2]*cmaf.Fragmenter // video, audio
	partStart  [2]int64
	partTarget time.Duration
	seq        uint32
	tsBuf      []byte
	cmafBuf    [2][]byte
	segments   int
	parts      int
}

func newMuxPipeline(c *benchClip, partTarget time.Duration) (*muxPipeline, error) {
	p := &muxPipeline{
		seg:        remux.Segmenter{Video: true},
		tsm:        ts.NewMuxer(c.video, c.audio),
		partTarget: partTarget,
		tsBuf:      make([]byte, 0, 2<<20),
		cmafBuf:    [2][]byte{make([]byte, 0, 2<<20), make([]byte, 0, 256<<10)},
	}
	for i, t := range []*remux.Track{c.video, c.audio} {
		f, err := cmaf.NewFragmenter(t)
		if err != nil {
			return nil, err
		}
		p.frag[i] = f
	}
	return p, nil
}

func (p *muxPipeline) write(f *remux.Frame) error {
	i := 0
	if f.Track.Kind() == remux.KindAudio {
		i = 1
	}
	d := p.seg.Push(f)
	var err error
	if d.Cuts() {
		if err := p.flushAll(f.DTS); err != nil {
			return err
		}
		p.segments++
		p.tsBuf = p.tsm.AppendSegmentStart(p.tsBuf[:0])
		p.cmafBuf[0], p.cmafBuf[1] = p.cmafBuf[0][:0], p.cmafBuf[1][:0]
		p.partStart = [2]int64{f.DTS, f.DTS}
	} else if p.partTarget > 0 && p.frag[i].Len() > 0 &&
		remux.PartDue(remux.PartPlan{Target: p.partTarget, PartStart: p.partStart[i]}, f.DTS, p.seg.Step(f.Track.Kind())) {
		p.seq++
		if p.cmafBuf[i], err = p.frag[i].FlushChunk(p.cmafBuf[i], p.seq, f.DTS); err != nil {
			return err
		}
		p.parts++
		p.partStart[i] = f.DTS
	}
	if p.tsBuf, err = p.tsm.AppendFrame(p.tsBuf, f); err != nil {
		return err
	}
	return p.frag[i].Add(f)
}

func (p *muxPipeline) flushAll(end int64) error {
	for i, fr := range p.frag {
		if fr.Len() == 0 {
			continue
		}
		p.seq++
		var err error
		if p.cmafBuf[i], err = fr.Flush(p.cmafBuf[i], p.seq, end); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkMuxFrames feeds a real clip's frames, looped on a continuous timeline,
// through the segmenter, the TS muxer and both CMAF fragmenters: the per-frame
// cost of the media path after ingest. "segments" cuts 2 s segments only;
// "parts-200ms" also cuts LL-HLS parts as the default configuration does.
func BenchmarkMuxFrames(b *testing.B) {
	c := loadBenchClip(b)
	for _, bc := range []struct {
		name string
		part time.Duration
	}{{"segments", 0}, {"parts-200ms", 200 * time.Millisecond}} {
		b.Run(bc.name, func(b *testing.B) {
			p, err := newMuxPipeline(c, bc.part)
			if err != nil {
				b.Fatal(err)
			}
			n := len(c.frames)
			var fr remux.Frame
			step := func(i int) {
				fr = c.frames[i%n]
				fr.DTS += int64(i/n) * c.duration
				if err := p.write(&fr); err != nil {
					b.Fatal(err)
				}
			}
			for i := range 2 * n { // warm up: size every reused buffer
				step(i)
			}
			warm := 2 * n
			var ms0, ms1 runtime.MemStats
			b.SetBytes(int64(c.bytes / n))
			b.ReportAllocs()
			runtime.ReadMemStats(&ms0)
			b.ResetTimer()
			for i := range b.N {
				step(warm + i)
			}
			b.StopTimer()
			runtime.ReadMemStats(&ms1)
			if p.segments < 3 {
				b.Fatalf("%d segments", p.segments)
			}
			if bc.part > 0 && p.parts < p.segments*5 {
				b.Fatalf("%d parts in %d segments", p.parts, p.segments)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/frame")
			b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(b.N), "allocs/frame")
		})
	}
}
