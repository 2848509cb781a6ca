package cmaf_test

import (
	"flag"
	"github.com/rtmpgate/rtmpgate/internal/mp4dump"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixturemedia"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// avcC of a 640x360 High profile stream as x264 writes it (one SPS, one PPS).
var testAVCC = []byte{
	0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0,
	0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x0f, 0x16,
	0x2d, 0x96, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
}

func videoTrack() *remux.Track {
	return &remux.Track{
		ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000, Config: testAVCC,
		CodecString: "avc1.64001e", Width: 640, Height: 360, NALULengthSize: 4,
	}
}

// audioTrack is AAC-LC 44100 Hz stereo: ASC 0x12 0x10.
func audioTrack() *remux.Track {
	return &remux.Track{
		ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 44100, Config: []byte{0x12, 0x10},
		CodecString: "mp4a.40.2", AudioObjectType: 2, SampleRate: 44100, Channels: 2,
	}
}

// gopFrames is an I P B B P B B GOP at 30 fps in decode order, DTS starting at
// start ms, with the composition offsets x264 produces with -bf 2.
func gopFrames(t *remux.Track, start int64) []remux.Frame {
	ctsFrames := []int{2, 4, 1, 1, 4, 1, 1} // PTS - DTS in frames, decode order I P B B P B B
	frames := make([]remux.Frame, len(ctsFrames))
	for i, c := range ctsFrames {
		dts := start + int64(i)*1000/30
		pts := start + int64(i+c)*1000/30
		frames[i] = remux.Frame{Track: t, DTS: dts, CTS: int32(pts - dts), Key: i == 0,
			Data: []byte{0, 0, 0, 3, 0x65 - byte(min(i, 1))*0x24, byte(i), byte(i)}}
	}
	return frames
}

// aacFrames are n frames of 1024 samples at 44100 Hz with millisecond DTS as RTMP
// carries them (rounded, so durations alternate 23 and 24 ms).
func aacFrames(t *remux.Track, start int64, n int) []remux.Frame {
	frames := make([]remux.Frame, n)
	for i := range frames {
		frames[i] = remux.Frame{Track: t, DTS: start + (int64(i)*1024*1000+22050)/44100, Key: true,
			Data: []byte{0x21, 0x10, byte(i)}}
	}
	return frames
}

func fragment(t *testing.T, tr *remux.Track, frames []remux.Frame, seq uint32, end int64) []byte {
	t.Helper()
	f, err := cmaf.NewFragmenter(tr)
	if err != nil {
		t.Fatal(err)
	}
	for i := range frames {
		if err := f.Add(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	b, err := f.Flush(nil, seq, end)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name  string
		bytes func(t *testing.T) []byte
	}{
		{"video_init", func(t *testing.T) []byte {
			b, err := cmaf.AppendInit(nil, videoTrack())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"audio_init", func(t *testing.T) []byte {
			b, err := cmaf.AppendInit(nil, audioTrack())
			if err != nil {
				t.Fatal(err)
			}
			return b
		}},
		{"video_fragment_bframes", func(t *testing.T) []byte {
			tr := videoTrack()
			return fragment(t, tr, gopFrames(tr, 2000), 7, 2000+7*1000/30)
		}},
		{"audio_fragment", func(t *testing.T) []byte {
			tr := audioTrack()
			return fragment(t, tr, aacFrames(tr, 2000, 10), 7, 2000+(10*1024*1000+22050)/44100)
		}},
	}
	// The init segments of the Enhanced RTMP fixtures' tracks, read with
	// ingest/flv: one per sample entry type.
	for _, fx := range []struct{ name, file string }{
		{"hevc_init", "hevc-aac.flv"}, {"av1_init", "av1-opus.flv"}, {"vp9_init", "vp9-opus.flv"}, {"opus_init", "vp9-opus.flv"},
	} {
		tests = append(tests, struct {
			name  string
			bytes func(t *testing.T) []byte
		}{fx.name, func(t *testing.T) []byte {
			c := fixturemedia.Read(t, fx.file)
			tr := c.Video
			if fx.name == "opus_init" {
				tr = c.Audio
			}
			b, err := cmaf.AppendInit(nil, tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mp4dump.Dump(tt.bytes(t))
			path := filepath.Join("testdata", "golden", tt.name+".txt")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run with -update after checking):\n--- got\n%s--- want\n%s", tt.name, path, got, want)
			}
		})
	}
}
