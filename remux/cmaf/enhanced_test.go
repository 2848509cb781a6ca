package cmaf_test

import (
	"github.com/rtmpgate/rtmpgate/internal/mp4dump"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixturemedia"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

// enhancedFixtures are the Enhanced RTMP fixtures with one video and one
// audio track, and what ffprobe must say of our CMAF tracks made from them.
var enhancedFixtures = []struct {
	file                  string
	vEntry, vCodec, vProf string
	aEntry, aCodec        string
	aFrameMs              int64 // one audio frame's duration, for the last sample
	pixFmt                string
}{
	{"hevc-aac.flv", "hvc1", "hevc", "Main", "mp4a", "aac", 21, "yuv420p"},
	{"av1-opus.flv", "av01", "av1", "Main", "Opus", "opus", 20, "yuv420p"},
	{"vp9-opus.flv", "vp09", "vp9", "Profile 0", "Opus", "opus", 20, "yuv420p"},
}

// fragmentStarts are the indices of the frames that open each fragment: every
// video key frame, and for audio the first frame at or after each video cut
// (audio before the first cut joins the first fragment), as the segmenter cuts.
func fragmentStarts(v, a []remux.Frame) (vStarts, aStarts []int) {
	for i, f := range v {
		if f.Key {
			vStarts = append(vStarts, i)
		}
	}
	for _, vs := range vStarts {
		for i, f := range a {
			if f.DTS >= v[vs].DTS {
				if len(aStarts) == 0 || aStarts[len(aStarts)-1] != i {
					aStarts = append(aStarts, i)
				}
				break
			}
		}
	}
	if len(aStarts) > 0 {
		aStarts[0] = 0
	}
	return vStarts, aStarts
}

// TestEnhancedFixtures writes each Enhanced RTMP fixture (HEVC+AAC, AV1+Opus,
// VP9+Opus, read with ingest/flv) as two CMAF tracks, init segment and one
// fragment per GOP, and checks with ffmpeg and ffprobe that every frame
// decodes without an error, that codec, profile and size are the source's,
// that the sample entry is the codec's, that timestamps run on without a gap
// and that every fragment starts with a key frame. CMAF_KEEP=dir keeps them.
func TestEnhancedFixtures(t *testing.T) {
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	testkit.NeedTool(t, "ffprobe")
	for _, fx := range enhancedFixtures {
		t.Run(fx.file, func(t *testing.T) {
			clip := fixturemedia.Read(t, fx.file)
			v, a := clip.VideoFrames(), clip.AudioFrames()
			if len(v) != 150 {
				t.Fatalf("%d video frames in the fixture, want 150", len(v))
			}
			vStarts, aStarts := fragmentStarts(v, a)
			if len(vStarts) != 3 {
				t.Fatalf("key frames at %v, want 3 (one every 50 frames)", vStarts)
			}
			dir := t.TempDir()
			if d := os.Getenv("CMAF_KEEP"); d != "" {
				dir = d
			}
			base := strings.TrimSuffix(fx.file, ".flv")
			vPath, aPath := filepath.Join(dir, base+"-v.mp4"), filepath.Join(dir, base+"-a.mp4")
			vEnd := v[len(v)-1].DTS + 40
			aEnd := a[len(a)-1].DTS + fx.aFrameMs
			cutTrack(t, vPath, clip.Video, v, vStarts, vEnd)
			cutTrack(t, aPath, clip.Audio, a, aStarts, aEnd)

			init, err := cmaf.AppendInit(nil, clip.Video)
			if err != nil {
				t.Fatal(err)
			}
			if d := mp4dump.Dump(init); !strings.Contains(d, "\n            "+fx.vEntry+" ") {
				t.Errorf("video init has no %s sample entry:\n%s", fx.vEntry, d)
			}

			t.Run("video", func(t *testing.T) {
				if _, stderr := testkit.Run(t, ffmpeg, "-v", "error", "-i", vPath, "-f", "null", "-"); stderr != "" {
					t.Errorf("ffmpeg decode errors:\n%s", stderr)
				}
				got := probe(t, vPath, "-count_frames", "-select_streams", "v:0",
					"-show_entries", "stream=codec_name,profile,width,height,pix_fmt,nb_read_frames")
				if len(got.Streams) != 1 {
					t.Fatalf("streams %+v", got.Streams)
				}
				s := got.Streams[0]
				if s.CodecName != fx.vCodec || s.Profile != fx.vProf || s.Width != 640 || s.Height != 360 ||
					s.PixFmt != fx.pixFmt || s.NbReadFrames != "150" {
					t.Errorf("stream %+v, want %s %s 640x360 %s, 150 frames decoded", s, fx.vCodec, fx.vProf, fx.pixFmt)
				}
				if s.Width != clip.Video.Width || s.Height != clip.Video.Height {
					t.Errorf("size %dx%d, track says %dx%d", s.Width, s.Height, clip.Video.Width, clip.Video.Height)
				}
				checkPackets(t, vPath, "v:0", v, vStarts, vEnd, 90)
			})

			t.Run("audio", func(t *testing.T) {
				if _, stderr := testkit.Run(t, ffmpeg, "-v", "error", "-i", aPath, "-f", "null", "-"); stderr != "" {
					t.Errorf("ffmpeg decode errors:\n%s", stderr)
				}
				got := probe(t, aPath, "-count_frames", "-select_streams", "a:0",
					"-show_entries", "stream=codec_name,sample_rate,channels,nb_read_frames")
				if len(got.Streams) != 1 {
					t.Fatalf("streams %+v", got.Streams)
				}
				s := got.Streams[0]
				if s.CodecName != fx.aCodec || s.SampleRate != "48000" || s.Channels != 1 || s.NbReadFrames != strconv.Itoa(len(a)) {
					t.Errorf("stream %+v, want %s 48000 Hz mono, %d frames decoded", s, fx.aCodec, len(a))
				}
				checkPackets(t, aPath, "a:0", a, aStarts, aEnd, 48)
				if d := float64(aEnd-a[0].DTS) / 1000; math.Abs(d-6) > 0.05 {
					t.Errorf("audio lasts %.3f s, want 6 s", d)
				}
			})
		})
	}
}

// checkPackets compares ffprobe's packets of one track of path with the frames
// it was made of: one packet per frame, DTS and PTS as the source's, durations
// (where ffprobe reports them) reaching the next packet, the track ending at
// end ms, key flags as the source's and a key frame at every fragment start.
// ticksPerMs is the track timescale over 1000.
func checkPackets(t *testing.T, path, stream string, frames []remux.Frame, starts []int, end int64, ticksPerMs int64) {
	t.Helper()
	// Without parsers ffprobe shows the container's view: key flags from the
	// trun sample flags, durations from trun.
	pk := probe(t, path, "-fflags", "+noparse", "-select_streams", stream,
		"-show_entries", "packet=pts,dts,duration,pts_time,flags").Packets
	var st struct {
		Streams []probeStream `json:"streams"`
	}
	testkit.Probe(t, &st, path, "-select_streams", stream, "-show_entries", "stream=duration_ts")
	if len(st.Streams) != 1 || st.Streams[0].DurationTS != end*ticksPerMs {
		t.Errorf("track ends at %+v ticks, want %d", st.Streams, end*ticksPerMs)
	}
	if len(pk) != len(frames) {
		t.Fatalf("%d packets, want %d", len(pk), len(frames))
	}
	isStart := map[int]bool{}
	for _, s := range starts {
		isStart[s] = true
	}
	for i, p := range pk {
		src := frames[i]
		key := strings.HasPrefix(p.Flags, "K")
		if key != src.Key {
			t.Errorf("packet %d: key %v, source key %v", i, key, src.Key)
		}
		if isStart[i] && !key {
			t.Errorf("fragment starting at packet %d does not start with a key frame", i)
		}
		if p.DTS != src.DTS*ticksPerMs {
			t.Errorf("packet %d: DTS %d, source %d ms", i, p.DTS, src.DTS)
		}
		if p.PTS != src.PTS()*ticksPerMs {
			t.Errorf("packet %d: PTS %d, source %d ms", i, p.PTS, src.PTS())
		}
		next := end * ticksPerMs
		if i+1 < len(pk) {
			next = pk[i+1].DTS
		}
		// Audio parsers report the codec's frame length rather than trun's
		// duration (AAC's 1024 samples, where millisecond DTS alternate 21 and
		// 22 ms), so only video durations are trun's; for AV1 and VP9
		// ffmpeg 5.1 reports none (the DTS and the track end are checked).
		if ticksPerMs == 90 && p.Duration != 0 && p.DTS+p.Duration != next {
			t.Errorf("packet %d: DTS %d + duration %d = %d, next starts at %d", i, p.DTS, p.Duration, p.DTS+p.Duration, next)
		}
	}
}

// TestColourBox gives the HEVC fixture's track (whose SPS has no colour
// description) a PQ / BT.2020 one with light levels and checks that colr and
// clli are written and that ffprobe reads the light levels; a VP9 track
// whose vpcC says "unspecified" gets no colr.
func TestColourBox(t *testing.T) {
	testkit.NeedTool(t, "ffprobe")
	clip := fixturemedia.Read(t, "hevc-aac.flv")
	tr := *clip.Video
	tr.Color = &remux.Color{Primaries: 9, Transfer: 16, Matrix: 9, MaxCLL: 1000, MaxFALL: 400}
	v := clip.VideoFrames()
	for i := range v {
		v[i].Track = &tr
	}
	vStarts, _ := fragmentStarts(v, nil)
	dir := t.TempDir()
	if d := os.Getenv("CMAF_KEEP"); d != "" {
		dir = d
	}
	path := filepath.Join(dir, "hdr.mp4")
	cutTrack(t, path, &tr, v, vStarts, v[len(v)-1].DTS+40)
	init, err := cmaf.AppendInit(nil, &tr)
	if err != nil {
		t.Fatal(err)
	}
	d := mp4dump.Dump(init)
	for _, want := range []string{"colr size=19 colour_type=nclx primaries=9 transfer=16 matrix=9 full_range=0",
		"clli size=12 max_content_light_level=1000 max_pic_average_light_level=400"} {
		if !strings.Contains(d, want) {
			t.Errorf("init lacks %q:\n%s", want, d)
		}
	}
	// ffmpeg 5.1 reads colr into the stream's colour, but its HEVC decoder
	// then overwrites it with the SPS's (unspecified here); the light levels
	// of clli, read from the same sample entry after colr, stay as side data.
	var side struct {
		Streams []struct {
			SideData []struct {
				Type       string `json:"side_data_type"`
				MaxContent int    `json:"max_content"`
				MaxAverage int    `json:"max_average"`
			} `json:"side_data_list"`
		} `json:"streams"`
	}
	testkit.Probe(t, &side, path, "-select_streams", "v:0", "-show_entries", "stream_side_data_list")
	if len(side.Streams) != 1 || len(side.Streams[0].SideData) != 1 || side.Streams[0].SideData[0].MaxContent != 1000 ||
		side.Streams[0].SideData[0].MaxAverage != 400 {
		t.Errorf("ffprobe reads side data %+v, want content light levels 1000 / 400", side.Streams)
	}

	vp9 := fixturemedia.Read(t, "vp9-opus.flv").Video
	if vp9.Color == nil || vp9.Color.Primaries != 2 {
		t.Fatalf("VP9 fixture colour %+v, the test expects unspecified", vp9.Color)
	}
	init, err = cmaf.AppendInit(nil, vp9)
	if err != nil {
		t.Fatal(err)
	}
	if d := mp4dump.Dump(init); strings.Contains(d, "colr") {
		t.Errorf("unspecified colour written as colr:\n%s", d)
	}
}

// opusSamples is an Opus packet's duration in 48 kHz samples from its TOC
// byte and frame count (RFC 6716 3.1), 0 for a packet too short to say.
func opusSamples(p []byte) int {
	if len(p) < 1 {
		return 0
	}
	cfg := p[0] >> 3
	var size int // one frame, in samples at 48 kHz
	switch {
	case cfg < 12:
		size = [4]int{480, 960, 1920, 2880}[cfg%4]
	case cfg < 16:
		size = [2]int{480, 960}[cfg%2]
	default:
		size = [4]int{120, 240, 480, 960}[cfg%4]
	}
	switch p[0] & 3 {
	case 0:
		return size
	case 1, 2:
		return 2 * size
	}
	if len(p) < 2 {
		return 0
	}
	return int(p[1]&0x3f) * size
}

// TestOpusDurations compares the sample durations the Fragmenter derives from
// millisecond DTS differences with the Opus packets' own durations (from their
// TOC bytes). The fixture's packets are all 20 ms (960 samples), but their FLV
// timestamps run 0, 21, 41, 61...: RTMP's whole milliseconds put each sample
// up to 1 ms (48 ticks) off its TOC duration. The Fragmenter keeps the DTS
// differences: they add up to the fragment's end exactly, where summing TOC
// durations would drift from the publisher's timeline (an encoder's clock and
// its audio clock differ) and leave a gap or an overlap at every fragment
// boundary. The test pins that the difference stays within the 1 ms RTMP
// resolution and that the durations add up to the fragment.
func TestOpusDurations(t *testing.T) {
	clip := fixturemedia.Read(t, "av1-opus.flv")
	a := clip.AudioFrames()
	end := a[len(a)-1].DTS + 20
	frag := fragment(t, clip.Audio, a, 1, end)
	var durs []int
	for _, l := range strings.Split(mp4dump.Dump(frag), "\n") {
		if _, rest, ok := strings.Cut(l, "] duration="); ok {
			d, err := strconv.Atoi(strings.Fields(rest)[0])
			if err != nil {
				t.Fatal(err)
			}
			durs = append(durs, d)
		}
	}
	if len(durs) != len(a) {
		t.Fatalf("%d trun rows for %d packets", len(durs), len(a))
	}
	sum := 0
	for i, d := range durs {
		toc := opusSamples(a[i].Data)
		if toc != 960 {
			t.Fatalf("packet %d: %d samples by its TOC, the fixture was made with 20 ms packets", i, toc)
		}
		if d < toc-48 || d > toc+48 {
			t.Errorf("sample %d: duration %d, TOC says %d: more than 1 ms apart", i, d, toc)
		}
		sum += d
	}
	if want := int(end-a[0].DTS) * 48; sum != want {
		t.Errorf("durations add up to %d, the fragment spans %d", sum, want)
	}
}

// findBox returns the body of the first box of type typ in the tree b, looking
// into the containers on the way (and into an audio sample entry's boxes after
// its 28 fixed bytes), or nil.
func findBox(b []byte, typ string) []byte {
	boxes, err := testkit.Boxes(b)
	if err != nil {
		return nil
	}
	for _, x := range boxes {
		if x.Type == typ {
			return x.Body
		}
		var inner []byte
		switch x.Type {
		case "moov", "trak", "mdia", "minf", "stbl":
			inner = x.Body
		case "stsd":
			inner = x.Body[min(8, len(x.Body)):]
		case "ac-3", "ec-3", "fLaC", "mp4a", "Opus":
			inner = x.Body[min(28, len(x.Body)):]
		}
		if r := findBox(inner, typ); r != nil {
			return r
		}
	}
	return nil
}

// TestOtherAudio writes AC-3, E-AC-3 and FLAC tracks (which ingest does not
// produce yet) from what ffmpeg encodes into MP4: the configuration box
// (dac3, dec3, the metadata blocks of dfLa) and the frames where ffprobe says
// they are. ffmpeg must decode every frame of our CMAF track without an error.
func TestOtherAudio(t *testing.T) {
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	testkit.NeedTool(t, "ffprobe")
	for _, tc := range []struct {
		name       string
		codec      remux.Codec
		entry, box string
		fullBox    bool
	}{
		{"ac3", remux.CodecAC3, "ac-3", "dac3", false},
		{"eac3", remux.CodecEAC3, "ec-3", "dec3", false},
		{"flac", remux.CodecFLAC, "fLaC", "dfLa", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src.mp4")
			testkit.Run(t, ffmpeg, "-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
				"-ac", "2", "-c:a", tc.name, "-strict", "-2", src)
			raw, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			cfg := findBox(raw, tc.box)
			if tc.fullBox && len(cfg) >= 4 {
				cfg = cfg[4:]
			}
			if len(cfg) == 0 {
				t.Fatalf("ffmpeg's MP4 has no %s", tc.box)
			}
			var pk struct {
				Packets []struct {
					Pos     string `json:"pos"`
					Size    string `json:"size"`
					PTSTime string `json:"pts_time"`
				} `json:"packets"`
			}
			testkit.Probe(t, &pk, src, "-show_entries", "packet=pos,size,pts_time")
			tr := &remux.Track{ID: remux.TrackAudio, Codec: tc.codec, Timescale: 48000, Config: cfg, SampleRate: 48000, Channels: 2}
			var frames []remux.Frame
			var first float64 // AC-3's priming puts the first packet before 0
			for i, p := range pk.Packets {
				pos, _ := strconv.Atoi(p.Pos)
				size, _ := strconv.Atoi(p.Size)
				sec, _ := strconv.ParseFloat(p.PTSTime, 64)
				if i == 0 {
					first = sec
				}
				if pos+size > len(raw) || size == 0 {
					t.Fatalf("packet %d at %d size %d", i, pos, size)
				}
				frames = append(frames, remux.Frame{Track: tr, DTS: int64(math.Round((sec - first) * 1000)), Key: true, Data: raw[pos : pos+size]})
			}
			n := len(frames)
			if n < 20 {
				t.Fatalf("only %d frames", n)
			}
			path := filepath.Join(dir, "a.mp4")
			cutTrack(t, path, tr, frames, []int{0, n / 2}, frames[n-1].DTS+(frames[n-1].DTS-frames[n-2].DTS))
			init, err := cmaf.AppendInit(nil, tr)
			if err != nil {
				t.Fatal(err)
			}
			if d := mp4dump.Dump(init); !strings.Contains(d, tc.entry+" size=") || !strings.Contains(d, tc.box+" size=") {
				t.Errorf("init lacks %s / %s:\n%s", tc.entry, tc.box, d)
			}
			if _, stderr := testkit.Run(t, ffmpeg, "-v", "error", "-i", path, "-f", "null", "-"); stderr != "" {
				t.Errorf("ffmpeg decode errors:\n%s", stderr)
			}
			got := probe(t, path, "-count_frames", "-show_entries", "stream=codec_name,sample_rate,channels,nb_read_frames")
			if len(got.Streams) != 1 || got.Streams[0].CodecName != tc.name || got.Streams[0].Channels != 2 ||
				got.Streams[0].SampleRate != "48000" || got.Streams[0].NbReadFrames != strconv.Itoa(n) {
				t.Errorf("stream %+v, want %s 48 kHz stereo, %d frames decoded", got.Streams, tc.name, n)
			}
		})
	}
}
