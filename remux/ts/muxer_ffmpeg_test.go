package ts_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

// makeFLV encodes 4 s of H.264 (with B-frames, a keyframe every 2 s) and stereo
// AAC into an FLV, the shape an RTMP encoder sends.
func makeFLV(t *testing.T, ffmpeg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "src.flv")
	testkit.Run(t, ffmpeg, "-v", "error", "-nostdin",
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100",
		"-t", "4", "-pix_fmt", "yuv420p",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-keyint_min", "60", "-sc_threshold", "0", "-bf", "2",
		"-c:a", "aac", "-ac", "2", "-b:a", "96k",
		"-f", "flv", out)
	return out
}

type probeFrame struct {
	MediaType string `json:"media_type"`
	CodecType string `json:"codec_type"`
	PTS       *int64 `json:"pts"`
	DTS       *int64 `json:"dts"`
	KeyFrame  int    `json:"key_frame"`
	PictType  string `json:"pict_type"`
}

// probe runs ffprobe for frames or packets of input and returns them in order.
func probe(t *testing.T, input, what string) []probeFrame {
	t.Helper()
	var entries string
	switch what {
	case "frames":
		entries = "frame=media_type,pts,key_frame,pict_type"
	case "packets":
		entries = "packet=codec_type,pts,dts"
	}
	args := []string{"-show_entries", entries}
	if what == "frames" {
		args = append([]string{"-show_frames"}, args...)
	}
	var r struct {
		Frames  []probeFrame `json:"frames"`
		Packets []probeFrame `json:"packets"`
	}
	testkit.Probe(t, &r, input, args...)
	if what == "frames" {
		return r.Frames
	}
	for i := range r.Packets {
		r.Packets[i].MediaType = r.Packets[i].CodecType
	}
	return r.Packets
}

// cut splits frames into segments starting at a video keyframe at least 2 s after
// the previous cut (any frame for audio-only); the first segment starts with the
// first frame.
func cut(frames []remux.Frame, hasVideo bool) [][]remux.Frame {
	var segs [][]remux.Frame
	start := int64(-1 << 62)
	for _, f := range frames {
		boundary := f.Key && (!hasVideo || f.Track.Kind() == remux.KindVideo)
		switch {
		case len(segs) == 0:
			// Audio ahead of the first keyframe opens the first segment.
			segs = append(segs, nil)
			start = f.DTS
		case boundary && f.DTS-start >= 2000:
			segs = append(segs, nil)
			start = f.DTS
		}
		segs[len(segs)-1] = append(segs[len(segs)-1], f)
	}
	return segs
}

func TestMuxerDecodesWithFFmpeg(t *testing.T) {
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	testkit.NeedTool(t, "ffprobe")
	src := makeFLV(t, ffmpeg)
	video, audio, frames, err := readFLV(src)
	if err != nil {
		t.Fatal(err)
	}
	if video == nil || audio == nil || audio.Channels != 2 || audio.SampleRate != 44100 {
		t.Fatalf("fixture tracks: video %+v audio %+v", video, audio)
	}

	// The source as ffmpeg sees it: our reader must agree before we compare.
	srcPkts := probe(t, src, "packets")
	var srcVideoPTS, srcAudioPTS []int64
	for _, p := range srcPkts {
		switch p.MediaType {
		case "video":
			srcVideoPTS = append(srcVideoPTS, *p.PTS)
		case "audio":
			srcAudioPTS = append(srcAudioPTS, *p.PTS)
		}
	}
	var ourVideoPTS, ourAudioPTS []int64
	for i := range frames {
		if frames[i].Track == video {
			ourVideoPTS = append(ourVideoPTS, frames[i].PTS())
		} else {
			ourAudioPTS = append(ourAudioPTS, frames[i].PTS())
		}
	}
	if !slices.Equal(srcVideoPTS, ourVideoPTS) || !slices.Equal(srcAudioPTS, ourAudioPTS) {
		t.Fatalf("FLV reader disagrees with ffprobe: video %d/%d audio %d/%d frames", len(ourVideoPTS), len(srcVideoPTS), len(ourAudioPTS), len(srcAudioPTS))
	}
	if len(srcVideoPTS) != 120 {
		t.Fatalf("fixture has %d video frames, want 120", len(srcVideoPTS))
	}

	tests := []struct {
		name         string
		video, audio *remux.Track
		wantSegs     int
	}{
		{"audio+video", video, audio, 2},
		{"video-only", video, nil, 2},
		{"audio-only", nil, audio, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in []remux.Frame
			for _, f := range frames {
				if f.Track == tc.video || f.Track == tc.audio {
					in = append(in, f)
				}
			}
			segs := cut(in, tc.video != nil)
			if len(segs) != tc.wantSegs {
				t.Fatalf("%d segments, want %d", len(segs), tc.wantSegs)
			}
			dir := t.TempDir()
			if k := os.Getenv("TS_KEEP"); k != "" { // keep the segments for a look by hand
				dir = filepath.Join(k, tc.name)
				_ = os.MkdirAll(dir, 0o755)
			}
			m := ts.NewMuxer(tc.video, tc.audio)
			var buf, all []byte
			var paths []string
			for i, seg := range segs {
				buf = m.AppendSegmentStart(buf[:0])
				for j := range seg {
					if buf, err = m.AppendFrame(buf, &seg[j]); err != nil {
						t.Fatalf("segment %d frame %d: %v", i, j, err)
					}
				}
				p := filepath.Join(dir, fmt.Sprintf("seg%d.ts", i))
				if err := os.WriteFile(p, buf, 0o644); err != nil {
					t.Fatal(err)
				}
				paths = append(paths, p)
				all = append(all, buf...)
			}

			checkPackets(t, all, segs, tc.video, tc.audio)

			var nVideo, nAudio int
			for i, p := range paths {
				if msg := decodeErrors(t, ffmpeg, p); msg != "" {
					t.Errorf("segment %d: ffmpeg says:\n%s", i, msg)
				}
				var wantV, wantA, gotV, gotA []int64
				for _, f := range segs[i] {
					if f.Track.Kind() == remux.KindVideo {
						wantV = append(wantV, f.PTS()*90)
					} else {
						wantA = append(wantA, f.PTS()*90)
					}
				}
				decoded := probe(t, p, "frames")
				firstVideo := true
				for _, f := range decoded {
					if f.PTS == nil {
						t.Fatalf("segment %d: %s frame without pts", i, f.MediaType)
					}
					switch f.MediaType {
					case "video":
						if firstVideo && (f.KeyFrame != 1 || f.PictType != "I") {
							t.Errorf("segment %d: first video frame key_frame=%d pict_type=%s", i, f.KeyFrame, f.PictType)
						}
						firstVideo = false
						gotV = append(gotV, *f.PTS)
					case "audio":
						gotA = append(gotA, *f.PTS)
					}
				}
				slices.Sort(wantV)
				slices.Sort(gotV)
				if !slices.Equal(gotV, wantV) {
					t.Errorf("segment %d: decoded video pts\n got %v\nwant %v", i, gotV, wantV)
				}
				if !slices.Equal(gotA, wantA) {
					t.Errorf("segment %d: decoded audio pts\n got %v\nwant %v", i, gotA, wantA)
				}
				nVideo += len(gotV)
				nAudio += len(gotA)
			}
			wantVideo, wantAudio := 0, 0
			if tc.video != nil {
				wantVideo = len(srcVideoPTS)
			}
			if tc.audio != nil {
				wantAudio = len(srcAudioPTS)
			}
			if nVideo != wantVideo || nAudio != wantAudio {
				t.Errorf("decoded %d video / %d audio frames, want %d / %d", nVideo, nAudio, wantVideo, wantAudio)
			}

			checkConcat(t, paths, len(in))

			// The decode check must be able to fail: the same segment with its
			// first keyframe's slice data damaged has to draw complaints.
			if tc.video != nil {
				b, _ := os.ReadFile(paths[0])
				for i := 20 * 188; i < 40*188 && i < len(b); i += 188 {
					clear(b[i+20 : i+188])
				}
				bad := filepath.Join(dir, "damaged.ts")
				if err := os.WriteFile(bad, b, 0o644); err != nil {
					t.Fatal(err)
				}
				if decodeErrors(t, ffmpeg, bad) == "" {
					t.Error("damaged segment decodes without complaint: the decode check is blind")
				}
			}
		})
	}
}

// decodeErrors decodes a whole file and returns what ffmpeg printed at level
// error. The encoder time base is the demuxer's (-enc_time_base -1): the null
// muxer's default 1/fps time base rounds millisecond-jittered 30 fps timestamps
// onto the same tick and then complains about non-increasing DTS, which ffmpeg's
// own mpegts remux of the same frames does too; that is not a decoding problem.
func decodeErrors(t *testing.T, ffmpeg, path string) string {
	t.Helper()
	out, errOut := testkit.Run(t, ffmpeg, "-v", "error", "-nostdin", "-i", path, "-enc_time_base", "-1", "-f", "null", "-")
	return out + errOut
}

// checkConcat reads the segments back to back, as a player switching segments
// does, and wants every packet with timestamps that never step back or jump.
func checkConcat(t *testing.T, paths []string, wantPackets int) {
	t.Helper()
	pkts := probe(t, "concat:"+strings.Join(paths, "|"), "packets")
	if len(pkts) != wantPackets {
		t.Errorf("concat: %d packets, want %d", len(pkts), wantPackets)
	}
	last := map[string]int64{}
	maxStep := map[string]int64{"video": 2 * 3060, "audio": 2 * 2160}
	for i, p := range pkts {
		if p.DTS == nil {
			t.Fatalf("concat packet %d: no dts", i)
		}
		if prev, ok := last[p.MediaType]; ok {
			if d := *p.DTS - prev; d <= 0 || d > maxStep[p.MediaType] {
				t.Errorf("concat packet %d (%s): dts step %d", i, p.MediaType, d)
			}
		}
		last[p.MediaType] = *p.DTS
	}
}

// checkPackets walks our own output: packet layer, continuity across segments,
// PSI per segment, and each PES against the frame it came from.
func checkPackets(t *testing.T, all []byte, segs [][]remux.Frame, video, audio *remux.Track) {
	t.Helper()
	d, err := demux(all, map[uint16]int{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.pat) != len(segs) || len(d.pmt) != len(segs) {
		t.Fatalf("%d PAT / %d PMT for %d segments", len(d.pat), len(d.pmt), len(segs))
	}
	var frames []remux.Frame
	for _, s := range segs {
		frames = append(frames, s...)
	}
	if len(d.pes) != len(frames) {
		t.Fatalf("%d PES for %d frames", len(d.pes), len(frames))
	}
	pcrPID := uint16(ts.PIDVideo)
	if video == nil {
		pcrPID = ts.PIDAudio
	}
	var lastPCR int64 = -1
	for i, u := range d.pes {
		f := frames[i]
		wantPID, wantSID := uint16(ts.PIDVideo), byte(0xE0)
		if f.Track == audio {
			wantPID, wantSID = ts.PIDAudio, 0xC0
		}
		if u.pid != wantPID || u.streamID != wantSID {
			t.Fatalf("PES %d: pid %#x stream_id %#x, want %#x %#x", i, u.pid, u.streamID, wantPID, wantSID)
		}
		if u.pts != f.PTS()*90 || u.dts != f.DTS*90 || u.hasDTS != (f.CTS != 0) {
			t.Errorf("PES %d: pts %d dts %d (dts field %v), want %d %d", i, u.pts, u.dts, u.hasDTS, f.PTS()*90, f.DTS*90)
		}
		if u.pid == pcrPID {
			if u.pcr < 0 || u.pcr > u.dts*300 || u.pcr < lastPCR {
				t.Errorf("PES %d: pcr %d with dts %d (previous pcr %d)", i, u.pcr, u.dts, lastPCR)
			}
			lastPCR = u.pcr
		} else if u.pcr >= 0 {
			t.Errorf("PES %d: PCR on pid %#x", i, u.pid)
		}
		if f.Track == video {
			if u.rai != f.Key {
				t.Errorf("PES %d: random_access_indicator %v on key=%v", i, u.rai, f.Key)
			}
			if !bytes.HasPrefix(u.es, []byte{0, 0, 0, 1, 9, 0xF0, 0, 0, 0, 1}) {
				t.Errorf("PES %d: does not start with AUD: % x", i, u.es[:min(12, len(u.es))])
			}
			if sps := append([]byte{0, 0, 0, 1}, video.SPS[0]...); f.Key != bytes.HasPrefix(u.es[6:], sps) {
				t.Errorf("PES %d: key=%v but SPS after AUD is %v", i, f.Key, !f.Key)
			}
		} else {
			if len(u.es) != 7+len(f.Data) || u.es[0] != 0xFF || u.es[1]&0xF6 != 0xF0 || !bytes.Equal(u.es[7:], f.Data) {
				t.Errorf("PES %d: not one ADTS frame around the raw AAC frame", i)
			}
			if u.pesLength == 0 {
				t.Errorf("PES %d: audio PES_packet_length 0", i)
			}
		}
	}
}
