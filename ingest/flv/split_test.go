package flv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux/codec/av1"
	"github.com/rtmpgate/rtmpgate/remux/codec/hevc"
	"github.com/rtmpgate/rtmpgate/remux/codec/opus"
	"github.com/rtmpgate/rtmpgate/remux/codec/vp9"
)

// splitCount tallies a fixture's packets per track, FourCC and type.
type splitKey struct {
	audio bool
	track uint8
	fcc   FourCC
	typ   PacketType
}

func splitFixture(t *testing.T, name string) (map[splitKey]int, map[splitKey][]byte) {
	t.Helper()
	counts := map[splitKey]int{}
	first := map[splitKey][]byte{}
	var buf [MaxTracks]TrackPacket
	for i, tag := range fixture.Tags(t, name) {
		var m Message
		var err error
		switch tag.Type {
		case 9:
			m, err = SplitVideo(buf[:0], tag.Body)
		case 8:
			m, err = SplitAudio(buf[:0], tag.Body)
		default:
			continue
		}
		if err != nil {
			t.Fatalf("%s tag %d: %v", name, i, err)
		}
		for _, p := range m.Packets {
			k := splitKey{tag.Type == 8, p.TrackID, p.FourCC, p.Type}
			if counts[k] == 0 {
				first[k] = p.Data
			}
			counts[k]++
		}
	}
	return counts, first
}

// TestSplitFixtures splits every tag of the FFmpeg 8.0 fixtures and checks
// the tracks, their packet counts (6 s: 150 video frames at 25 fps, 282 AAC
// frames of 1024 samples or 300 Opus frames of 20 ms at 48 kHz) and what
// the codec packages read from each sequence header: the figures the fixtures
// README gives.
func TestSplitFixtures(t *testing.T) {
	v, a := false, true
	type want struct {
		k splitKey
		n int
	}
	tests := []struct {
		name  string
		wants []want
		check func(t *testing.T, first map[splitKey][]byte)
	}{
		{"hevc-aac.flv", []want{
			{splitKey{v, 0, FourCCHEVC, PacketSequenceHeader}, 1},
			{splitKey{v, 0, FourCCHEVC, PacketFrame}, 150},
			{splitKey{v, 0, FourCCHEVC, PacketMetadata}, 1},
			{splitKey{a, 0, FourCCAAC, PacketSequenceHeader}, 1},
		}, func(t *testing.T, first map[splitKey][]byte) {
			c, err := hevc.ParseConfig(first[splitKey{v, 0, FourCCHEVC, PacketSequenceHeader}])
			if err != nil || c.Width != 640 || c.Height != 360 || c.CodecString("hvc1") != "hvc1.1.6.L63.90" {
				t.Errorf("hvcC %+v, %v", c, err)
			}
		}},
		{"av1-opus.flv", []want{
			{splitKey{v, 0, FourCCAV1, PacketSequenceHeader}, 1},
			{splitKey{v, 0, FourCCAV1, PacketFrame}, 150},
			{splitKey{a, 0, FourCCOpus, PacketSequenceHeader}, 1},
			{splitKey{a, 0, FourCCOpus, PacketMultichannelConfig}, 1},
		}, func(t *testing.T, first map[splitKey][]byte) {
			c, err := av1.ParseConfig(first[splitKey{v, 0, FourCCAV1, PacketSequenceHeader}])
			if err != nil || c.Sequence.Width != 640 || c.Sequence.Height != 360 || c.CodecString() != "av01.0.01M.08" {
				t.Errorf("av1C %+v, %v", c, err)
			}
			h, err := opus.ParseHead(first[splitKey{a, 0, FourCCOpus, PacketSequenceHeader}])
			if err != nil || h.Channels != 1 {
				t.Errorf("OpusHead %+v, %v", h, err)
			}
		}},
		{"vp9-opus.flv", []want{
			{splitKey{v, 0, FourCCVP9, PacketSequenceHeader}, 1},
			{splitKey{v, 0, FourCCVP9, PacketFrame}, 150},
			{splitKey{a, 0, FourCCOpus, PacketFrame}, 301}, // 20 ms packets over 6 s and the pre-skip
		}, func(t *testing.T, first map[splitKey][]byte) {
			c, err := vp9.ParseConfig(first[splitKey{v, 0, FourCCVP9, PacketSequenceHeader}])
			if err != nil || c.CodecString() != "vp09.00.21.08" {
				t.Errorf("vpcC %+v, %v", c, err)
			}
		}},
		{"multitrack-h264.flv", []want{
			{splitKey{v, 0, FourCCAVC, PacketSequenceHeader}, 1},
			{splitKey{v, 1, FourCCAVC, PacketSequenceHeader}, 1},
			{splitKey{v, 2, FourCCAVC, PacketSequenceHeader}, 1},
			{splitKey{v, 0, FourCCAVC, PacketFrame}, 150},
			{splitKey{v, 1, FourCCAVC, PacketFrame}, 150},
			{splitKey{v, 2, FourCCAVC, PacketFrame}, 150},
			{splitKey{a, 0, FourCCAAC, PacketSequenceHeader}, 1},
			{splitKey{a, 1, FourCCAAC, PacketSequenceHeader}, 1},
			{splitKey{a, 1, FourCCAAC, PacketMultichannelConfig}, 1},
		}, func(t *testing.T, first map[splitKey][]byte) {
			for id, size := range [][2]int{{1280, 720}, {640, 360}, {320, 180}} {
				tr, err := parseAVCConfig(first[splitKey{v, uint8(id), FourCCAVC, PacketSequenceHeader}])
				if err != nil || tr.Width != size[0] || tr.Height != size[1] {
					t.Errorf("track %d: %+v, %v", id, tr, err)
				}
			}
		}},
		{"multitrack-hevc-h264.flv", []want{
			{splitKey{v, 0, FourCCHEVC, PacketSequenceHeader}, 1},
			{splitKey{v, 1, FourCCAVC, PacketSequenceHeader}, 1},
			{splitKey{v, 0, FourCCHEVC, PacketFrame}, 150},
			{splitKey{v, 1, FourCCAVC, PacketFrame}, 150},
		}, func(t *testing.T, first map[splitKey][]byte) {
			tr, err := parseAVCConfig(first[splitKey{v, 1, FourCCAVC, PacketSequenceHeader}])
			if err != nil || tr.Width != 320 || tr.Height != 180 {
				t.Errorf("track 1: %+v, %v", tr, err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			counts, first := splitFixture(t, tc.name)
			for _, w := range tc.wants {
				if counts[w.k] != w.n {
					t.Errorf("%+v: %d packets, want %d (all: %v)", w.k, counts[w.k], w.n, counts)
				}
			}
			tc.check(t, first)
		})
	}
}

func be24(n int) []byte { return []byte{byte(n >> 16), byte(n >> 8), byte(n)} }

func TestSplitVideo(t *testing.T) {
	hvcC := fixture.ExBodies(t, "hevc-aac.flv", 9, "hvc1", 0)[0].Data
	nalus := []byte{0, 0, 0, 2, 0x26, 0x01}
	avc, hvc, av01 := []byte("avc1"), []byte("hvc1"), []byte("av01")
	manyTracks := func(n int) []byte {
		b := join([]byte{0x96, 0x13}, avc) // key frame, Multitrack; ManyTracks, CodedFramesX
		for i := range n {
			b = append(b, byte(i))
			b = append(b, be24(len(nalus))...)
			b = append(b, nalus...)
		}
		return b
	}
	type pkt struct {
		id   uint8
		fcc  FourCC
		typ  PacketType
		cts  int32
		key  bool
		data []byte
	}
	tests := []struct {
		name string
		body []byte
		want []pkt
		nano uint32
		err  error
		msg  string
	}{
		{name: "hvc1 coded frames with cts", body: join([]byte{0x91}, hvc, []byte{0, 0, 0x50}, nalus),
			want: []pkt{{0, FourCCHEVC, PacketFrame, 0x50, true, nalus}}},
		{name: "av01 coded frames: no cts", body: join([]byte{0xa1}, av01, []byte{0x12, 0}),
			want: []pkt{{0, FourCCAV1, PacketFrame, 0, false, []byte{0x12, 0}}}},
		{name: "vvc1 coded frames with cts", body: join([]byte{0xa1}, []byte("vvc1"), []byte{0xff, 0xff, 0xff}, nalus),
			want: []pkt{{0, FourCCVVC, PacketFrame, -1, false, nalus}}},
		{name: "av01 mpeg2ts sequence start", body: join([]byte{0x95}, av01, []byte{0x80, 1}),
			want: []pkt{{0, FourCCAV1, PacketMPEG2TSSequenceStart, 0, false, []byte{0x80, 1}}}},
		{name: "metadata ignores frame type", body: join([]byte{0x84}, av01, []byte{2, 0, 9}),
			want: []pkt{{0, FourCCAV1, PacketMetadata, 0, false, []byte{2, 0, 9}}}},
		{name: "command frame without FourCC", body: []byte{0xd0, 0},
			want: []pkt{{0, 0, PacketCommand, 0, false, []byte{0}}}},
		{name: "modex timestamp offset", body: join([]byte{0x97, 2, 0x07, 0xa1, 0x20, 0x03}, avc, nalus),
			want: []pkt{{0, FourCCAVC, PacketFrame, 0, true, nalus}}, nano: 500000},
		{name: "modex 16-bit size of 65536", body: join([]byte{0x97, 255, 0xff, 0xff}, make([]byte, 65536), []byte{0x13}, avc, nalus),
			want: []pkt{{0, FourCCAVC, PacketFrame, 0, true, nalus}}},
		{name: "modex of unknown type skipped", body: join([]byte{0x97, 0, 9, 0x53}, avc, nalus),
			want: []pkt{{0, FourCCAVC, PacketFrame, 0, true, nalus}}},
		{name: "one track", body: join([]byte{0x96, 0x00}, avc, []byte{3}, []byte{1, 2}),
			want: []pkt{{3, FourCCAVC, PacketSequenceHeader, 0, false, []byte{1, 2}}}},
		{name: "many tracks", body: manyTracks(2),
			want: []pkt{{0, FourCCAVC, PacketFrame, 0, true, nalus}, {1, FourCCAVC, PacketFrame, 0, true, nalus}}},
		{name: "16 tracks", body: manyTracks(16), want: nil},
		{name: "many tracks many codecs", body: join([]byte{0x96, 0x21}, hvc, []byte{0}, be24(3+len(nalus)), []byte{0, 0, 1}, nalus,
			av01, []byte{1}, be24(2), []byte{0x12, 0}),
			want: []pkt{{0, FourCCHEVC, PacketFrame, 1, true, nalus}, {1, FourCCAV1, PacketFrame, 0, true, []byte{0x12, 0}}}},
		{name: "modex before multitrack", body: join([]byte{0x97, 2, 0, 0, 1, 0x06, 0x00}, avc, []byte{1, 9}),
			want: []pkt{{1, FourCCAVC, PacketSequenceHeader, 0, false, []byte{9}}}, nano: 1},
		{name: "legacy hevc codec id 12", body: join([]byte{0x1c, 1, 0, 0, 2}, nalus),
			want: []pkt{{0, FourCCHEVC, PacketFrame, 2, true, nalus}}},
		{name: "legacy codec id 7 with an hvcC", body: join([]byte{0x17, 0, 0, 0, 0}, hvcC),
			want: []pkt{{0, FourCCHEVC, PacketSequenceHeader, 0, false, hvcC}}},

		{name: "modex size past the message", body: []byte{0x97, 9, 0, 0}, err: ErrMalformed, msg: "ModEx"},
		{name: "modex 16-bit size past the message", body: join([]byte{0x97, 255, 0xff, 0xff}, make([]byte, 65535)), err: ErrMalformed, msg: "ModEx"},
		{name: "modex offset over a millisecond", body: join([]byte{0x97, 2, 0x0f, 0x42, 0x40, 0x03}, avc), err: ErrMalformed, msg: "999999"},
		{name: "one track without track id", body: join([]byte{0x96, 0x01}, avc), err: ErrMalformed, msg: "without tracks"},
		{name: "one track coded frames shorter than its cts", body: join([]byte{0x96, 0x01}, avc, []byte{0, 0, 0}), err: ErrMalformed, msg: "truncated"},
		{name: "many tracks size past the message", body: join([]byte{0x96, 0x13}, avc, []byte{0}, be24(100), nalus), err: ErrMalformed, msg: "sizeOfTrack 100 past the message"},
		{name: "many tracks size truncated", body: join([]byte{0x96, 0x13}, avc, []byte{0, 0}), err: ErrMalformed, msg: "truncated"},
		{name: "17 tracks", body: manyTracks(17), err: ErrMalformed, msg: "more than 16 tracks"},
		{name: "256 tracks", body: manyTracks(256), err: ErrMalformed, msg: "more than 16 tracks"},
		{name: "track twice", body: join(manyTracks(1), []byte{0}, be24(0)), err: ErrMalformed, msg: "track 0 twice"},
		{name: "multitrack without tracks", body: join([]byte{0x96, 0x13}, avc), err: ErrMalformed, msg: "without tracks"},
		{name: "nested multitrack", body: join([]byte{0x96, 0x06}, avc), err: ErrMalformed, msg: "nests"},
		{name: "reserved multitrack type", body: join([]byte{0x96, 0x31}, avc), err: ErrMalformed, msg: "AvMultitrackType 3"},
		{name: "reserved packet type", body: join([]byte{0x98}, avc), err: ErrMalformed, msg: "packet type 8"},
		{name: "command frame truncated", body: []byte{0xd0}, err: ErrMalformed, msg: "truncated"},
		{name: "legacy codec id 4", body: []byte{0x14, 0}, err: ErrUnsupportedCodec, msg: "codec id 4"},
	}
	var buf [MaxTracks]TrackPacket
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := SplitVideo(buf[:0], tc.body)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v, want %v containing %q", err, tc.err, tc.msg)
				}
				if m.Packets != nil {
					t.Fatal("packets with an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.TimestampOffsetNano != tc.nano {
				t.Errorf("nano offset %d, want %d", m.TimestampOffsetNano, tc.nano)
			}
			if tc.want == nil {
				if len(m.Packets) != 16 {
					t.Errorf("%d packets", len(m.Packets))
				}
				return
			}
			if len(m.Packets) != len(tc.want) {
				t.Fatalf("%d packets, want %d", len(m.Packets), len(tc.want))
			}
			for i, w := range tc.want {
				p := m.Packets[i]
				got := pkt{p.TrackID, p.FourCC, p.Type, p.CTS, p.Key, nil}
				if !bytes.Equal(p.Data, w.data) {
					t.Errorf("packet %d: data of %d bytes % .8x, want %d bytes % .8x", i, len(p.Data), p.Data, len(w.data), w.data)
				}
				w.data = nil
				if fmt.Sprint(got) != fmt.Sprint(w) {
					t.Errorf("packet %d: %v, want %v", i, got, w)
				}
			}
		})
	}
}

// TestNonStandardHEVC: both wild HEVC signallings are recognized by
// SplitVideo and refused by ParseVideo with an error naming them (ingest logs
// it once), not as a malformed stream.
func TestNonStandardHEVC(t *testing.T) {
	hvcC := fixture.ExBodies(t, "hevc-aac.flv", 9, "hvc1", 0)[0].Data
	var buf [1]TrackPacket
	for _, tc := range []struct {
		body   []byte
		signal Signal
		msg    string
	}{
		{join([]byte{0x1c, 0, 0, 0, 0}, hvcC), SignalHEVCCodecID12, "codec id 12 (HEVC"},
		{join([]byte{0x17, 0, 0, 0, 0}, hvcC), SignalHEVCUnderAVC, "OBS before 29.1"},
	} {
		m, err := SplitVideo(buf[:0], tc.body)
		if err != nil || m.Packets[0].Signal != tc.signal || m.Packets[0].FourCC != FourCCHEVC {
			t.Errorf("%v: %+v, %v", tc.signal, m, err)
		}
		if _, err := hevc.ParseConfig(m.Packets[0].Data); err != nil {
			t.Error(err)
		}
		_, err = ParseVideo(tc.body)
		if !errors.Is(err, ErrUnsupportedCodec) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%v: ParseVideo error %v", tc.signal, err)
		}
	}
	// A real avcC under codec id 7 stays H.264.
	if m, err := SplitVideo(buf[:0], mustRead(t, "testdata/high640.video")); err != nil || m.Packets[0].FourCC != FourCCAVC {
		t.Errorf("avcC: %+v, %v", m, err)
	}
}

func TestSplitAudio(t *testing.T) {
	asc := []byte{0x11, 0x88}
	tests := []struct {
		name string
		body []byte
		ids  []uint8
		fccs []FourCC
		typ  PacketType
		nano uint32
		err  string
	}{
		{name: "legacy aac", body: []byte{0xaf, 1, 0x21}, ids: []uint8{0}, fccs: []FourCC{FourCCAAC}, typ: PacketFrame},
		{name: "opus coded frames", body: join([]byte{0x91}, []byte("Opus"), []byte{0xf8}), ids: []uint8{0}, fccs: []FourCC{FourCCOpus}, typ: PacketFrame},
		{name: "one track mp4a", body: join([]byte{0x95, 0x00}, []byte("mp4a"), []byte{1}, asc), ids: []uint8{1}, fccs: []FourCC{FourCCAAC}, typ: PacketSequenceHeader},
		{name: "multichannel config", body: join([]byte{0x95, 0x04}, []byte("mp4a"), []byte{1, 1, 1, 0, 0, 0, 4}), ids: []uint8{1}, fccs: []FourCC{FourCCAAC}, typ: PacketMultichannelConfig},
		{name: "many tracks many codecs", body: join([]byte{0x95, 0x21}, []byte("Opus"), []byte{0}, be24(1), []byte{0xf8}, []byte("ac-3"), []byte{2}, be24(2), []byte{0x0b, 0x77}),
			ids: []uint8{0, 2}, fccs: []FourCC{FourCCOpus, FourCCAC3}, typ: PacketFrame},
		{name: "modex", body: join([]byte{0x97, 2, 0, 0, 9, 0x01}, []byte("fLaC"), []byte{0xff, 0xf8}), ids: []uint8{0}, fccs: []FourCC{FourCCFLAC}, typ: PacketFrame, nano: 9},
		{name: "reserved packet type", body: join([]byte{0x93}, []byte("Opus")), err: "audio packet type 3"},
		{name: "many tracks size past the message", body: join([]byte{0x95, 0x11}, []byte("Opus"), []byte{0}, be24(9), []byte{1}), err: "past the message"},
		{name: "speex", body: []byte{0xb6, 0}, err: "sound format 11"},
	}
	var buf [MaxTracks]TrackPacket
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := SplitAudio(buf[:0], tc.body)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(m.Packets) != len(tc.ids) || m.TimestampOffsetNano != tc.nano {
				t.Fatalf("%+v", m)
			}
			for i, p := range m.Packets {
				if p.TrackID != tc.ids[i] || p.FourCC != tc.fccs[i] || p.Type != tc.typ || !p.Key {
					t.Errorf("packet %d: %+v", i, p)
				}
			}
		})
	}
}

func TestFourCCString(t *testing.T) {
	if FourCCHEVC.String() != "hvc1" || FourCCMP3.String() != ".mp3" || FourCC(0x61620aff).String() != `ab\x0a\xff` {
		t.Error(FourCCHEVC, FourCCMP3, FourCC(0x61620aff))
	}
}

// TestSplitAllocs holds the ExHeader paths to zero allocations per message,
// multitrack included, with a [MaxTracks] buffer.
func TestSplitAllocs(t *testing.T) {
	hv := fixture.ExBodies(t, "hevc-aac.flv", 9, "hvc1", 1)[1]
	hvBody := join([]byte{0xa1}, []byte("hvc1"), hv.Data)
	mt := fixture.Tags(t, "multitrack-h264.flv")
	var mtBody []byte
	for _, tag := range mt {
		if tag.Type == 9 && len(tag.Body) > 6 && tag.Body[0]&0x0f == 6 && tag.Body[1]&0x0f != 0 {
			mtBody = tag.Body
			break
		}
	}
	opusBody := []byte{0x91, 'O', 'p', 'u', 's', 0xf8, 1, 2}
	var buf [MaxTracks]TrackPacket
	for name, fn := range map[string]func(){
		"SplitVideo hvc1":       func() { _, _ = SplitVideo(buf[:0], hvBody) },
		"SplitVideo multitrack": func() { _, _ = SplitVideo(buf[:0], mtBody) },
		"SplitAudio Opus":       func() { _, _ = SplitAudio(buf[:0], opusBody) },
		"ParseVideo hvc1":       func() { _, _ = ParseVideo(hvBody) },
		"ParseVideo multitrack": func() { _, _ = ParseVideo(mtBody) },
	} {
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
}

func BenchmarkSplitVideoHEVC(b *testing.B) {
	frames := fixture.ExBodies(b, "hevc-aac.flv", 9, "hvc1", 1)
	body := join([]byte{0xa1}, []byte("hvc1"), frames[1].Data)
	var buf [MaxTracks]TrackPacket
	b.ReportAllocs()
	for b.Loop() {
		if m, err := SplitVideo(buf[:0], body); err != nil || len(m.Packets) != 1 {
			b.Fatal(err)
		}
	}
}

func BenchmarkSplitVideoAV1(b *testing.B) {
	units := fixture.ExBodies(b, "av1-opus.flv", 9, "av01", 1)
	body := join([]byte{0xa1}, []byte("av01"), units[1].Data)
	var buf [MaxTracks]TrackPacket
	b.ReportAllocs()
	for b.Loop() {
		if m, err := SplitVideo(buf[:0], body); err != nil || len(m.Packets) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkSplitVideoManyTracks splits a three-rendition ManyTracks message;
// ns/track is the cost per frame of each track.
func BenchmarkSplitVideoManyTracks(b *testing.B) {
	nalus := bytes.Repeat([]byte{0, 0, 0, 3, 0x41, 1, 2}, 4)
	body := join([]byte{0xa6, 0x13}, []byte("avc1"))
	for id := range 3 {
		body = append(body, byte(id))
		body = append(body, be24(len(nalus))...)
		body = append(body, nalus...)
	}
	var buf [MaxTracks]TrackPacket
	b.ReportAllocs()
	for b.Loop() {
		if m, err := SplitVideo(buf[:0], body); err != nil || len(m.Packets) != 3 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/3, "ns/track")
}

func BenchmarkSplitAudioOpus(b *testing.B) {
	frames := fixture.ExBodies(b, "av1-opus.flv", 8, "Opus", 1)
	body := join([]byte{0x91}, []byte("Opus"), frames[1].Data)
	var buf [MaxTracks]TrackPacket
	b.ReportAllocs()
	for b.Loop() {
		if m, err := SplitAudio(buf[:0], body); err != nil || len(m.Packets) != 1 {
			b.Fatal(err)
		}
	}
}

func join(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
