package flv_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/remux"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVideoSequenceHeaders parses the avcC bodies ffmpeg and libx264 wrote (see
// TestFFmpegFiles -update). Sizes are ffprobe's; codec strings are those
// ffmpeg's DASH muxer wrote for the same files.
func TestVideoSequenceHeaders(t *testing.T) {
	tests := []struct {
		file          string
		codec         string
		width, height int
	}{
		{"high640.video", "avc1.64001e", 640, 360},
		{"base320.video", "avc1.42c00d", 320, 240},
		{"crop642.video", "avc1.64001e", 642, 362},  // 4:2:0 cropping, 2-pixel units
		{"inter640.video", "avc1.64001e", 640, 360}, // field coding: map units are MB pairs
		{"h444.video", "avc1.f4000d", 321, 241},     // 4:4:4: 1-pixel crop units
		{"h422.video", "avc1.7a000d", 322, 242},     // 4:2:2: 2-pixel horizontal, 1-pixel vertical
		{"h10.video", "avc1.6e000d", 320, 240},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := readTestdata(t, tc.file)
			pkt, err := flv.ParseVideo(body)
			if err != nil {
				t.Fatal(err)
			}
			if pkt.Type != flv.PacketSequenceHeader || pkt.Track == nil {
				t.Fatalf("packet %v, track %v", pkt.Type, pkt.Track)
			}
			tr := pkt.Track
			if tr.ID != remux.TrackVideo || tr.Codec != remux.CodecH264 || tr.Timescale != 90000 {
				t.Errorf("track id %d codec %v timescale %d", tr.ID, tr.Codec, tr.Timescale)
			}
			if tr.CodecString != tc.codec {
				t.Errorf("codec string %q, want %q", tr.CodecString, tc.codec)
			}
			if tr.Width != tc.width || tr.Height != tc.height {
				t.Errorf("size %dx%d, want %dx%d", tr.Width, tr.Height, tc.width, tc.height)
			}
			if tr.NALULengthSize != 4 {
				t.Errorf("NAL unit length size %d, want 4", tr.NALULengthSize)
			}
			avcC := body[5:]
			if !bytes.Equal(tr.Config, avcC) {
				t.Errorf("Config % x, want % x", tr.Config, avcC)
			}
			if len(tr.SPS) != 1 || len(tr.PPS) != 1 {
				t.Fatalf("%d SPS, %d PPS, want 1 and 1", len(tr.SPS), len(tr.PPS))
			}
			// libx264 writes one SPS right after the 8-byte avcC header, then
			// one PPS.
			spsLen := int(avcC[6])<<8 | int(avcC[7])
			if !bytes.Equal(tr.SPS[0], avcC[8:8+spsLen]) {
				t.Errorf("SPS % x, want % x", tr.SPS[0], avcC[8:8+spsLen])
			}
			if tr.PPS[0][0]&0x1f != 8 {
				t.Errorf("PPS NAL type %d", tr.PPS[0][0]&0x1f)
			}
			// The track must own its bytes: ingest reuses the message buffer.
			for i := range body {
				body[i] = 0xee
			}
			if tr.Config[0] != 1 || tr.SPS[0][0]&0x1f != 7 {
				t.Error("track aliases the tag body")
			}
		})
	}
}

func TestAudioSequenceHeaders(t *testing.T) {
	tests := []struct {
		file           string
		rate, channels int
	}{
		{"high640.audio", 44100, 2},
		{"base320.audio", 48000, 1},
		{"aac51.audio", 48000, 6},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := readTestdata(t, tc.file)
			pkt, err := flv.ParseAudio(body)
			if err != nil {
				t.Fatal(err)
			}
			if pkt.Type != flv.PacketSequenceHeader || pkt.Track == nil {
				t.Fatalf("packet %v, track %v", pkt.Type, pkt.Track)
			}
			tr := pkt.Track
			if tr.ID != remux.TrackAudio || tr.Codec != remux.CodecAAC {
				t.Errorf("track id %d codec %v", tr.ID, tr.Codec)
			}
			if tr.SampleRate != tc.rate || int(tr.Timescale) != tc.rate || tr.Channels != tc.channels {
				t.Errorf("%d Hz (timescale %d), %d channels; want %d Hz, %d channels", tr.SampleRate, tr.Timescale, tr.Channels, tc.rate, tc.channels)
			}
			if tr.AudioObjectType != 2 || tr.CodecString != "mp4a.40.2" {
				t.Errorf("audio object type %d, codec string %q", tr.AudioObjectType, tr.CodecString)
			}
			if !bytes.Equal(tr.Config, body[2:]) {
				t.Errorf("Config % x, want % x", tr.Config, body[2:])
			}
			body[2] = 0
			if tr.Config[0] == 0 {
				t.Error("track aliases the tag body")
			}
		})
	}
}

// TestVideoFrameFixture parses a real inter frame libx264 wrote and walks its NAL
// units: a non-IDR slice (type 1) must be among them.
func TestVideoFrameFixture(t *testing.T) {
	body := readTestdata(t, "base320.frame")
	pkt, err := flv.ParseVideo(body)
	if err != nil {
		t.Fatal(err)
	}
	if pkt.Type != flv.PacketFrame || pkt.Key || pkt.CTS != 0 {
		t.Fatalf("type %v key %v cts %d", pkt.Type, pkt.Key, pkt.CTS)
	}
	if &pkt.Data[0] != &body[5] || len(pkt.Data) != len(body)-5 {
		t.Fatal("Data does not alias the body after the 5-byte header")
	}
	if err := flv.CheckNALUs(pkt.Data, 4); err != nil {
		t.Fatal(err)
	}
	var types []byte
	for d := pkt.Data; len(d) > 4; {
		n := int(d[0])<<24 | int(d[1])<<16 | int(d[2])<<8 | int(d[3])
		types = append(types, d[4]&0x1f)
		d = d[4+n:]
	}
	if !bytes.Contains(types, []byte{1}) {
		t.Errorf("NAL unit types %v: no non-IDR slice", types)
	}
	// The same frame is not a whole sequence of 2-byte-prefixed units.
	if err := flv.CheckNALUs(pkt.Data, 2); !errors.Is(err, flv.ErrMalformed) {
		t.Errorf("CheckNALUs with length size 2: %v", err)
	}
}
