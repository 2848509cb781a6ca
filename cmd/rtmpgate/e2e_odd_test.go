package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

// Odd but legal publishers: tags from real ffmpeg-made clips, manipulated and
// published with rtmpclient, judged by what ffprobe decodes from the playlists.

// oddClips holds the extra clips made once per test binary.
var oddClips struct {
	mu   sync.Mutex
	made map[string]error
}

// makeClip makes workDir/odd/name.flv with ffmpeg args (inputs and codecs) once.
func makeClip(t *testing.T, name string, args ...string) *rtmpclient.Clip {
	t.Helper()
	needTools(t, "ffmpeg", "ffprobe")
	path := filepath.Join(workDir, "odd", name+".flv")
	oddClips.mu.Lock()
	if oddClips.made == nil {
		oddClips.made = map[string]error{}
	}
	err, done := oddClips.made[name]
	if !done {
		_ = os.MkdirAll(filepath.Dir(path), 0o755)
		full := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
		var out string
		if out, err = runOutput(t, "ffmpeg", append(full, "-f", "flv", path)...); err != nil {
			err = fmt.Errorf("ffmpeg %s: %v: %s", name, err, out)
		}
		oddClips.made[name] = err
	}
	oddClips.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	c, err := rtmpclient.ReadFLV(path)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// avClip is testsrc2 + sine, 30 fps, keyframe every keyint frames, AAC 48 kHz.
func avClip(t *testing.T, name, size string, secs, keyint int, extra ...string) *rtmpclient.Clip {
	args := []string{"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
		"-t", strconv.Itoa(secs), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p", "-bf", "0",
		"-g", strconv.Itoa(keyint), "-keyint_min", strconv.Itoa(keyint), "-sc_threshold", "0"}
	args = append(args, extra...)
	args = append(args, "-c:a", "aac", "-b:a", "128k", "-ac", "2")
	return makeClip(t, name, args...)
}

// oddTag is one message to publish: a tag at an RTMP timestamp, or the metadata
// (Type TagScript), sent at wall-clock offset at when paced.
type oddTag struct {
	typ  uint8
	ts   uint32
	body []byte
	at   time.Duration
}

// clipTags turns a clip's tags into oddTags at offset ms (32-bit wrapping).
func clipTags(c *rtmpclient.Clip, offset uint32, withConfig bool) []oddTag {
	var out []oddTag
	for _, tg := range c.Tags {
		if tg.Config && !withConfig {
			continue
		}
		out = append(out, oddTag{typ: tg.Type, ts: offset + tg.Timestamp, body: tg.Body, at: time.Duration(tg.Timestamp) * time.Millisecond})
	}
	return out
}

// shiftAt moves the wall-clock schedule of tags by d.
func shiftAt(tags []oddTag, d time.Duration) []oddTag {
	for i := range tags {
		tags[i].at += d
	}
	return tags
}

// publishOdd publishes tags in order; speed > 0 paces them at that multiple of
// real time, 0 sends as fast as the connection takes them.
func publishOdd(t *testing.T, u string, tags []oddTag, speed float64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p, err := rtmpclient.Dial(ctx, u, rtmpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	for i, tg := range tags {
		if speed > 0 {
			if d := time.Until(begin.Add(time.Duration(float64(tg.at) / speed))); d > 0 {
				time.Sleep(d)
			}
		}
		switch tg.typ {
		case rtmpclient.TagScript:
			err = p.WriteMetadata(tg.body)
		case rtmpclient.TagVideo:
			err = p.WriteVideo(tg.ts, tg.body)
		default:
			err = p.WriteAudio(tg.ts, tg.body)
		}
		if err != nil {
			p.Close()
			t.Fatalf("tag %d (type %d ts %d): %v", i, tg.typ, tg.ts, err)
		}
		select {
		case <-p.Done():
			t.Fatalf("the gateway closed the connection after tag %d of %d: %v", i, len(tags), p.Err())
		default:
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// counts is the number of video and audio frames (not sequence headers) in tags.
func counts(tags []oddTag) (video, audio int) {
	for _, tg := range tags {
		if len(tg.body) < 2 || tg.body[1] != 1 {
			continue // sequence headers, end of sequence, empty tags, metadata
		}
		if tg.typ == rtmpclient.TagVideo && isSEIOnly(tg.body) {
			continue
		}
		switch tg.typ {
		case rtmpclient.TagVideo:
			video++
		case rtmpclient.TagAudio:
			audio++
		}
	}
	return video, audio
}

// probedFrame is one decoded frame as ffprobe reports it.
type probedFrame struct {
	pts           float64
	width, height int
	key           bool
}

// probeFrames decodes one stream ("v" or "a") of a file.
func probeFrames(t *testing.T, path, stream string) []probedFrame {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// stdout only: decoder complaints on stderr are not frames.
	b, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-select_streams", stream, "-show_entries", "frame=pts_time,width,height,key_frame", "-of", "csv=p=0", path).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	out := string(b)
	var frames []probedFrame
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		// video: key_frame,pts_time,width,height; audio: key_frame,pts_time
		f := strings.Split(strings.TrimRight(line, ","), ",")
		var fr probedFrame
		fr.key = f[0] == "1"
		if len(f) > 1 {
			fr.pts, _ = strconv.ParseFloat(f[1], 64)
		}
		if len(f) > 3 {
			fr.width, _ = strconv.Atoi(f[2])
			fr.height, _ = strconv.Atoi(f[3])
		}
		frames = append(frames, fr)
	}
	return frames
}

// tsResult is a finished stream's TS playlist, its segments and their frames.
type tsResult struct {
	pl       mediaPlaylist
	segs     []string
	video    [][]probedFrame // per segment
	audio    [][]probedFrame
	allVideo int
	allAudio int
}

// fetchTS waits for the ended TS playlist, fetches every segment and decodes each.
func fetchTS(t *testing.T, g *gateway, key string) tsResult {
	t.Helper()
	u := g.tsPlaylistURL(key)
	pl := waitPlaylist(t, u, 20*time.Second, ended)
	var r tsResult
	r.pl = pl
	r.segs = fetchSegments(t, u, pl, t.TempDir())
	for _, s := range r.segs {
		v, a := probeFrames(t, s, "v"), probeFrames(t, s, "a")
		r.video, r.audio = append(r.video, v), append(r.audio, a)
		r.allVideo += len(v)
		r.allAudio += len(a)
	}
	return r
}

// checkEXTINF asserts each segment's EXTINF is within a frame (and rounding) of
// its decoded video: from its first frame to the next segment's first frame,
// the last segment ending one frame after its last.
func checkEXTINF(t *testing.T, r tsResult) {
	t.Helper()
	const frame = 1.0 / 30
	for i, s := range r.pl.segments {
		v := r.video[i]
		if len(v) == 0 {
			t.Errorf("segment %d (%s) has no video", i, s.uri)
			continue
		}
		media := v[len(v)-1].pts - v[0].pts + frame
		if i+1 < len(r.video) && len(r.video[i+1]) > 0 && !r.pl.segments[i+1].discontinuity {
			media = r.video[i+1][0].pts - v[0].pts
		}
		if math.Abs(s.duration-media) > frame+0.002 {
			t.Errorf("segment %d (%s): EXTINF %.3f, media %.3f s (%d frames from %.3f)", i, s.uri, s.duration, media, len(v), v[0].pts)
		}
		if math.Round(s.duration) > float64(r.pl.targetDuration) {
			t.Errorf("segment %d: EXTINF %.3f rounds above TARGETDURATION %d", i, s.duration, r.pl.targetDuration)
		}
	}
}

func countDiscontinuities(pl mediaPlaylist) int {
	n := 0
	for _, s := range pl.segments {
		if s.discontinuity {
			n++
		}
	}
	return n
}

// oddGateway keeps every segment of a test stream in the window, so the whole
// stream can be judged after it ended.
func oddGateway(t *testing.T, args ...string) *gateway {
	return startGateway(t, append([]string{"-window-segments", "400", "-linger", "60s"}, args...)...)
}

// seiOnly is an AVC NALU packet holding one SEI NAL unit (user data unregistered)
// and nothing else: an access unit with no slice.
func seiOnly() []byte {
	sei := []byte{0x06, 0x05, 0x11}
	sei = append(sei, []byte("0123456789abcdef")...) // UUID
	sei = append(sei, 'x', 0x80)
	b := []byte{0x27, 1, 0, 0, 0}
	b = binary.BigEndian.AppendUint32(b, uint32(len(sei)))
	return append(b, sei...)
}

func isSEIOnly(body []byte) bool {
	return len(body) > 9 && body[0]&0x0f == 7 && body[1] == 1 && body[9]&0x1f == 6 && int(binary.BigEndian.Uint32(body[5:9]))+9 == len(body)
}

// The stream plays in full whatever the metadata does and whatever empty or
// slice-less messages come along.
func TestOddPublishersServedNormally(t *testing.T) {
	c := avClip(t, "av6", "640x360", 6, 60)
	g := oddGateway(t)
	base := clipTags(c, 0, true)
	metaTag := oddTag{typ: rtmpclient.TagScript, body: c.Meta}
	tests := []struct {
		name string
		tags func() []oddTag
	}{
		{"metadata first", func() []oddTag { return append([]oddTag{metaTag}, base...) }},
		{"metadata never", func() []oddTag { return base }},
		{"metadata after 3 s of media", func() []oddTag {
			var out []oddTag
			for _, tg := range base {
				if tg.ts >= 3000 && metaTag.body != nil {
					out = append(out, oddTag{typ: rtmpclient.TagScript, body: c.Meta, at: tg.at})
					metaTag.body = nil
				}
				out = append(out, tg)
			}
			return out
		}},
		{"zero-length tags and SEI-only access units", func() []oddTag {
			out := []oddTag{metaTag}
			for i, tg := range base {
				out = append(out, tg)
				if tg.typ == rtmpclient.TagVideo && i > 4 && i%7 == 0 {
					out = append(out,
						oddTag{typ: rtmpclient.TagVideo, ts: tg.ts, at: tg.at},
						oddTag{typ: rtmpclient.TagAudio, ts: tg.ts, at: tg.at},
						oddTag{typ: rtmpclient.TagVideo, ts: tg.ts + 10, body: seiOnly(), at: tg.at})
				}
			}
			return out
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tags := tc.tags()
			key := fmt.Sprintf("normal%d", i)
			publishOdd(t, g.ingestURL(key), tags, 0)
			r := fetchTS(t, g, key)
			wantV, wantA := counts(tags)
			if r.allVideo != wantV {
				t.Errorf("decoded %d video frames, published %d", r.allVideo, wantV)
			}
			// AAC decoders may drop priming: a frame or two.
			if r.allAudio < wantA-2 || r.allAudio > wantA {
				t.Errorf("decoded %d audio frames, published %d", r.allAudio, wantA)
			}
			for j, v := range r.video {
				if len(v) == 0 || !v[0].key {
					t.Errorf("segment %d does not start with a keyframe", j)
				}
				for _, f := range v {
					if f.width != 640 || f.height != 360 {
						t.Fatalf("segment %d: frame %dx%d", j, f.width, f.height)
					}
				}
			}
			checkEXTINF(t, r)
			if n := countDiscontinuities(r.pl); n != 0 {
				t.Errorf("%d discontinuities in a continuous stream", n)
			}
		})
	}
}

// Timestamps that wrap at 2^32 ms: the stream goes on, every segment starts
// with a keyframe and decodes, EXTINF tells the truth, the decoded timeline runs
// on. (Jumps back by 5 s and forward by 3 min are left out until the ingest
// timeline bridges them without losing the fraction of a frame step: see
// the issue 4 report.)
func TestOddTimestamps(t *testing.T) {
	c := avClip(t, "av6", "640x360", 6, 60)
	g := oddGateway(t)
	tests := []struct {
		name  string
		start uint32
		jumps int
		jump  func(ts uint32) uint32 // applied to the second half (from 3 s)
	}{
		{"wrap at 2^32", 0xfffff000, 0, func(ts uint32) uint32 { return ts }},
		// Jumps are bridged by ingest (the timeline runs on one frame later), so
		// no discontinuity is needed: the decoded timeline stays continuous.
		{"back 5 s", 20000, 0, func(ts uint32) uint32 { return ts - 5000 }},
		{"forward 3 min", 0, 0, func(ts uint32) uint32 { return ts + 180000 }},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tags := append([]oddTag{{typ: rtmpclient.TagScript, body: c.Meta}}, clipTags(c, tc.start, true)...)
			for j := range tags {
				if tags[j].typ != rtmpclient.TagScript && tags[j].ts-tc.start >= 3000 {
					tags[j].ts = tc.jump(tags[j].ts)
				}
			}
			key := fmt.Sprintf("ts%d", i)
			publishOdd(t, g.ingestURL(key), tags, 0)
			r := fetchTS(t, g, key)
			wantV, wantA := counts(tags)
			if r.allVideo != wantV {
				t.Errorf("decoded %d video frames, published %d", r.allVideo, wantV)
			}
			if r.allAudio < wantA-4 || r.allAudio > wantA {
				t.Errorf("decoded %d audio frames, published %d", r.allAudio, wantA)
			}
			if len(r.pl.segments) < 3 {
				t.Errorf("%d segments for 6 s of media", len(r.pl.segments))
			}
			for j, v := range r.video {
				if len(v) == 0 || !v[0].key {
					t.Errorf("segment %d does not start with a keyframe", j)
				}
			}
			checkEXTINF(t, r)
			if n := countDiscontinuities(r.pl); n < tc.jumps {
				t.Errorf("%d discontinuities, want at least %d\n%s", n, tc.jumps, r.pl.raw)
			}
			// Inside a segment, and across segments without a discontinuity, the
			// decoded timeline runs on in 1/30 s steps.
			var last float64
			for j, v := range r.video {
				for k, f := range v {
					if (k > 0 || j > 0 && !r.pl.segments[j].discontinuity) && math.Abs(f.pts-last-1.0/30) > 0.002 {
						t.Errorf("segment %d frame %d: pts %.3f after %.3f", j, k, f.pts, last)
					}
					last = f.pts
				}
			}
		})
	}
}

// A sequence header that changes mid-stream (640x360 to 1280x720): a
// discontinuity in the TS playlist, a new EXT-X-MAP in the fMP4 one, a new DASH
// Period, every frame decoded at its size.
func TestOddResolutionChange(t *testing.T) {
	small := avClip(t, "av4", "640x360", 4, 60)
	large := avClip(t, "hd4", "1280x720", 4, 60)
	g := oddGateway(t)
	const key = "reschange"
	tags := append([]oddTag{{typ: rtmpclient.TagScript, body: small.Meta}}, clipTags(small, 0, true)...)
	tags = append(tags, shiftAt(clipTags(large, small.Period, true), time.Duration(small.Period)*time.Millisecond)...)
	publishOdd(t, g.ingestURL(key), tags, 0)
	r := fetchTS(t, g, key)
	wantV, _ := counts(tags)
	if r.allVideo != wantV {
		t.Errorf("decoded %d video frames, published %d", r.allVideo, wantV)
	}
	var sizes []string
	for j, v := range r.video {
		for _, f := range v {
			s := fmt.Sprintf("%dx%d", f.width, f.height)
			if len(sizes) == 0 || sizes[len(sizes)-1] != s {
				sizes = append(sizes, s)
				if len(sizes) == 2 && !r.pl.segments[j].discontinuity {
					t.Errorf("segment %d changes size without EXT-X-DISCONTINUITY", j)
				}
			}
		}
	}
	if strings.Join(sizes, " ") != "640x360 1280x720" {
		t.Errorf("frame sizes %v, want 640x360 then 1280x720", sizes)
	}
	if n := countDiscontinuities(r.pl); n != 1 {
		t.Errorf("%d discontinuities, want 1\n%s", n, r.pl.raw)
	}
	checkEXTINF(t, r)

	// fMP4: two init segments, each decoding its side at its size.
	vURL := "http://" + g.httpAddr + "/live/" + key + "/v/index.m3u8"
	code, body := httpGet(t, vURL)
	if code != 200 {
		t.Fatalf("GET %s: %d", vURL, code)
	}
	maps := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindAllStringSubmatch(string(body), -1)
	if len(maps) != 2 || maps[0][1] == maps[1][1] {
		t.Fatalf("want two different EXT-X-MAPs in %s:\n%s", vURL, body)
	}
	if !strings.Contains(string(body), "#EXT-X-DISCONTINUITY") {
		t.Errorf("fMP4 playlist without EXT-X-DISCONTINUITY:\n%s", body)
	}
	checkCMAFSides(t, vURL, string(body), []string{"640x360", "1280x720"})

	code, mpd := httpGet(t, "http://"+g.httpAddr+"/live/"+key+"/index.mpd")
	if code != 200 {
		t.Fatalf("MPD: %d", code)
	}
	if n := strings.Count(string(mpd), "<Period"); n != 2 {
		t.Errorf("MPD has %d Periods, want 2:\n%s", n, mpd)
	}
	for _, dim := range []string{`width="640" height="360"`, `width="1280" height="720"`} {
		if !strings.Contains(string(mpd), dim) {
			t.Errorf("MPD lacks a Representation with %s:\n%s", dim, mpd)
		}
	}
}

// checkCMAFSides concatenates each EXT-X-MAP's init with its fragments and
// decodes it: every frame at that side's size.
func checkCMAFSides(t *testing.T, playlistURL, body string, want []string) {
	t.Helper()
	base, _ := url.Parse(playlistURL)
	get := func(ref string) []byte {
		u, _ := url.Parse(ref)
		code, b := httpGet(t, base.ResolveReference(u).String())
		if code != 200 {
			t.Fatalf("GET %s: %d", ref, code)
		}
		return b
	}
	var sides [][]byte
	for _, line := range strings.Split(body, "\n") {
		if m := regexp.MustCompile(`^#EXT-X-MAP:URI="([^"]+)"`).FindStringSubmatch(line); m != nil {
			sides = append(sides, get(m[1]))
		} else if line != "" && !strings.HasPrefix(line, "#") && len(sides) > 0 {
			sides[len(sides)-1] = append(sides[len(sides)-1], get(line)...)
		}
	}
	if len(sides) != len(want) {
		t.Fatalf("%d sides, want %d", len(sides), len(want))
	}
	dir := t.TempDir()
	for i, b := range sides {
		p := filepath.Join(dir, fmt.Sprintf("side%d.mp4", i))
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		frames := probeFrames(t, p, "v")
		if len(frames) == 0 {
			t.Errorf("side %d: no frames", i)
		}
		for _, f := range frames {
			if s := fmt.Sprintf("%dx%d", f.width, f.height); s != want[i] {
				t.Fatalf("side %d: a %s frame, want %s", i, s, want[i])
			}
		}
	}
}

// A 100 Mbit/s publisher (1920x1080, I-frames of about a megabyte): every frame
// arrives and decodes, the connection stays up.
func TestOddHighBitrate(t *testing.T) {
	c := avClip(t, "big3", "1920x1080", 3, 30, "-b:v", "100M", "-minrate", "100M", "-maxrate", "100M", "-bufsize", "20M", "-x264-params", "nal-hrd=cbr")
	if rate := float64(c.Bytes) * 8 / float64(c.Period) / 1000; rate < 60 {
		t.Fatalf("clip is %.0f Mbit/s, want about 100", rate)
	}
	g := oddGateway(t)
	const key = "big"
	tags := append([]oddTag{{typ: rtmpclient.TagScript, body: c.Meta}}, clipTags(c, 0, true)...)
	publishOdd(t, g.ingestURL(key), tags, 1)
	r := fetchTS(t, g, key)
	wantV, wantA := counts(tags)
	if r.allVideo != wantV {
		t.Errorf("decoded %d video frames, published %d", r.allVideo, wantV)
	}
	if r.allAudio < wantA-2 || r.allAudio > wantA {
		t.Errorf("decoded %d audio frames, published %d", r.allAudio, wantA)
	}
	for j, v := range r.video {
		if len(v) == 0 || !v[0].key || v[0].width != 1920 || v[0].height != 1080 {
			t.Errorf("segment %d: does not start with a 1920x1080 keyframe", j)
		}
	}
	checkEXTINF(t, r)
}
