package flv_test

import (
	"errors"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	erfixture "github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
)

// TestNewTrack builds tracks from the fixtures' sequence starts; codec strings
// and sizes are what ffprobe reports for the same files.
func TestNewTrack(t *testing.T) {
	tests := []struct {
		file, fourCC  string
		typ           byte
		codec         remux.Codec
		str           string
		width, height int
		keys          int // sync samples among the coded frames (a keyframe every 50)
	}{
		{"hevc-aac.flv", "hvc1", 9, remux.CodecHEVC, "hvc1.1.6.L63.90", 640, 360, 3},
		{"av1-opus.flv", "av01", 9, remux.CodecAV1, "av01.0.01M.08", 640, 360, 3},
		{"vp9-opus.flv", "vp09", 9, remux.CodecVP9, "vp09.00.21.08", 0, 0, 3},
		{"av1-opus.flv", "Opus", 8, remux.CodecOpus, "opus", 0, 0, -1},
	}
	for _, tc := range tests {
		t.Run(tc.file+"/"+tc.fourCC, func(t *testing.T) {
			rec := erfixture.ExBodies(t, tc.file, tc.typ, tc.fourCC, 0)[0].Data
			tr, err := flv.NewTrack(fourCC(tc.fourCC), rec)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Kind() == remux.KindVideo && tr.BitDepth != 8 {
				t.Errorf("bit depth %d, want 8", tr.BitDepth)
			}
			if tr.Codec != tc.codec || tr.CodecString != tc.str || tr.Width != tc.width || tr.Height != tc.height {
				t.Fatalf("got %v %q %dx%d, want %v %q %dx%d", tr.Codec, tr.CodecString, tr.Width, tr.Height, tc.codec, tc.str, tc.width, tc.height)
			}
			if tr.Kind() == remux.KindAudio && (tr.Timescale != 48000 || tr.Channels != 1) {
				t.Fatalf("audio timescale %d channels %d", tr.Timescale, tr.Channels)
			}
			if &tr.Config[0] == &rec[0] {
				t.Fatal("Config aliases the message")
			}
			if tc.keys < 0 {
				return
			}
			keys, frames := 0, 0
			var pkts []flv.TrackPacket
			for _, tag := range erfixture.Tags(t, tc.file) {
				if tag.Type != 9 {
					continue
				}
				m, err := flv.SplitVideo(pkts, tag.Body)
				if err != nil {
					t.Fatal(err)
				}
				pkts = m.Packets
				for _, p := range m.Packets {
					if p.Type != flv.PacketFrame {
						continue
					}
					frames++
					k, err := flv.IsKey(tr, p.Data)
					if err != nil {
						t.Fatal(err)
					}
					if k {
						keys++
					}
				}
			}
			if frames != 150 || keys != tc.keys {
				t.Fatalf("%d frames, %d keys; want 150 and %d", frames, keys, tc.keys)
			}
		})
	}
	if _, err := flv.NewTrack(flv.FourCCVP8, []byte{1}); !errors.Is(err, flv.ErrUnsupportedCodec) {
		t.Fatalf("vp08: %v", err)
	}
}

func fourCC(s string) flv.FourCC {
	return flv.FourCC(uint32(s[0])<<24 | uint32(s[1])<<16 | uint32(s[2])<<8 | uint32(s[3]))
}

// TestTrackProfiles checks the names the API and page show against ffprobe's
// profile and level for the fixtures.
func TestTrackProfiles(t *testing.T) {
	for _, tc := range []struct{ file, fourCC, profile, level string }{
		{"hevc-aac.flv", "hvc1", "Main", "2.1"},
		{"av1-opus.flv", "av01", "Main", "2.1"},
		{"vp9-opus.flv", "vp09", "Profile 0", "2.1"},
	} {
		rec := erfixture.ExBodies(t, tc.file, 9, tc.fourCC, 0)[0].Data
		tr, err := flv.NewTrack(fourCC(tc.fourCC), rec)
		if err != nil {
			t.Fatal(err)
		}
		if tr.Profile != tc.profile || tr.Level != tc.level || tr.BitDepth != 8 {
			t.Errorf("%s: %q %q %d bits, want %q %q 8 bits", tc.file, tr.Profile, tr.Level, tr.BitDepth, tc.profile, tc.level)
		}
	}
}

// A FLAC sequence start must hold STREAMINFO, an AC-3 or E-AC-3 track's first
// frame must be a syncframe of its FourCC's codec: anything else is malformed,
// not unsupported.
func TestNewTrackAudioErrors(t *testing.T) {
	eac3 := []byte{0x0b, 0x77, 0x01, 0x7f, 0x34, 0x87, 0xc0, 0x00, 0x20, 0x84, 0x21, 0x08}
	for name, tc := range map[string]struct {
		fcc flv.FourCC
		rec []byte
	}{
		"flac empty":       {flv.FourCCFLAC, nil},
		"flac short":       {flv.FourCCFLAC, []byte("fLaC\x00\x00\x00\x22")},
		"ac-3 no syncword": {flv.FourCCAC3, []byte{1, 2, 3, 4, 5, 6, 7}},
		"ac-3 is e-ac-3":   {flv.FourCCAC3, eac3},
	} {
		_, err := flv.NewTrack(tc.fcc, tc.rec)
		if err == nil || errors.Is(err, flv.ErrUnsupportedCodec) {
			t.Errorf("%s: err %v, want a malformed record", name, err)
		}
	}
	tr, err := flv.NewTrack(flv.FourCCEAC3, eac3)
	if err != nil || tr.Codec != remux.CodecEAC3 || tr.CodecString != "ec-3" || tr.Channels != 2 || tr.SampleRate != 48000 {
		t.Fatalf("ec-3: %+v, %v", tr, err)
	}
}

// An HEVC track takes its colour from the SPS's VUI when the publisher sends
// no colorInfo: x265 writes the colour description it was told (here HLG) and
// none by default.
func TestNewTrackHEVCColourFromSPS(t *testing.T) {
	for _, c := range []struct {
		params string
		want   *remux.Color
	}{
		{"colorprim=bt2020:transfer=arib-std-b67:colormatrix=bt2020nc:range=full", &remux.Color{Primaries: 9, Transfer: 18, Matrix: 9, FullRange: true}},
		{"bframes=2", nil},
	} {
		v := testkit.EncodeVideo(t, 40, "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=0.2",
			"-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
			"-x265-params", "log-level=error:"+c.params)
		tr, err := flv.NewTrack(flv.FourCCHEVC, v.Config)
		if err != nil {
			t.Fatalf("%s: %v", c.params, err)
		}
		if (tr.Color == nil) != (c.want == nil) || tr.Color != nil && *tr.Color != *c.want {
			t.Errorf("%s: colour %+v, want %+v", c.params, tr.Color, c.want)
		}
		if tr.Color != nil && tr.Color.HDR() != "HLG" {
			t.Errorf("%s: HDR %q, want HLG", c.params, tr.Color.HDR())
		}
	}
}
