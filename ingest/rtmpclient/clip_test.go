package rtmpclient

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// flvTag is a tag for building test files.
type flvTag struct {
	typ  uint8
	ts   uint32
	body []byte
}

// buildFLV writes an FLV file by hand, with correct previous-tag sizes.
func buildFLV(tags ...flvTag) []byte {
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	for _, t := range tags {
		n := len(t.body)
		b = append(b, t.typ, byte(n>>16), byte(n>>8), byte(n), byte(t.ts>>16), byte(t.ts>>8), byte(t.ts), byte(t.ts>>24), 0, 0, 0)
		b = append(b, t.body...)
		b = binary.BigEndian.AppendUint32(b, uint32(11+n))
	}
	return b
}

var (
	avcSeq   = []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}
	avcKey   = []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88}
	avcInter = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a}
	avcEnd   = []byte{0x17, 2, 0, 0, 0}
	aacSeq   = []byte{0xaf, 0, 0x11, 0x90}
	aacRaw   = []byte{0xaf, 1, 0x21, 0x10}
	metaBody = append(append([]byte(nil), onMetaData...), 0x08, 0, 0, 0, 0, 0, 0, 9)
)

func TestParseFLV(t *testing.T) {
	good := buildFLV(
		flvTag{TagScript, 0, metaBody},
		flvTag{TagVideo, 1000, avcSeq}, flvTag{TagAudio, 1000, aacSeq},
		flvTag{TagVideo, 1000, avcKey}, flvTag{TagAudio, 1000, aacRaw},
		flvTag{TagAudio, 1021, aacRaw}, flvTag{TagVideo, 1033, avcInter},
		flvTag{TagVideo, 1066, avcInter}, flvTag{TagVideo, 0x1000000 + 1000, avcInter}, // extended timestamp byte
		flvTag{TagVideo, 0x1000000 + 1000, avcEnd},
	)
	c, err := ParseFLV(good)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(c.Meta, metaBody) {
		t.Errorf("meta %x", c.Meta)
	}
	wantTS := []uint32{0, 0, 0, 0, 21, 33, 66, 0x1000000}
	wantConfig := []bool{true, true, false, false, false, false, false, false}
	if len(c.Tags) != len(wantTS) {
		t.Fatalf("%d tags, want %d", len(c.Tags), len(wantTS))
	}
	for i, tg := range c.Tags {
		if tg.Timestamp != wantTS[i] || tg.Config != wantConfig[i] {
			t.Errorf("tag %d: ts %d config %v, want %d %v", i, tg.Timestamp, tg.Config, wantTS[i], wantConfig[i])
		}
	}
	if c.Video != 5 || c.Audio != 3 {
		t.Errorf("video %d audio %d, want 5 and 3", c.Video, c.Audio)
	}
	if !bytes.Equal(c.Tags[2].Body, avcKey) {
		t.Errorf("tag 2 body %x", c.Tags[2].Body)
	}

	bad := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "not an FLV file"},
		{"wrong signature", append([]byte("FLX"), good[3:]...), "not an FLV file"},
		{"version 2", append([]byte{'F', 'L', 'V', 2}, good[4:]...), "version 2"},
		{"header size past the end", []byte{'F', 'L', 'V', 1, 5, 0xff, 0, 0, 9, 0, 0, 0, 0}, "header size"},
		{"truncated tag header", good[:13+5], "truncated tag header"},
		{"truncated body", good[:len(good)-6], "past the end"},
		{"previous tag size wrong", func() []byte {
			b := bytes.Clone(good)
			b[len(b)-1]++
			return b
		}(), "previous tag size"},
		{"encrypted", buildFLV(flvTag{0x20 | TagVideo, 0, avcKey}), "encrypted"},
		{"no media", buildFLV(flvTag{TagScript, 0, metaBody}), "no audio or video"},
		{"time before first", buildFLV(flvTag{TagVideo, 500, avcKey}, flvTag{TagVideo, 100, avcKey}), "before the first"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseFLV(tc.in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestLoopPeriod(t *testing.T) {
	tests := []struct {
		name string
		tags []flvTag
		want uint32
	}{
		{"video ends last", []flvTag{{TagVideo, 0, avcSeq}, {TagVideo, 0, avcKey}, {TagAudio, 0, aacRaw}, {TagAudio, 21, aacRaw}, {TagVideo, 33, avcInter}, {TagAudio, 42, aacRaw}, {TagVideo, 66, avcInter}}, 66 + 33},
		{"audio ends last", []flvTag{{TagAudio, 0, aacRaw}, {TagVideo, 0, avcKey}, {TagAudio, 21, aacRaw}, {TagVideo, 33, avcInter}, {TagAudio, 43, aacRaw}, {TagAudio, 64, aacRaw}}, 64 + 21},
		{"audio only", []flvTag{{TagAudio, 0, aacSeq}, {TagAudio, 0, aacRaw}, {TagAudio, 21, aacRaw}, {TagAudio, 42, aacRaw}}, 42 + 21},
		{"frame rounds", []flvTag{{TagVideo, 0, avcKey}, {TagVideo, 33, avcInter}, {TagVideo, 67, avcInter}, {TagVideo, 100, avcInter}}, 100 + 33},
		{"one frame", []flvTag{{TagVideo, 0, avcKey}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseFLV(buildFLV(tc.tags...))
			if err != nil {
				t.Fatal(err)
			}
			if c.Period != tc.want {
				t.Errorf("period %d, want %d", c.Period, tc.want)
			}
		})
	}
}

// The clip the load tests use, made by the committed script: tags and timing
// as ffprobe sees them.
func TestReadClipFileMadeByFFmpeg(t *testing.T) {
	dir, c := makeClip(t)
	out, _ := testkit.Run(t, "ffprobe", "-v", "error", "-show_entries", "packet=stream_index,pts", "-of", "csv=p=0", filepath.Join(dir, "av.flv"))
	var video, audio, last int
	for _, line := range strings.Fields(out) {
		idx, pts, _ := strings.Cut(line, ",")
		n, err := strconv.Atoi(pts)
		if err != nil {
			t.Fatalf("ffprobe line %q", line)
		}
		last = max(last, n)
		if idx == "0" {
			video++
		} else {
			audio++
		}
	}
	// Each track's sequence header is a tag ffprobe does not count as a packet.
	if c.Video != video+1 || c.Audio != audio+1 {
		t.Errorf("video %d audio %d tags, ffprobe has %d and %d packets plus a sequence header each", c.Video, c.Audio, video, audio)
	}
	if c.Meta == nil {
		t.Error("no onMetaData")
	}
	if c.Period < uint32(last+20) || c.Period > uint32(last+34) {
		t.Errorf("loop period %d ms, want the last packet at %d ms plus a frame", c.Period, last)
	}
	if !c.Tags[0].Config || c.Tags[0].Type != TagVideo && c.Tags[1].Type != TagVideo {
		t.Errorf("first tags are not the sequence headers")
	}
}

// makeClip makes the 2 s clip the load tests use (ffmpeg) in a temporary
// directory, and reads it.
func makeClip(t *testing.T) (dir string, c *Clip) {
	t.Helper()
	testkit.NeedTools(t, "ffmpeg", "ffprobe")
	dir = t.TempDir()
	if err := testkit.MakeClips(dir, 2); err != nil {
		t.Fatal(err)
	}
	c, err := ReadFLV(filepath.Join(dir, "av.flv"))
	if err != nil {
		t.Fatal(err)
	}
	return dir, c
}

// TestClipEnhancedConfig: a clip of Enhanced RTMP tags (the fixtures) sends
// its sequence starts, video metadata and multichannel configurations once,
// multitrack ones included, and drops the end-of-sequence tags.
func TestClipEnhancedConfig(t *testing.T) {
	for name, want := range map[string]struct{ config, video, audio int }{
		"hevc-aac.flv":             {3, 152, 284},
		"av1-opus.flv":             {4, 152, 303},
		"vp9-opus.flv":             {4, 152, 303},
		"multitrack-h264.flv":      {6, 453, 569},
		"multitrack-hevc-h264.flv": {4, 303, 284},
	} {
		c, err := ParseFLV(fixture.Read(t, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		config := 0
		for _, tg := range c.Tags {
			if tg.Config {
				config++
			}
		}
		if config != want.config || c.Video != want.video || c.Audio != want.audio {
			t.Errorf("%s: %d config tags, %d video, %d audio; want %d, %d, %d", name, config, c.Video, c.Audio, want.config, want.video, want.audio)
		}
	}
}
