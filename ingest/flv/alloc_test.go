package flv_test

import (
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

// TestFramePathAllocs holds the per-message paths to zero allocations: ingest
// calls them for every RTMP audio and video message, including the refusal of a
// codec it goes on refusing for the whole stream.
func TestFramePathAllocs(t *testing.T) {
	frame := readTestdata(t, "base320.frame")
	// Bodies live outside the closures so that building them is not counted.
	b0 := []byte{0xaf, 1, 0x21, 0x10}
	b1 := []byte{0x93, 'a', 'v', 'c', '1', 0, 0, 0, 1, 0x41}
	b2 := []byte{0x57, 0}
	b3 := []byte{0x17, 2, 0, 0, 0}
	b4 := []byte{0x1c, 1, 0, 0, 0}
	b5 := []byte{0x91, 'h', 'v', 'c', '1', 0, 0, 0}
	b6 := []byte{0x2f, 0xff}
	b7 := []byte{0x91, 'O', 'p', 'u', 's'}
	b8 := []byte{0x17, 1}
	tests := []struct {
		name string
		fn   func()
	}{
		{"ParseVideo frame", func() { _, _ = flv.ParseVideo(frame) }},
		{"CheckNALUs", func() { _ = flv.CheckNALUs(frame[5:], 4) }},
		{"ParseAudio frame", func() { _, _ = flv.ParseAudio(b0) }},
		{"ParseVideo enhanced frame", func() { _, _ = flv.ParseVideo(b1) }},
		{"ParseVideo command", func() { _, _ = flv.ParseVideo(b2) }},
		{"ParseVideo end of sequence", func() { _, _ = flv.ParseVideo(b3) }},
		{"refused video codec id", func() { _, _ = flv.ParseVideo(b4) }},
		{"refused video FourCC", func() { _, _ = flv.ParseVideo(b5) }},
		{"refused sound format", func() { _, _ = flv.ParseAudio(b6) }},
		{"refused audio FourCC", func() { _, _ = flv.ParseAudio(b7) }},
		{"truncated AVC header", func() { _, _ = flv.ParseVideo(b8) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
				t.Errorf("%v allocations per call, want 0", n)
			}
		})
	}
}

func BenchmarkParseVideo(b *testing.B) {
	frame := readTestdata(b, "base320.frame")
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		pkt, err := flv.ParseVideo(frame)
		if err != nil || pkt.Type != flv.PacketFrame {
			b.Fatal(pkt.Type, err)
		}
	}
}

func BenchmarkCheckNALUs(b *testing.B) {
	data := readTestdata(b, "base320.frame")[5:]
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if err := flv.CheckNALUs(data, 4); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseAudio(b *testing.B) {
	body := []byte{0xaf, 1, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := flv.ParseAudio(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseVideoSequenceHeader(b *testing.B) {
	body := readTestdata(b, "high640.video")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := flv.ParseVideo(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseVideoExHeader is the legacy benchmark's frame in an Enhanced
// RTMP 'avc1' CodedFrames header, the form OBS 30 and FFmpeg 6.1+ may send.
func BenchmarkParseVideoExHeader(b *testing.B) {
	frame := readTestdata(b, "base320.frame")
	body := append([]byte{0xa1, 'a', 'v', 'c', '1'}, frame[2:]...)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		pkt, err := flv.ParseVideo(body)
		if err != nil || pkt.Type != flv.PacketFrame {
			b.Fatal(pkt.Type, err)
		}
	}
}

func BenchmarkParseAudioExHeader(b *testing.B) {
	body := []byte{0x91, 'm', 'p', '4', 'a', 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}
	b.ReportAllocs()
	for b.Loop() {
		if pkt, err := flv.ParseAudio(body); err != nil || pkt.Type != flv.PacketFrame {
			b.Fatal(err)
		}
	}
}
