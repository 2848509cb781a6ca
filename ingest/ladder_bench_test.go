package ingest

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// BenchmarkConnFramesLadder compares one three-rendition ladder published as
// one Enhanced RTMP multitrack stream (testdata/make-ladder.sh: 1080p, 720p
// and 360p in OBS's form, ~6 Mbit/s) with the same renditions published as
// three single streams, each replayed through a whole connection as
// BenchmarkConnFrames does, the same number of loops of the clip each. With
// "ingest" the frames go to counting Writers (the connection alone); with
// "packager" to a packager Hub as in the gateway (segmenter, TS and CMAF
// muxers, store, playlists; renditions opened with OpenTrack), its clock
// following the media. The singles carry the audio three times, so ns/KB
// (per 1000 message payload bytes) is the figure to compare; allocs/frame is
// counted from the first looped frame. The "interleaved" runs alternate the
// two in rounds and report their ns/KB and its ratio, ladder over singles.
func BenchmarkConnFramesLadder(b *testing.B) {
	cp := loadCapture(b)
	dir := testkit.LadderClips(b)
	load := func(name string) []rtmpclient.Tag {
		c, err := rtmpclient.ReadFLV(filepath.Join(dir, name))
		if err != nil {
			b.Fatal(err)
		}
		return c.Tags
	}
	ladder := []*ladderReplay{newLadderReplay(b, cp, load("ladder.flv"))}
	var singles []*ladderReplay
	for _, name := range []string{"r0.flv", "r1.flv", "r2.flv"} {
		singles = append(singles, newLadderReplay(b, cp, load(name)))
	}
	for _, sink := range []string{"ingest", "packager"} {
		for _, run := range []struct {
			name    string
			replays []*ladderReplay
		}{{"multitrack", ladder}, {"singles", singles}} {
			b.Run(sink+"/"+run.name, func(b *testing.B) {
				loops := b.N/ladder[0].frames + 1
				var elapsed time.Duration
				var frames, bytes int
				var allocs uint64
				b.ReportAllocs()
				b.ResetTimer()
				for _, r := range run.replays {
					e, f, a := r.run(b, sink == "packager", loops)
					elapsed += e
					frames += f
					allocs += a
					bytes += loops * r.bytes
				}
				b.StopTimer()
				b.ReportMetric(float64(elapsed.Nanoseconds())/float64(frames), "ns/frame")
				b.ReportMetric(float64(elapsed.Nanoseconds())*1000/float64(bytes), "ns/KB")
				b.ReportMetric(float64(allocs)/float64(frames), "allocs/frame")
			})
		}
		// The two one after the other see different load on a shared
		// machine: interleaved, in rounds, their ratio is of the same moments.
		b.Run(sink+"/interleaved", func(b *testing.B) {
			const rounds = 4
			loops := (b.N/ladder[0].frames)/rounds + 1
			var elapsed [2]time.Duration
			var bytes [2]int
			b.ResetTimer()
			for range rounds {
				for k, replays := range [][]*ladderReplay{ladder, singles} {
					for _, r := range replays {
						e, _, _ := r.run(b, sink == "packager", loops)
						elapsed[k] += e
						bytes[k] += loops * r.bytes
					}
				}
			}
			b.StopTimer()
			perKB := func(k int) float64 { return float64(elapsed[k].Nanoseconds()) * 1000 / float64(bytes[k]) }
			b.ReportMetric(perKB(0), "ladder-ns/KB")
			b.ReportMetric(perKB(1), "singles-ns/KB")
			b.ReportMetric(perKB(0)/perKB(1), "ladder/singles")
		})
	}
}

// ladderReplay is one publish of a clip cut for a replay: the capture's
// handshake and publish and the clip's codec setup as prefix, its frames as
// the looped body.
type ladderReplay struct {
	prefix, body []byte
	frames       int // track packets in one body: what the Writers get
	bytes        int // message payload bytes in one body
}

func newLadderReplay(b *testing.B, cp *capture, tags []rtmpclient.Tag) *ladderReplay {
	var pw, bw rtmp.ChunkWriter
	pw.ChunkSize, bw.ChunkSize = 4096, 4096
	r := &ladderReplay{}
	var buf [flv.MaxTracks]flv.TrackPacket
	for _, tag := range tags {
		csid, typ := uint32(rtmp.CSIDAudio), uint8(rtmp.MsgAudio)
		split := flv.SplitAudio
		if tag.Type == rtmpclient.TagVideo {
			csid, typ, split = rtmp.CSIDVideo, rtmp.MsgVideo, flv.SplitVideo
		}
		if tag.Config {
			if r.frames > 0 {
				b.Fatalf("codec setup at %d ms after the first frame", tag.Timestamp)
			}
			pw.AppendMessage(csid, typ, 1, tag.Timestamp, tag.Body)
			continue
		}
		m, err := split(buf[:], tag.Body)
		if err != nil {
			b.Fatalf("tag at %d ms: %v", tag.Timestamp, err)
		}
		bw.AppendMessage(csid, typ, 1, tag.Timestamp, tag.Body)
		r.frames += len(m.Packets)
		r.bytes += len(tag.Body)
	}
	r.prefix = append(append([]byte(nil), cp.data[:cp.mediaStart]...), pw.Buf...)
	r.body = bw.Buf
	return r
}

// run replays loops bodies through a connection and returns the time and
// allocations from the first looped byte on and the frames the Writers got.
func (r *ladderReplay) run(b *testing.B, pack bool, loops int) (elapsed time.Duration, frames int, allocs uint64) {
	var h Handler
	var count func() int
	if pack {
		base := time.Now()
		var mediaNow atomic.Int64
		hub := packager.NewHub(packager.Config{WindowSegments: 6, Now: func() time.Time { return base.Add(time.Duration(mediaNow.Load()) * time.Millisecond) }}, zerolog.Nop())
		defer hub.Close()
		ph := &hubHandler{hub: hub, now: &mediaNow}
		h, count = ph, func() int { return int(ph.frames.Load()) }
	} else {
		nw := &newWriters{renditions: true}
		h = nw
		count = func() int {
			n := 0
			for _, w := range nw.writers {
				n += w.frames
			}
			return n
		}
	}
	var start time.Time
	var startFrames int
	var startAllocs uint64
	rc := &replayConn{prefix: r.prefix, body: r.body, loops: loops,
		onBody: func() { startFrames = count(); startAllocs = mallocs(); start = time.Now() }}
	newConn(&Server{Handler: h}, rc).serve()
	elapsed = time.Since(start)
	allocs = mallocs() - startAllocs
	frames = count() - startFrames
	if want := loops * r.frames; frames != want {
		b.Fatalf("%d frames from %d loops of %d", frames, loops, r.frames)
	}
	return elapsed, frames, allocs
}

// hubHandler publishes into a packager Hub whose clock follows the frames'
// DTS, counting the frames of the publish and of its renditions.
type hubHandler struct {
	hub    *packager.Hub
	now    *atomic.Int64
	frames atomic.Int64
}

func (h *hubHandler) OnPublish(_ context.Context, req PublishRequest) (remux.Writer, error) {
	w, err := h.hub.Publish(req.App, req.Name, "127.0.0.1:1", req.Kick)
	if err != nil {
		return nil, err
	}
	return clockWriter{w, h}, nil
}

type clockWriter struct {
	remux.Writer
	h *hubHandler
}

func (w clockWriter) WriteFrame(f *remux.Frame) error {
	w.h.now.Store(f.DTS)
	w.h.frames.Add(1)
	return w.Writer.WriteFrame(f)
}

func (w clockWriter) OpenTrack(id uint8) (remux.Writer, error) {
	tw, err := w.Writer.(remux.TrackOpener).OpenTrack(id)
	if err != nil {
		return nil, err
	}
	return clockWriter{tw, w.h}, nil
}
