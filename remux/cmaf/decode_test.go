package cmaf_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

type probePacket struct {
	PTS      int64  `json:"pts"`
	DTS      int64  `json:"dts"`
	Duration int64  `json:"duration"`
	PTSTime  string `json:"pts_time"`
	Flags    string `json:"flags"`
}

type probeStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Profile      string `json:"profile"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	PixFmt       string `json:"pix_fmt"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
	TimeBase     string `json:"time_base"`
	StartTime    string `json:"start_time"`
	NbReadFrames string `json:"nb_read_frames"`
	DurationTS   int64  `json:"duration_ts"`
}

type probeResult struct {
	Packets []probePacket `json:"packets"`
	Streams []probeStream `json:"streams"`
}

// probe reads what ffprobe says about path's streams and packets.
func probe(t *testing.T, path string, args ...string) probeResult {
	t.Helper()
	var r probeResult
	testkit.Probe(t, &r, path, args...)
	return r
}

func seconds(t *testing.T, s string) float64 {
	t.Helper()
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return v
}

// cutTrack writes init + one fragment per range to path. starts are the indices
// of the first frame of each fragment; each fragment ends at the next one's DTS
// and the last at lastEnd.
func cutTrack(t *testing.T, path string, tr *remux.Track, frames []remux.Frame, starts []int, lastEnd int64) {
	t.Helper()
	out, err := cmaf.AppendInit(nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	f, err := cmaf.NewFragmenter(tr)
	if err != nil {
		t.Fatal(err)
	}
	for k, s := range starts {
		e, end := len(frames), lastEnd
		if k+1 < len(starts) {
			e, end = starts[k+1], frames[starts[k+1]].DTS
		}
		for i := s; i < e; i++ {
			if err := f.Add(&frames[i]); err != nil {
				t.Fatal(err)
			}
		}
		if out, err = f.Flush(out, uint32(k+1), end); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRealDecoders cuts a real x264 (B-frames) + AAC 44.1 kHz clip into 2 s
// CMAF fragments per track and checks what ffmpeg, GStreamer and Chrome's MSE
// make of them against the source.
func TestRealDecoders(t *testing.T) {
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	testkit.NeedTool(t, "ffprobe")
	dir := t.TempDir()
	// CMAF_KEEP=/some/empty/dir keeps the clip and the tracks for inspection.
	if d := os.Getenv("CMAF_KEEP"); d != "" {
		dir = d
	}
	src := filepath.Join(dir, "src.flv")
	testkit.Run(t, ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100", "-t", "4",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-bf", "2", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-ac", "2", "-ar", "44100", "-f", "flv", src)
	clip, err := readFLV(src)
	if err != nil {
		t.Fatal(err)
	}
	if clip.video == nil || clip.audio == nil || len(clip.vFrames) < 100 || len(clip.aFrms) < 100 {
		t.Fatalf("clip: video %v audio %v, %d video and %d audio frames", clip.video, clip.audio, len(clip.vFrames), len(clip.aFrms))
	}
	if clip.video.Width != 640 || clip.video.Height != 360 || clip.audio.SampleRate != 44100 || clip.audio.Channels != 2 {
		t.Fatalf("clip tracks: %dx%d, %d Hz %d channels", clip.video.Width, clip.video.Height, clip.audio.SampleRate, clip.audio.Channels)
	}
	hasB := false
	for _, fr := range clip.vFrames {
		hasB = hasB || fr.CTS < clip.vFrames[0].CTS
	}
	if !hasB {
		t.Fatal("source has no B-frames; the test would prove nothing about composition offsets")
	}

	// Fragment boundaries: the first keyframe at or after every 2 s; audio cuts
	// at the first audio frame at or after each video cut, as the segmenter will.
	var vStarts, aStarts []int
	next := int64(0)
	for i, fr := range clip.vFrames {
		if fr.Key && fr.DTS >= next {
			vStarts = append(vStarts, i)
			next = (fr.DTS/2000 + 1) * 2000
		}
	}
	if len(vStarts) < 2 {
		t.Fatalf("only %d fragments", len(vStarts))
	}
	for _, vs := range vStarts {
		cut := clip.vFrames[vs].DTS
		for i, fr := range clip.aFrms {
			if fr.DTS >= cut {
				if len(aStarts) == 0 || aStarts[len(aStarts)-1] != i {
					aStarts = append(aStarts, i)
				}
				break
			}
		}
	}
	aStarts[0] = 0 // audio before the first video frame belongs to the first fragment
	nv, na := len(clip.vFrames), len(clip.aFrms)
	vPath, aPath := filepath.Join(dir, "v.mp4"), filepath.Join(dir, "a.mp4")
	cutTrack(t, vPath, clip.video, clip.vFrames, vStarts, clip.vFrames[nv-1].DTS+33)
	aEnd := clip.aFrms[na-1].DTS + (1024*1000+22050)/44100
	cutTrack(t, aPath, clip.audio, clip.aFrms, aStarts, aEnd)

	t.Run("video", func(t *testing.T) {
		if _, stderr := testkit.Run(t, ffmpeg, "-v", "error", "-i", vPath, "-f", "null", "-"); stderr != "" {
			t.Errorf("ffmpeg decode errors:\n%s", stderr)
		}
		srcCount := probe(t, src, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames")
		got := probe(t, vPath, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames,time_base")
		if len(got.Streams) != 1 || got.Streams[0].NbReadFrames != srcCount.Streams[0].NbReadFrames ||
			got.Streams[0].NbReadFrames != strconv.Itoa(nv) {
			t.Fatalf("decoded frames: got %+v, source %+v, %d frames", got.Streams, srcCount.Streams, nv)
		}
		// Without parsers ffprobe reports the container's view: key flags from
		// the trun sample flags (the H.264 parser would re-derive them from the
		// bitstream) and durations from trun.
		pk := probe(t, vPath, "-fflags", "+noparse+nofillin", "-select_streams", "v:0", "-show_entries", "packet=pts,dts,duration,pts_time,flags").Packets
		if len(pk) != nv {
			t.Fatalf("got %d packets, want %d", len(pk), nv)
		}
		isStart := map[int]bool{}
		for _, s := range vStarts {
			isStart[s] = true
		}
		for i, p := range pk {
			src := clip.vFrames[i]
			key := strings.HasPrefix(p.Flags, "K")
			if key != src.Key {
				t.Errorf("packet %d: key %v, source key %v", i, key, src.Key)
			}
			if isStart[i] && !key {
				t.Errorf("fragment starting at packet %d does not start with a key frame", i)
			}
			if d := seconds(t, p.PTSTime)*1000 - float64(src.PTS()); math.Abs(d) > 1 {
				t.Errorf("packet %d: PTS %s s, source %d ms", i, p.PTSTime, src.PTS())
			}
		}
		st := probe(t, vPath, "-show_entries", "stream=duration_ts").Streams
		if want := (clip.vFrames[nv-1].DTS + 33) * 90; len(st) != 1 || st[0].DurationTS != want {
			t.Errorf("track ends at %+v ticks, want %d", st, want)
		}
	})

	t.Run("audio", func(t *testing.T) {
		if _, stderr := testkit.Run(t, ffmpeg, "-v", "error", "-i", aPath, "-f", "null", "-"); stderr != "" {
			t.Errorf("ffmpeg decode errors:\n%s", stderr)
		}
		srcCount := probe(t, src, "-count_frames", "-select_streams", "a:0", "-show_entries", "stream=nb_read_frames")
		got := probe(t, aPath, "-count_frames", "-select_streams", "a:0", "-show_entries", "stream=nb_read_frames")
		if len(got.Streams) != 1 || got.Streams[0].NbReadFrames != srcCount.Streams[0].NbReadFrames {
			t.Fatalf("decoded frames: got %+v, source %+v", got.Streams, srcCount.Streams)
		}
		pk := probe(t, aPath, "-fflags", "+noparse+nofillin", "-select_streams", "a:0", "-show_entries", "packet=pts,dts,duration,pts_time,flags").Packets
		if len(pk) != na {
			t.Fatalf("got %d packets, want %d", len(pk), na)
		}
		// Every packet sits exactly on the converted absolute timeline, across
		// fragment boundaries too, and consecutive packets are one AAC frame
		// apart (1024 samples, give or take 1 ms of source rounding, 44.1 ticks):
		// no gap or overlap where fragments meet.
		isStart := map[int]bool{}
		for _, s := range aStarts {
			isStart[s] = true
		}
		for i, p := range pk {
			if want := (clip.aFrms[i].DTS*441 + 5) / 10; p.PTS != want {
				t.Errorf("packet %d: PTS %d ticks, want round(%d ms * 44.1) = %d", i, p.PTS, clip.aFrms[i].DTS, want)
			}
			if i == 0 {
				continue
			}
			if d := p.PTS - pk[i-1].PTS; d < 1024-45 || d > 1024+45 {
				t.Errorf("packet %d (fragment start %v): %d ticks after the previous one", i, isStart[i], d)
			}
		}
		// ffmpeg 5.1 does not report trun durations per packet, but its track
		// end is the last tfdt plus the sum of the last trun's durations.
		st := probe(t, aPath, "-show_entries", "stream=duration_ts").Streams
		if want := (aEnd*441 + 5) / 10; len(st) != 1 || st[0].DurationTS != want {
			t.Errorf("track ends at %+v ticks, want round(%d ms * 44.1) = %d", st, aEnd, want)
		}
	})

	// GStreamer's qtdemux is a second, independent MP4 reader.
	t.Run("gstreamer", func(t *testing.T) {
		gst := testkit.NeedTool(t, "gst-launch-1.0")
		for _, c := range []struct {
			path, chain string
			want        int
		}{
			{vPath, "h264parse ! avdec_h264", nv},
			{aPath, "aacparse ! avdec_aac", na},
		} {
			args := append([]string{"filesrc", "location=" + c.path, "!", "qtdemux", "!"}, strings.Fields(c.chain)...)
			args = append(args, "!", "fakesink", "silent=false", "-v")
			out, stderr := testkit.Run(t, gst, args...)
			if n := strings.Count(out, "last-message = chain"); n != c.want {
				t.Errorf("%s: GStreamer decoded %d buffers, want %d\n%s", c.path, n, c.want, stderr)
			}
			if strings.Contains(out+stderr, "WARNING") || strings.Contains(out+stderr, "ERROR") {
				t.Errorf("%s: GStreamer complained:\n%.2000s", c.path, out+stderr)
			}
		}
	})

	// Chrome's MSE parser is what hls.js and dash.js feed in a browser.
	t.Run("chrome_mse", func(t *testing.T) {
		chromium := testkit.NeedTool(t, "chromium")
		vStart, vEnd := int64(math.MaxInt64), int64(0)
		for _, fr := range clip.vFrames {
			vStart, vEnd = min(vStart, fr.PTS()), max(vEnd, fr.PTS()+33)
		}
		got := chromeMSE(t, chromium, dir, map[string]mseTrack{
			"video": {`video/mp4; codecs="avc1.64001e"`, vPath},
			"audio": {`audio/mp4; codecs="mp4a.40.2"`, aPath},
		})
		want := map[string][2]float64{
			"video": {float64(vStart), float64(vEnd)},
			"audio": {float64(clip.aFrms[0].DTS), float64(aEnd)},
		}
		for k, w := range want {
			r := got.Buffered[k]
			if !got.Supported[k] || len(r) != 1 || math.Abs(r[0][0]*1000-w[0]) > 1 || math.Abs(r[0][1]*1000-w[1]) > 2 {
				t.Errorf("%s: supported %v, buffered %v s; want one range [%v, %v] ms", k, got.Supported[k], r, w[0], w[1])
			}
		}
		if got.Error != "" {
			t.Errorf("MSE error: %s", got.Error)
		}
	})

	t.Run("av_offset", func(t *testing.T) {
		av := filepath.Join(dir, "av.mp4")
		// -copyts keeps each input's timeline instead of starting both at 0.
		testkit.Run(t, ffmpeg, "-v", "error", "-copyts", "-i", vPath, "-i", aPath, "-map", "0:v", "-map", "1:a", "-c", "copy", av)
		offset := func(path string) float64 {
			r := probe(t, path, "-show_entries", "stream=codec_type,start_time")
			var v, a float64
			for _, s := range r.Streams {
				switch s.CodecType {
				case "video":
					v = seconds(t, s.StartTime)
				case "audio":
					a = seconds(t, s.StartTime)
				}
			}
			return (v - a) * 1000
		}
		srcOff, gotOff := offset(src), offset(av)
		// ffmpeg's mp4 muxer rounds the audio edit list to a tick of its own,
		// hence 2 ms rather than 1.
		if math.Abs(gotOff-srcOff) > 2 {
			t.Errorf("A/V start offset %.3f ms, source %.3f ms", gotOff, srcOff)
		}
		vStart := probe(t, vPath, "-show_entries", "stream=start_time").Streams[0].StartTime
		aStart := probe(t, aPath, "-show_entries", "stream=start_time").Streams[0].StartTime
		if off := (seconds(t, vStart) - seconds(t, aStart)) * 1000; math.Abs(off-srcOff) > 1 {
			t.Errorf("A/V start offset of the CMAF tracks %.3f ms, source %.3f ms", off, srcOff)
		}
	})
}

type mseTrack struct{ mime, path string }

type mseResult struct {
	Supported map[string]bool         `json:"supported"`
	Buffered  map[string][][2]float64 `json:"buffered"`
	Error     string                  `json:"error"`
}

// chromeMSE appends each track file (init + fragments) to its own SourceBuffer in
// headless Chromium and reports the buffered ranges.
func chromeMSE(t *testing.T, chromium, dir string, tracks map[string]mseTrack) mseResult {
	t.Helper()
	var js strings.Builder
	for k, tr := range tracks {
		b, err := os.ReadFile(tr.path)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&js, "tracks[%q] = [%q, %q];\n", k, tr.mime, base64.StdEncoding.EncodeToString(b))
	}
	page := `<html><body><video id=v muted></video><pre id=out>pending</pre><script>
const tracks = {};
` + js.String() + `
const res = {supported: {}, buffered: {}, error: ""};
const decode = s => Uint8Array.from(atob(s), c => c.charCodeAt(0));
const ms = new MediaSource(), vid = document.getElementById("v");
vid.src = URL.createObjectURL(ms);
ms.addEventListener("sourceopen", async () => {
  try {
    const sbs = {};
    for (const [k, [mime]] of Object.entries(tracks)) {
      res.supported[k] = MediaSource.isTypeSupported(mime);
      sbs[k] = ms.addSourceBuffer(mime);
    }
    for (const [k, [, data]] of Object.entries(tracks)) {
      const sb = sbs[k];
      await new Promise((ok, bad) => {
        sb.addEventListener("updateend", ok, {once: true});
        sb.addEventListener("error", () => bad(new Error(k + ": SourceBuffer error")), {once: true});
        sb.appendBuffer(decode(data));
      });
      res.buffered[k] = [];
      for (let i = 0; i < sb.buffered.length; i++) res.buffered[k].push([sb.buffered.start(i), sb.buffered.end(i)]);
    }
  } catch (e) { res.error = String(e); }
  if (vid.error) res.error += " media error " + vid.error.code + " " + vid.error.message;
  document.getElementById("out").textContent = "RESULT" + JSON.stringify(res) + "END";
});
</script></body></html>`
	html := filepath.Join(dir, "mse.html")
	if err := os.WriteFile(html, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr := testkit.Run(t, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir="+t.TempDir(),
		"--virtual-time-budget=5000", "--dump-dom", "file://"+html)
	i, j := strings.Index(out, "RESULT"), strings.Index(out, "END</pre>")
	if i < 0 || j < i {
		t.Fatalf("no result from Chromium:\n%.2000s\n%.2000s", out, stderr)
	}
	var r mseResult
	if err := json.Unmarshal([]byte(html2text(out[i+len("RESULT"):j])), &r); err != nil {
		t.Fatalf("%v: %s", err, out[i:j])
	}
	return r
}

// html2text undoes the escaping --dump-dom applies to text nodes.
func html2text(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", "\"", "&amp;", "&").Replace(s)
}
