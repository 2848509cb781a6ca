package flac_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/rtmpgate/rtmpgate/remux/codec/flac"
)

// streamInfo is the STREAMINFO of Debian ffmpeg 5.1's flac encoder for a
// stereo 48 kHz, 16-bit second of sine with -frame_size 1152.
var streamInfo, _ = hex.DecodeString("0480048000010f00019d0bb802f00000bb80a316b305f13b13fe767b3d0d068f95bc")

func TestParseStreamInfoForms(t *testing.T) {
	header := []byte{0x00, 0, 0, 34}
	tags := []byte{0x84, 0, 0, 4, 0, 0, 0, 0}
	for name, b := range map[string][]byte{
		"raw":         streamInfo,
		"block":       append(header, streamInfo...),
		"marker":      append(append([]byte("fLaC"), header...), streamInfo...),
		"more blocks": append(append(append([]byte("fLaC"), header...), streamInfo...), tags...),
	} {
		s, err := flac.ParseStreamInfo(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.SampleRate != 48000 || s.Channels != 2 || s.BitsPerSample != 16 || s.MinBlockSize != 1152 || s.MaxBlockSize != 1152 {
			t.Fatalf("%s: %+v", name, s)
		}
		want := append([]byte{0x80, 0, 0, 34}, streamInfo...)
		if got := s.AppendDfLa(nil); !bytes.Equal(got, want) {
			t.Fatalf("%s: dfLa %x", name, got)
		}
	}
}

func TestParseStreamInfoErrors(t *testing.T) {
	zeroRate := append([]byte(nil), streamInfo...)
	zeroRate[10], zeroRate[11], zeroRate[12] = 0, 0, zeroRate[12]&0x0f
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      streamInfo[:20],
		"not first":  append([]byte{0x04, 0, 0, 34}, streamInfo...),
		"wrong size": append([]byte{0x00, 0, 0, 33}, streamInfo...),
		"rate 0":     zeroRate,
		"block 0":    append(make([]byte, 4), streamInfo[4:]...),
	} {
		if _, err := flac.ParseStreamInfo(b); !errors.Is(err, flac.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParseStreamInfo(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := flac.ParseStreamInfo(b)
		if err != nil {
			if !errors.Is(err, flac.ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if s.SampleRate <= 0 || s.Channels < 1 || s.Channels > 8 || len(s.AppendDfLa(nil)) != 38 {
			t.Fatalf("%+v", s)
		}
	})
}
