package cmaf_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

// lookTool finds a command-line tool; without it the test is skipped, except
// under CI=true where a missing tool is a failure.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required under CI: %v", name, err)
		}
		t.Skipf("%s not found: %v", name, err)
	}
	return p
}

// run runs a tool with a time cap and returns stdout; stderr goes into errors.
func run(t *testing.T, name string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

type probePacket struct {
	PTS      int64  `json:"pts"`
	DTS      int64  `json:"dts"`
	Duration int64  `json:"duration"`
	PTSTime  string `json:"pts_time"`
	Flags    string `json:"flags"`
}

type probeStream struct {
	CodecType    string `json:"codec_type"`
	TimeBase     string `json:"time_base"`
	StartTime    string `json:"start_time"`
	NbReadFrames string `json:"nb_read_frames"`
	DurationTS   int64  `json:"duration_ts"`
}

type probeResult struct {
	Packets []probePacket `json:"packets"`
	Streams []probeStream `json:"streams"`
}

func probe(t *testing.T, ffprobe, path string, args ...string) probeResult {
	t.Helper()
	out, _ := run(t, ffprobe, append(append([]string{"-v", "error", "-of", "json"}, args...), path)...)
	var r probeResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("ffprobe %s: %v", path, err)
	}
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

// TestDecodeWithFFmpeg cuts a real x264 (B-frames) + AAC 44.1 kHz clip into 2 s
// CMAF fragments per track and checks what ffmpeg decodes against the source.
func TestDecodeWithFFmpeg(t *testing.T) {
	if testing.Short() {
		t.Skip("encodes a clip with ffmpeg")
	}
	ffmpeg, ffprobe := lookTool(t, "ffmpeg"), lookTool(t, "ffprobe")
	dir := t.TempDir()
	// CMAF_KEEP=/some/empty/dir keeps the clip and the tracks for inspection.
	if d := os.Getenv("CMAF_KEEP"); d != "" {
		dir = d
	}
	src := filepath.Join(dir, "src.flv")
	run(t, ffmpeg, "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
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
		if _, stderr := run(t, ffmpeg, "-v", "error", "-i", vPath, "-f", "null", "-"); stderr != "" {
			t.Errorf("ffmpeg decode errors:\n%s", stderr)
		}
		srcCount := probe(t, ffprobe, src, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames")
		got := probe(t, ffprobe, vPath, "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames,time_base")
		if len(got.Streams) != 1 || got.Streams[0].NbReadFrames != srcCount.Streams[0].NbReadFrames ||
			got.Streams[0].NbReadFrames != strconv.Itoa(nv) {
			t.Fatalf("decoded frames: got %+v, source %+v, %d frames", got.Streams, srcCount.Streams, nv)
		}
		// Without parsers ffprobe reports the container's view: key flags from
		// the trun sample flags (the H.264 parser would re-derive them from the
		// bitstream) and durations from trun.
		pk := probe(t, ffprobe, vPath, "-fflags", "+noparse+nofillin", "-select_streams", "v:0", "-show_entries", "packet=pts,dts,duration,pts_time,flags").Packets
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
		st := probe(t, ffprobe, vPath, "-show_entries", "stream=duration_ts").Streams
		if want := (clip.vFrames[nv-1].DTS + 33) * 90; len(st) != 1 || st[0].DurationTS != want {
			t.Errorf("track ends at %+v ticks, want %d", st, want)
		}
	})

	t.Run("audio", func(t *testing.T) {
		if _, stderr := run(t, ffmpeg, "-v", "error", "-i", aPath, "-f", "null", "-"); stderr != "" {
			t.Errorf("ffmpeg decode errors:\n%s", stderr)
		}
		srcCount := probe(t, ffprobe, src, "-count_frames", "-select_streams", "a:0", "-show_entries", "stream=nb_read_frames")
		got := probe(t, ffprobe, aPath, "-count_frames", "-select_streams", "a:0", "-show_entries", "stream=nb_read_frames")
		if len(got.Streams) != 1 || got.Streams[0].NbReadFrames != srcCount.Streams[0].NbReadFrames {
			t.Fatalf("decoded frames: got %+v, source %+v", got.Streams, srcCount.Streams)
		}
		pk := probe(t, ffprobe, aPath, "-fflags", "+noparse+nofillin", "-select_streams", "a:0", "-show_entries", "packet=pts,dts,duration,pts_time,flags").Packets
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
		st := probe(t, ffprobe, aPath, "-show_entries", "stream=duration_ts").Streams
		if want := (aEnd*441 + 5) / 10; len(st) != 1 || st[0].DurationTS != want {
			t.Errorf("track ends at %+v ticks, want round(%d ms * 44.1) = %d", st, aEnd, want)
		}
	})

	t.Run("av_offset", func(t *testing.T) {
		av := filepath.Join(dir, "av.mp4")
		// -copyts keeps each input's timeline instead of starting both at 0.
		run(t, ffmpeg, "-v", "error", "-copyts", "-i", vPath, "-i", aPath, "-map", "0:v", "-map", "1:a", "-c", "copy", av)
		offset := func(path string) float64 {
			r := probe(t, ffprobe, path, "-show_entries", "stream=codec_type,start_time")
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
		vStart := probe(t, ffprobe, vPath, "-show_entries", "stream=start_time").Streams[0].StartTime
		aStart := probe(t, ffprobe, aPath, "-show_entries", "stream=start_time").Streams[0].StartTime
		if off := (seconds(t, vStart) - seconds(t, aStart)) * 1000; math.Abs(off-srcOff) > 1 {
			t.Errorf("A/V start offset of the CMAF tracks %.3f ms, source %.3f ms", off, srcOff)
		}
	})
}
