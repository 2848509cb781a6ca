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

// Enhanced RTMP (v2) tag bodies: header byte, then ModEx or multitrack prefixes,
// a FourCC and the packet.
var (
	hvcSeq      = append([]byte{0x90, 'h', 'v', 'c', '1'}, 1, 1, 0x60, 0, 0, 0)     // SequenceStart, key frame
	hvcFrame    = []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0, 0, 0, 0, 2, 0x26, 0x01} // CodedFrames
	hvcEnd      = []byte{0x92, 'h', 'v', 'c', '1'}                                  // SequenceEnd
	hvcModExSeq = append([]byte{0x97, 2, 0, 0, 0, 0x00, 'h', 'v', 'c', '1'}, 1, 1, 0x60, 0, 0, 0)
	hvcMeta     = append([]byte{0xd4, 'h', 'v', 'c', '1'}, 0x02, 0, 9, 'c', 'o', 'l', 'o', 'r', 'I', 'n', 'f', 'o', 0x03, 0, 0, 9)
	command     = []byte{0xd0, 0}                                                  // frame type 5, packet type 0: a command, no header
	mtAVCSeq    = append([]byte{0x96, 0x00, 'a', 'v', 'c', '1', 0}, avcSeq[5:]...) // OneTrack, track 0
	opusHead    = []byte{'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, 1, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 0}
	opusSeq     = append([]byte{0x90, 'O', 'p', 'u', 's'}, opusHead...)
	opusChans   = []byte{0x94, 'O', 'p', 'u', 's', 0, 1, 0, 0, 0, 4} // MultichannelConfig: native order, mono, mask
	opusFrame   = []byte{0x91, 'O', 'p', 'u', 's', 0xfc, 0xff, 0xfe}
	opusEnd     = []byte{0x92, 'O', 'p', 'u', 's'}
	mtAACSeq    = append([]byte{0x95, 0x00, 'm', 'p', '4', 'a', 0}, aacSeq[2:]...)
)

// A looped Enhanced RTMP clip sends each sequence start, metadata and
// multichannel configuration once, wherever it sits behind ModEx or multitrack
// prefixes, never takes a command frame for one, and drops SequenceEnd, as for
// legacy tags.
func TestParseFLVEnhanced(t *testing.T) {
	tags := []struct {
		body   []byte
		typ    uint8
		config bool
	}{
		{hvcSeq, TagVideo, true},
		{hvcModExSeq, TagVideo, true},
		{mtAVCSeq, TagVideo, true},
		{opusSeq, TagAudio, true},
		{mtAACSeq, TagAudio, true},
		{opusChans, TagAudio, true},
		{hvcMeta, TagVideo, true},
		{command, TagVideo, false},
		{hvcFrame, TagVideo, false},
		{opusFrame, TagAudio, false},
		{hvcEnd, TagVideo, false},
		{opusEnd, TagAudio, false},
	}
	var in []flvTag
	for i, tg := range tags {
		in = append(in, flvTag{tg.typ, uint32(i * 10), tg.body})
	}
	c, err := ParseFLV(buildFLV(in...))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Tags) != len(tags)-2 {
		t.Fatalf("%d tags, want %d: the two SequenceEnd tags dropped", len(c.Tags), len(tags)-2)
	}
	for i, tg := range c.Tags {
		if !bytes.Equal(tg.Body, tags[i].body) {
			t.Fatalf("tag %d body %x, want %x", i, tg.Body, tags[i].body)
		}
		if tg.Config != tags[i].config {
			t.Errorf("tag %d (%x): config %v, want %v", i, tg.Body, tg.Config, tags[i].config)
		}
	}
}
