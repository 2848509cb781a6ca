package ingest

import (
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
)

// BenchmarkConnFrames replays testdata/publish.rtmp (a real ffmpeg publish)
// through a whole connection: handshake, commands, metadata and sequence headers
// once, then the captured frames over and over through the chunk reader, flv
// parsing, NAL unit checks, the timeline and a counting Writer. It reports the
// steady state: ns/frame and allocs/frame counted from the first replayed frame.
func BenchmarkConnFrames(b *testing.B) {
	cp := loadCapture(b)
	perLoop := cp.bodyFrames
	w := &countingWriter{}
	s := &Server{Handler: oneWriter{w}}
	var startAllocs uint64
	var start time.Time
	var startFrames int
	rc := &replayConn{
		prefix: cp.data[:cp.framesStart],
		body:   cp.data[cp.framesStart:cp.framesEnd],
		loops:  b.N/perLoop + 1,
		onBody: func() {
			startFrames = w.frames
			startAllocs = mallocs()
			start = time.Now()
		},
	}
	b.ReportAllocs()
	b.ResetTimer()
	newConn(s, rc).serve()
	elapsed := time.Since(start)
	allocs := mallocs() - startAllocs
	b.StopTimer()
	frames := w.frames - startFrames
	if frames == 0 || w.closes != 1 {
		b.Fatalf("%d frames, %d closes", frames, w.closes)
	}
	if want := (b.N/perLoop + 1) * perLoop; frames != want {
		b.Fatalf("%d frames from %d loops of %d frames", frames, b.N/perLoop+1, perLoop)
	}
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(frames), "ns/frame")
	b.ReportMetric(float64(allocs)/float64(frames), "allocs/frame")
}

// TestReplayCapture checks the committed capture replays whole: every frame of
// every loop reaches the Writer, the Writer is closed once, and the steady state
// allocates nothing.
func TestReplayCapture(t *testing.T) {
	cp := loadCapture(t)
	w := &countingWriter{}
	s := &Server{Handler: oneWriter{w}}
	const loops = 3
	var startAllocs, warmAllocs uint64
	var startFrames int
	rc := &replayConn{prefix: cp.data[:cp.framesStart], body: cp.data[cp.framesStart:cp.framesEnd], loops: loops,
		onBody: func() { startFrames = w.frames; startAllocs = mallocs() },
		onLoop: func(left int) {
			if left == loops-1 {
				warmAllocs = mallocs()
			}
		}}
	newConn(s, rc).serve()
	end := mallocs()
	frames := w.frames - startFrames
	if want := loops * cp.bodyFrames; frames != want || w.tracks != 2 || w.closes != 1 {
		t.Fatalf("%d frames (want %d), %d tracks, %d closes", frames, want, w.tracks, w.closes)
	}
	if w.metadata != 1 {
		t.Fatalf("%d metadata", w.metadata)
	}
	// Buffers may still grow during the first loop; after that nothing allocates
	// but the connection's end (error wrapping, log fields).
	if steady := end - warmAllocs; steady > 20 {
		t.Fatalf("%d allocations for %d frames after the first loop", steady, frames*(loops-1)/loops)
	}
	t.Logf("%d frames: %d allocations in the first loop, %d after", frames, warmAllocs-startAllocs, end-warmAllocs)
}

// BenchmarkConnFramesEnhanced is BenchmarkConnFrames for the Enhanced RTMP
// fixtures: the capture's handshake and commands, the fixture's sequence
// starts once, then its coded frames over and over (HEVC NAL checks and IRAP
// search, AV1 OBU walk, VP9 frame header, Opus and AAC as they come).
func BenchmarkConnFramesEnhanced(b *testing.B) {
	cp := loadCapture(b)
	for _, name := range []string{"hevc-aac.flv", "av1-opus.flv", "vp9-opus.flv"} {
		b.Run(name, func(b *testing.B) {
			prefix, body, perLoop := enhancedReplay(cp, fixture.Tags(b, name))
			w := &countingWriter{}
			s := &Server{Handler: oneWriter{w}}
			var startAllocs uint64
			var start time.Time
			var startFrames int
			rc := &replayConn{prefix: prefix, body: body, loops: b.N/perLoop + 1,
				onBody: func() { startFrames = w.frames; startAllocs = mallocs(); start = time.Now() }}
			b.ReportAllocs()
			b.ResetTimer()
			newConn(s, rc).serve()
			elapsed := time.Since(start)
			allocs := mallocs() - startAllocs
			b.StopTimer()
			frames := w.frames - startFrames
			if want := (b.N/perLoop + 1) * perLoop; frames != want || w.tracks != 2 {
				b.Fatalf("%d frames, want %d; %d tracks", frames, want, w.tracks)
			}
			b.ReportMetric(float64(elapsed.Nanoseconds())/float64(frames), "ns/frame")
			b.ReportMetric(float64(allocs)/float64(frames), "allocs/frame")
		})
	}
}

// enhancedReplay cuts a fixture into a replay: the capture up to its publish
// and the fixture's sequence starts and metadata as prefix, its coded frames
// as the looped body (each chunk stream's first message with a full header,
// so the loop can restart), and the frames in one body.
func enhancedReplay(cp *capture, tags []fixture.Tag) (prefix, body []byte, frames int) {
	var pw, bw rtmp.ChunkWriter
	pw.ChunkSize, bw.ChunkSize = 4096, 4096
	var buf [flv.MaxTracks]flv.TrackPacket
	for _, tag := range tags {
		var m flv.Message
		var err error
		switch tag.Type {
		case rtmp.MsgVideo:
			m, err = flv.SplitVideo(buf[:], tag.Body)
		case rtmp.MsgAudio:
			m, err = flv.SplitAudio(buf[:], tag.Body)
		default:
			continue
		}
		if err != nil || len(m.Packets) != 1 {
			continue
		}
		csid := uint32(rtmp.CSIDAudio)
		if tag.Type == rtmp.MsgVideo {
			csid = rtmp.CSIDVideo
		}
		if m.Packets[0].Type == flv.PacketFrame {
			bw.AppendMessage(csid, tag.Type, 1, tag.TS, tag.Body)
			frames++
		} else if frames == 0 {
			pw.AppendMessage(csid, tag.Type, 1, tag.TS, tag.Body)
		}
	}
	return append(append([]byte(nil), cp.data[:cp.mediaStart]...), pw.Buf...), bw.Buf, frames
}
