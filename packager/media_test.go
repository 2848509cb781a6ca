package packager_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// clip is an ffmpeg-encoded FLV turned into tracks and frames, as ingest would.
type clip struct {
	tracks       []*remux.Track
	frames       []remux.Frame
	nVideo, nAud int
}

func makeClip(t testing.TB, seconds int, x264 ...string) clip {
	t.Helper()
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	file := filepath.Join(t.TempDir(), "clip.flv")
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", strconv.Itoa(seconds),
		"-c:v", "libx264", "-g", "60", "-bf", "2", "-pix_fmt", "yuv420p"}
	args = append(args, x264...)
	testkit.Run(t, ffmpeg, append(args, "-c:a", "aac", "-f", "flv", file)...)
	tags := testkit.ReadFLV(t, file)
	var c clip
	for _, tag := range tags {
		var (
			pkt flv.Packet
			err error
		)
		switch tag.Type {
		case 8:
			pkt, err = flv.ParseAudio(tag.Body)
		case 9:
			pkt, err = flv.ParseVideo(tag.Body)
		default:
			continue
		}
		if err != nil {
			t.Fatalf("tag at %d ms: %v", tag.TS, err)
		}
		switch pkt.Type {
		case flv.PacketSequenceHeader:
			c.tracks = append(c.tracks, pkt.Track)
		case flv.PacketFrame:
			var tr *remux.Track
			for _, x := range c.tracks {
				if (x.Kind() == remux.KindVideo) == (tag.Type == 9) {
					tr = x
				}
			}
			if tr == nil {
				t.Fatalf("frame before sequence header at %d ms", tag.TS)
			}
			c.frames = append(c.frames, remux.Frame{Track: tr, DTS: int64(tag.TS), CTS: pkt.CTS, Key: pkt.Key, Data: pkt.Data})
			if tr.Kind() == remux.KindVideo {
				c.nVideo++
			} else {
				c.nAud++
			}
		}
	}
	if len(c.tracks) != 2 || c.nVideo != seconds*30 {
		t.Fatalf("clip: %d tracks, %d video frames", len(c.tracks), c.nVideo)
	}
	return c
}

// publishClip publishes a 7 s ffmpeg clip (H.264 with B-frames, AAC) whole into
// a fresh hub through the real muxers and returns it with its ended stream.
func publishClip(t *testing.T) (clip, *packager.Stream) {
	t.Helper()
	c := makeClip(t, 7)
	h := packager.NewHub(packager.Config{WindowSegments: 10}, zerolog.Nop())
	t.Cleanup(h.Close)
	w, err := h.Publish("live", "real", "127.0.0.1:1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true}); err != nil {
		t.Fatal(err)
	}
	for _, tr := range c.tracks {
		if err := w.WriteTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	writeFrames(t, w, c.frames)
	closeWriter(t, w)
	return c, mustStream(t, h, "live", "real")
}

// TestRealMediaSegments muxes an ffmpeg clip (H.264 with B-frames, AAC) through
// the real TS muxer and checks every stored segment with ffprobe: it starts with
// a video keyframe, and the segments together hold every source frame.
func TestRealMediaSegments(t *testing.T) {
	ffprobe := testkit.NeedTool(t, "ffprobe")
	c, st := publishClip(t)
	p := snapshotPlaylist(t, st)
	if len(p.segs) != 4 { // 2 s GOPs over 7 s
		t.Fatalf("%d segments, want 4", len(p.segs))
	}
	dir := t.TempDir()
	var video, audio int
	for i, s := range p.segs {
		obj, ok := st.Object("ts/" + s.name)
		if !ok {
			t.Fatalf("segment %s missing", s.name)
		}
		if len(obj.Data)%188 != 0 || obj.Data[0] != 0x47 {
			t.Fatalf("segment %d: %d bytes, not TS packets", i, len(obj.Data))
		}
		file := filepath.Join(dir, s.name)
		if err := os.WriteFile(file, obj.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, _ := testkit.Run(t, ffprobe, "-v", "error", "-show_entries", "packet=codec_type,flags,pts_time,dts_time", "-of", "csv=p=0", file)
		firstVideo := true
		var segAudio, segVideo int
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if line == "" {
				continue // ffprobe separates side data sections with blank lines
			}
			f := strings.Split(line, ",")
			if len(f) < 4 {
				t.Fatalf("ffprobe line %q", line)
			}
			switch f[0] {
			case "video":
				if firstVideo && !strings.Contains(f[3], "K") {
					t.Fatalf("segment %d starts with a non-key video packet: %q", i, line)
				}
				firstVideo = false
				segVideo++
			case "audio":
				segAudio++
			}
		}
		t.Logf("segment %d: EXTINF %d ms, %d video, %d audio packets", i, s.dur, segVideo, segAudio)
		video += segVideo
		audio += segAudio
	}
	if video != c.nVideo || audio != c.nAud {
		t.Fatalf("segments hold %d video and %d audio packets, source %d and %d", video, audio, c.nVideo, c.nAud)
	}
}

// BenchmarkSessionFrames measures the publish path from frames to published TS
// and CMAF segments and parts: segmenter, both muxers, the store and snapshots.
// The hub's clock follows the media, as for a publisher sending in real time:
// on the wall clock the loop runs minutes of media per second, and segments
// would stay retained (their expiry is wall time) far beyond a live window.
func BenchmarkSessionFrames(b *testing.B) { benchSessionFrames(b, nil) }

// BenchmarkSessionFramesWatched is BenchmarkSessionFrames with a viewer: after
// every frame the fMP4 media playlists, the multivariant playlist and the MPD
// are read, so every change (each part, each segment) is rendered once, as
// when a stream is watched.
func BenchmarkSessionFramesWatched(b *testing.B) {
	benchSessionFrames(b, []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath, packager.MultivariantPath, packager.MPDPath})
}

// benchSessionFrames publishes the looped clip frame by frame, reading the
// documents at watch after each frame.
func benchSessionFrames(b *testing.B, watch []string) {
	c := makeClip(b, 10)
	base := time.Now()
	var mediaNow atomic.Int64 // ms of media, read by the janitor too
	clock := func() time.Time { return base.Add(time.Duration(mediaNow.Load()) * time.Millisecond) }
	h := packager.NewHub(packager.Config{WindowSegments: 6, Now: clock}, zerolog.Nop())
	defer h.Close()
	w, err := h.Publish("live", "bench", "127.0.0.1:1", nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range c.tracks {
		if err := w.WriteTrack(tr); err != nil {
			b.Fatal(err)
		}
	}
	st, err := h.Stream("live", "bench")
	if err != nil {
		b.Fatal(err)
	}
	span := c.frames[len(c.frames)-1].DTS + 100
	f := new(remux.Frame)
	var before, after runtime.MemStats
	b.ReportAllocs()
	b.ResetTimer()
	runtime.ReadMemStats(&before)
	start := time.Now()
	for i := 0; i < b.N; i++ {
		*f = c.frames[i%len(c.frames)]
		f.DTS += int64(i/len(c.frames)) * span // loop the clip on one timeline
		mediaNow.Store(f.DTS)
		if err := w.WriteFrame(f); err != nil {
			b.Fatal(err)
		}
		for _, p := range watch {
			st.Object(p)
		}
	}
	elapsed := time.Since(start)
	runtime.ReadMemStats(&after)
	b.StopTimer()
	b.ReportMetric(float64(elapsed.Nanoseconds())/float64(b.N), "ns/frame")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(b.N), "allocs/frame")
	if err := w.Close(nil); err != nil {
		b.Fatal(err)
	}
}

// TestRealMediaCMAF muxes an ffmpeg clip (H.264 with B-frames, 44.1 kHz AAC)
// and checks each track's init segment plus its fragments, concatenated as a
// player would fetch them, with ffprobe: decoded frame counts equal the source,
// every fragment starts with a keyframe, video PTS equal the source's within 2 ms
// and audio timestamps run on without gaps or overlaps.
func TestRealMediaCMAF(t *testing.T) {
	ffprobe := testkit.NeedTool(t, "ffprobe")
	c, st := publishClip(t)
	dir := t.TempDir()
	t.Run("tree", func(t *testing.T) { probeTree(t, ffprobe, st, c) })
	for _, tc := range []struct {
		kind     remux.Kind
		playlist string
		want     int
	}{
		{remux.KindVideo, packager.VideoPlaylistPath, c.nVideo},
		{remux.KindAudio, packager.AudioPlaylistPath, c.nAud},
	} {
		t.Run(tc.kind.String(), func(t *testing.T) {
			obj, ok := st.Object(tc.playlist)
			if !ok {
				t.Fatalf("%s missing", tc.playlist)
			}
			pl := parseFMP4Playlist(t, obj.Data)
			sub := tc.playlist[:2]
			if len(pl.maps) != 1 || len(pl.names) != 4 {
				t.Fatalf("%s: %d maps, %d segments:\n%s", tc.playlist, len(pl.maps), len(pl.names), obj.Data)
			}
			init, ok := st.Object(sub + pl.maps[0])
			if !ok {
				t.Fatalf("init %s missing", pl.maps[0])
			}
			file := filepath.Join(dir, tc.kind.String()+".mp4")
			all := append([]byte(nil), init.Data...)
			var starts []int // index of each fragment's first sample
			n := 0
			for _, name := range pl.names {
				frag, ok := st.Object(sub + name)
				if !ok {
					t.Fatalf("%s missing", name)
				}
				f, err := parseFragment(frag.Data)
				if err != nil {
					t.Fatal(err)
				}
				starts = append(starts, n)
				n += len(f.durations)
				all = append(all, frag.Data...)
			}
			if err := os.WriteFile(file, all, 0o644); err != nil {
				t.Fatal(err)
			}
			decoded, _ := testkit.Run(t, ffprobe, "-v", "error", "-count_frames", "-select_streams", "0",
				"-show_entries", "stream=nb_read_frames", "-of", "csv=p=0", file)
			decoded = strings.TrimSpace(decoded)
			if decoded != strconv.Itoa(tc.want) {
				t.Fatalf("decoded %s frames, source %d", decoded, tc.want)
			}
			out, _ := testkit.Run(t, ffprobe, "-v", "error", "-show_entries", "packet=pts,flags", "-of", "csv=p=0", file)
			type pkt struct {
				pts int64
				key bool
			}
			var pkts []pkt
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				f := strings.Split(line, ",")
				if line == "" || len(f) < 2 {
					continue
				}
				var p pkt
				var err error
				p.pts, err = strconv.ParseInt(f[0], 10, 64)
				if err != nil {
					t.Fatalf("ffprobe line %q", line)
				}
				p.key = strings.Contains(f[1], "K")
				pkts = append(pkts, p)
			}
			if len(pkts) != tc.want {
				t.Fatalf("%d packets, source %d", len(pkts), tc.want)
			}
			for i, s := range starts {
				if !pkts[s].key {
					t.Fatalf("fragment %d starts with a non-key packet", i)
				}
			}
			var src []remux.Frame
			for _, f := range c.frames {
				if f.Track.Kind() == tc.kind {
					src = append(src, f)
				}
			}
			ts := int64(src[0].Track.Timescale)
			for i, p := range pkts {
				if tc.kind == remux.KindVideo {
					if d := p.pts*1000/ts - src[i].PTS(); d < -2 || d > 2 {
						t.Fatalf("video packet %d: PTS %d ticks, source %d ms", i, p.pts, src[i].PTS())
					}
					continue
				}
				// AAC timestamps: the source's on the ms timeline, and one 1024-sample
				// frame apart within RTMP's 1 ms rounding (no gap, no overlap, even
				// across fragment boundaries).
				if d := p.pts*1000/ts - src[i].DTS; d < -1 || d > 1 {
					t.Fatalf("audio packet %d: PTS %d ticks, source %d ms", i, p.pts, src[i].DTS)
				}
				if i+1 < len(pkts) {
					if step := pkts[i+1].pts - p.pts; step < 1024-ts/1000-1 || step > 1024+ts/1000+1 {
						t.Fatalf("audio packet %d: next %d ticks later, want 1024 within 1 ms", i, step)
					}
				}
			}
		})
	}
}

// probeTree copies the stream's objects to files as httpserve would serve them
// and reads the multivariant playlist and the MPD with ffprobe: both must find
// one H.264 and one AAC stream with every source packet.
func probeTree(t *testing.T, ffprobe string, st *packager.Stream, c clip) {
	dir := t.TempDir()
	write := func(path string) []byte {
		obj, ok := st.Object(path)
		if !ok {
			t.Fatalf("%s missing", path)
		}
		file := filepath.Join(dir, filepath.FromSlash(path))
		if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(file, obj.Data, 0o644); err != nil {
			t.Fatal(err)
		}
		return obj.Data
	}
	write(packager.MultivariantPath)
	write(packager.MPDPath)
	for _, pl := range []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath} {
		p := parseFMP4Playlist(t, write(pl))
		for _, name := range append(p.maps, p.names...) {
			write(pl[:2] + name)
		}
	}
	for _, top := range []string{packager.MultivariantPath, packager.MPDPath} {
		out, _ := testkit.Run(t, ffprobe, "-v", "error", "-allowed_extensions", "ALL", "-show_entries", "packet=codec_type", "-of", "csv=p=0",
			"file:"+filepath.Join(dir, top))
		video, audio := strings.Count(out, "video"), strings.Count(out, "audio")
		if video != c.nVideo || audio != c.nAud {
			t.Errorf("%s: ffprobe reads %d video and %d audio packets, source %d and %d", top, video, audio, c.nVideo, c.nAud)
		}
	}
}

// BenchmarkStreamFirstSegments measures what a new stream's first two segments
// cost: a publish, its tracks and the first 4.5 s of the clip, then its end.
// "rates" sends onMetaData's data rates (measured from the clip, as encoders
// announce them), "none" sends none; B/stream is the memory made for it, most
// of it segment buffers, which in a new gateway are all fresh pages.
func BenchmarkStreamFirstSegments(b *testing.B) {
	// About the bench-e2e clip's rate (~1.1 Mbit/s).
	c := makeClip(b, 6, "-b:v", "1000k", "-minrate", "1000k", "-maxrate", "1000k", "-bufsize", "500k", "-x264-params", "nal-hrd=cbr")
	var bytes [2]float64
	for _, f := range c.frames {
		bytes[endKind(f.Track.Kind())] += float64(len(f.Data))
	}
	secs := float64(c.frames[len(c.frames)-1].DTS) / 1000
	var n int
	for n < len(c.frames) && c.frames[n].DTS < 4500 {
		n++
	}
	for _, tc := range []struct {
		name string
		md   remux.Metadata
	}{
		{"none", remux.Metadata{}},
		{"rates", remux.Metadata{HasVideo: true, HasAudio: true, FrameRate: 30,
			VideoBitrate: bytes[0] * 8 / 1000 / secs, AudioBitrate: bytes[1] * 8 / 1000 / secs}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			base := time.Now()
			var mediaNow atomic.Int64
			clock := func() time.Time { return base.Add(time.Duration(mediaNow.Load()) * time.Millisecond) }
			h := packager.NewHub(packager.Config{WindowSegments: 6, Now: clock}, zerolog.Nop())
			defer h.Close()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			f := new(remux.Frame)
			for i := 0; b.Loop(); i++ {
				w, err := h.Publish("live", "s"+strconv.Itoa(i), "127.0.0.1:1", nil)
				if err != nil {
					b.Fatal(err)
				}
				md := tc.md
				if err := w.WriteMetadata(&md); err != nil {
					b.Fatal(err)
				}
				for _, tr := range c.tracks {
					if err := w.WriteTrack(tr); err != nil {
						b.Fatal(err)
					}
				}
				for _, fr := range c.frames[:n] {
					*f = fr
					mediaNow.Store(f.DTS)
					if err := w.WriteFrame(f); err != nil {
						b.Fatal(err)
					}
				}
				if err := w.Close(nil); err != nil {
					b.Fatal(err)
				}
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N), "B/stream")
			b.ReportMetric((bytes[0]+bytes[1])*8/1000/secs, "kbit/s")
		})
	}
}

func endKind(k remux.Kind) int {
	if k == remux.KindVideo {
		return 0
	}
	return 1
}
