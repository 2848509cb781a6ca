package flv_test

import (
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
)

var update = flag.Bool("update", false, "rewrite testdata tag bodies from freshly encoded ffmpeg files")

// fixture is an FLV file ffmpeg encodes from lavfi sources. Its sequence headers
// (and, with frame set, one small inter frame) are kept under testdata so that
// the table tests run without ffmpeg.
type fixture struct {
	name  string
	args  []string // ffmpeg arguments between the inputs and "-f flv out"
	frame bool     // keep the smallest non-key video frame as <name>.frame
}

var fixtures = []fixture{
	{name: "high640", args: []string{
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=44100", "-t", "1",
		"-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "2"}},
	{name: "base320", frame: true, args: []string{
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "1",
		"-c:v", "libx264", "-profile:v", "baseline", "-c:a", "aac", "-ac", "1"}},
	{name: "crop642", args: []string{
		"-f", "lavfi", "-i", "testsrc2=size=642x362:rate=30", "-t", "1",
		"-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p"}},
	{name: "inter640", args: []string{ // interlaced: frame_mbs_only_flag 0
		"-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30", "-t", "1",
		"-c:v", "libx264", "-flags", "+ildct+ilme", "-pix_fmt", "yuv420p"}},
	{name: "h444", args: []string{ // 4:4:4 with odd size: crop unit 1
		"-f", "lavfi", "-i", "testsrc2=size=322x242:rate=30", "-t", "1", "-vf", "scale=321:241",
		"-c:v", "libx264", "-profile:v", "high444", "-pix_fmt", "yuv444p"}},
	{name: "h422", args: []string{
		"-f", "lavfi", "-i", "testsrc2=size=322x242:rate=30", "-t", "1",
		"-c:v", "libx264", "-profile:v", "high422", "-pix_fmt", "yuv422p"}},
	{name: "h10", args: []string{
		"-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30", "-t", "1",
		"-c:v", "libx264", "-profile:v", "high10", "-pix_fmt", "yuv420p10le"}},
	{name: "aac51", args: []string{
		"-f", "lavfi", "-i", "sine=sample_rate=48000", "-t", "1", "-c:a", "aac", "-ac", "6"}},
}

// probeStream is what ffprobe says about one stream and its packets.
type probeStream struct {
	CodecType  string `json:"codec_type"`
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Channels   int    `json:"channels"`
	Index      int    `json:"index"`
}

type probePacket struct {
	StreamIndex int    `json:"stream_index"`
	Flags       string `json:"flags"`
}

// TestFFmpegFiles encodes each fixture with ffmpeg, parses every tag of the FLV
// file and checks the result against ffprobe (sizes, rates, channels, packet and
// keyframe counts) and against the codecs strings ffmpeg's DASH muxer writes.
// With -update it rewrites the testdata tag bodies.
func TestFFmpegFiles(t *testing.T) {
	testkit.NeedTool(t, "ffprobe")
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	for _, fx := range fixtures {
		t.Run(fx.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, fx.name+".flv")
			args := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, fx.args...)
			testkit.Run(t, ffmpeg, append(args, "-f", "flv", file)...)

			var probe struct {
				Streams []probeStream `json:"streams"`
				Packets []probePacket `json:"packets"`
			}
			testkit.Probe(t, &probe, file, "-show_streams", "-show_packets")
			testkit.Run(t, ffmpeg, "-hide_banner", "-loglevel", "error", "-y", "-i", file, "-c", "copy", "-f", "dash", filepath.Join(dir, "out.mpd"))
			mpd, err := os.ReadFile(filepath.Join(dir, "out.mpd"))
			if err != nil {
				t.Fatal(err)
			}
			dashCodecs := map[string]bool{}
			for _, m := range regexp.MustCompile(`codecs="([^"]+)"`).FindAllSubmatch(mpd, -1) {
				dashCodecs[string(m[1])] = true
			}

			tags := testkit.ReadFLV(t, file)
			got := parseAll(t, tags)

			for _, s := range probe.Streams {
				var frames, keys int
				for _, p := range probe.Packets {
					if p.StreamIndex == s.Index {
						frames++
						if strings.Contains(p.Flags, "K") {
							keys++
						}
					}
				}
				switch s.CodecType {
				case "video":
					tr := got.video
					if tr == nil {
						t.Fatal("no video sequence header")
					}
					if tr.Width != s.Width || tr.Height != s.Height {
						t.Errorf("video size %dx%d, ffprobe %dx%d", tr.Width, tr.Height, s.Width, s.Height)
					}
					if !dashCodecs[tr.CodecString] {
						t.Errorf("video codec string %q, ffmpeg's MPD has %v", tr.CodecString, dashCodecs)
					}
					if got.videoFrames != frames || got.videoKeys != keys {
						t.Errorf("video frames %d (%d key), ffprobe %d (%d key)", got.videoFrames, got.videoKeys, frames, keys)
					}
				case "audio":
					tr := got.audio
					if tr == nil {
						t.Fatal("no audio sequence header")
					}
					if s.SampleRate != itoa(tr.SampleRate) || tr.Channels != s.Channels || int(tr.Timescale) != tr.SampleRate {
						t.Errorf("audio %d Hz %d ch (timescale %d), ffprobe %s Hz %d ch", tr.SampleRate, tr.Channels, tr.Timescale, s.SampleRate, s.Channels)
					}
					if !dashCodecs[tr.CodecString] {
						t.Errorf("audio codec string %q, ffmpeg's MPD has %v", tr.CodecString, dashCodecs)
					}
					if got.audioFrames != frames {
						t.Errorf("audio frames %d, ffprobe %d", got.audioFrames, frames)
					}
				}
			}
			if *update {
				writeFixture(t, fx, got)
			}
		})
	}
}

// parsed is what parseAll gathered from one file.
type parsed struct {
	video, audio           *remux.Track
	videoSeq, audioSeq     []byte // first sequence header bodies
	videoFrames, videoKeys int
	audioFrames            int
	smallFrame             []byte // smallest non-key video frame body
}

// parseAll runs every tag through the parsers, as ingest would, and checks each
// frame's NAL units against its track.
func parseAll(t *testing.T, tags []testkit.FLVTag) parsed {
	t.Helper()
	var p parsed
	for i, tag := range tags {
		switch tag.Type {
		case tagVideo:
			pkt, err := flv.ParseVideo(tag.Body)
			if err != nil {
				t.Fatalf("tag %d: ParseVideo: %v", i, err)
			}
			switch pkt.Type {
			case flv.PacketSequenceHeader:
				if p.video == nil {
					p.video, p.videoSeq = pkt.Track, tag.Body
				}
			case flv.PacketFrame:
				if p.video == nil {
					t.Fatalf("tag %d: video frame before sequence header", i)
				}
				if err := flv.CheckNALUs(pkt.Data, p.video.NALULengthSize); err != nil {
					t.Fatalf("tag %d: %v", i, err)
				}
				p.videoFrames++
				if pkt.Key {
					p.videoKeys++
				} else if p.smallFrame == nil || len(tag.Body) < len(p.smallFrame) {
					p.smallFrame = tag.Body
				}
			}
		case tagAudio:
			pkt, err := flv.ParseAudio(tag.Body)
			if err != nil {
				t.Fatalf("tag %d: ParseAudio: %v", i, err)
			}
			switch pkt.Type {
			case flv.PacketSequenceHeader:
				if p.audio == nil {
					p.audio, p.audioSeq = pkt.Track, tag.Body
				}
			case flv.PacketFrame:
				if !pkt.Key || len(pkt.Data) == 0 {
					t.Fatalf("tag %d: audio frame key=%v len=%d", i, pkt.Key, len(pkt.Data))
				}
				p.audioFrames++
			}
		}
	}
	return p
}

func writeFixture(t *testing.T, fx fixture, p parsed) {
	t.Helper()
	write := func(suffix string, b []byte) {
		if b == nil {
			return
		}
		if err := os.WriteFile(filepath.Join("testdata", fx.name+suffix), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(".video", p.videoSeq)
	write(".audio", p.audioSeq)
	if fx.frame {
		write(".frame", p.smallFrame)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
