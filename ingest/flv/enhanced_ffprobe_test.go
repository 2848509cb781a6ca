package flv_test

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	erfixture "github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux/codec/av1"
	"github.com/rtmpgate/rtmpgate/remux/codec/hevc"
	"github.com/rtmpgate/rtmpgate/remux/codec/vp9"
)

// TestEnhancedFixturesFFprobe checks our reading of the Enhanced RTMP fixtures
// against ffprobe. Debian's FFmpeg 5.1 cannot read FLV with extended headers,
// so the test writes what SplitVideo returned as elementary streams it can
// read (HEVC Annex B from the hvcC arrays and the length-prefixed frames; AV1
// as a low-overhead OBU stream with the temporal delimiters FLV drops put
// back; VP9 in IVF) and compares ffprobe's profile, size, level and
// per-packet key flags with what the codec packages say.
func TestEnhancedFixturesFFprobe(t *testing.T) {
	testkit.NeedTool(t, "ffprobe")
	dir := t.TempDir()
	type result struct {
		codec, profile string
		width, height  int
		level          int
		keys           []bool // ours, in decode order
	}
	var buf [flv.MaxTracks]flv.TrackPacket
	frames := func(name string, fcc flv.FourCC) (cfg []byte, data [][]byte) {
		for _, tag := range erfixture.Tags(t, name) {
			if tag.Type != 9 {
				continue
			}
			m, err := flv.SplitVideo(buf[:0], tag.Body)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range m.Packets {
				switch {
				case p.FourCC != fcc:
				case p.Type == flv.PacketSequenceHeader:
					cfg = p.Data
				case p.Type == flv.PacketFrame:
					data = append(data, p.Data)
				}
			}
		}
		return cfg, data
	}
	tests := []struct {
		name, file, format string
		build              func(t *testing.T) ([]byte, result)
	}{
		{"hevc", "out.hevc", "hevc", func(t *testing.T) ([]byte, result) {
			rec, data := frames("hevc-aac.flv", flv.FourCCHEVC)
			c, err := hevc.ParseConfig(rec)
			if err != nil {
				t.Fatal(err)
			}
			r := result{codec: "hevc", profile: "Main", width: c.Width, height: c.Height, level: int(c.LevelIDC)}
			var es []byte
			for _, ps := range [][][]byte{c.VPS, c.SPS, c.PPS, c.SEI} {
				for _, nal := range ps {
					es = append(append(es, 0, 0, 0, 1), nal...)
				}
			}
			for _, d := range data {
				key, err := hevc.HasIRAP(d, c.LengthSize)
				if err != nil {
					t.Fatal(err)
				}
				r.keys = append(r.keys, key)
				for len(d) >= 4 {
					n := int(binary.BigEndian.Uint32(d))
					es = append(append(es, 0, 0, 0, 1), d[4:4+n]...)
					d = d[4+n:]
				}
			}
			return es, r
		}},
		{"av1", "out.obu", "obu", func(t *testing.T) ([]byte, result) {
			rec, data := frames("av1-opus.flv", flv.FourCCAV1)
			c, err := av1.ParseConfig(rec)
			if err != nil {
				t.Fatal(err)
			}
			r := result{codec: "av1", profile: "Main", width: c.Sequence.Width, height: c.Sequence.Height, level: int(c.SeqLevelIdx0)}
			var es []byte
			for _, d := range data {
				key, err := av1.IsKeyFrame(d)
				if err != nil {
					t.Fatal(err)
				}
				r.keys = append(r.keys, key)
				es = append(append(es, 0x12, 0), d...) // temporal delimiter OBU
			}
			return es, r
		}},
		{"vp9", "out.ivf", "ivf", func(t *testing.T) ([]byte, result) {
			rec, data := frames("vp9-opus.flv", flv.FourCCVP9)
			c, err := vp9.ParseConfig(rec)
			if err != nil {
				t.Fatal(err)
			}
			r := result{codec: "vp9", profile: "Profile " + string('0'+rune(c.Profile)), level: -99}
			es := append([]byte("DKIF"), 0, 0, 32, 0)
			es = append(es, "VP90"...)
			es = binary.LittleEndian.AppendUint16(es, 640) // IVF's own size field; ffprobe reads the frames'
			es = binary.LittleEndian.AppendUint16(es, 360)
			es = binary.LittleEndian.AppendUint32(es, 25)
			es = binary.LittleEndian.AppendUint32(es, 1)
			es = binary.LittleEndian.AppendUint32(es, uint32(len(data)))
			es = append(es, 0, 0, 0, 0)
			for i, d := range data {
				f, err := vp9.ParseFrame(d)
				if err != nil {
					t.Fatal(err)
				}
				if f.Key {
					r.width, r.height = f.Width, f.Height
				}
				r.keys = append(r.keys, f.Key)
				es = binary.LittleEndian.AppendUint32(es, uint32(len(d)))
				es = binary.LittleEndian.AppendUint64(es, uint64(i))
				es = append(es, d...)
			}
			return es, r
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			es, want := tc.build(t)
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, es, 0o644); err != nil {
				t.Fatal(err)
			}
			var probe struct {
				Streams []struct {
					CodecName string `json:"codec_name"`
					Profile   string `json:"profile"`
					Width     int    `json:"width"`
					Height    int    `json:"height"`
					Level     int    `json:"level"`
				} `json:"streams"`
				Packets []struct {
					Flags string `json:"flags"`
				} `json:"packets"`
			}
			testkit.Probe(t, &probe, path, "-f", tc.format, "-show_streams", "-show_packets")
			if len(probe.Streams) != 1 {
				t.Fatalf("ffprobe: %d streams, want 1", len(probe.Streams))
			}
			s := probe.Streams[0]
			if s.CodecName != want.codec || s.Profile != want.profile || s.Width != want.width || s.Height != want.height || s.Level != want.level {
				t.Errorf("ffprobe %+v, we read %+v", s, want)
			}
			if len(probe.Packets) != len(want.keys) || len(want.keys) != 150 {
				t.Fatalf("ffprobe %d packets, we read %d frames; want 150", len(probe.Packets), len(want.keys))
			}
			for i, p := range probe.Packets {
				if strings.HasPrefix(p.Flags, "K") != want.keys[i] {
					t.Errorf("packet %d: ffprobe flags %q, our key %v", i, p.Flags, want.keys[i])
				}
			}
		})
	}
}
