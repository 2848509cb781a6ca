package testkit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtmpgate/rtmpgate/remux/codec/ac3"
)

// AudioES is an audio elementary stream cut into frames, with what a
// publisher's sequence start would carry.
type AudioES struct {
	FourCC          string // the Enhanced RTMP FourCC
	Config          []byte // the sequence start: FLAC's STREAMINFO; nil for AC-3 and E-AC-3
	Frames          [][]byte
	SamplesPerFrame int
	Rate            int
}

// EncodeAudio encodes seconds of a 48 kHz stereo sine with Debian's ffmpeg
// into codec ("ac3", "eac3" or "flac") and cuts the result into frames.
func EncodeAudio(tb testing.TB, codec string, seconds int) AudioES {
	tb.Helper()
	NeedTools(tb, "ffmpeg")
	out := filepath.Join(tb.TempDir(), "audio."+codec)
	args := []string{"-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=440:sample_rate=48000:duration=%d", seconds),
		"-ac", "2", "-c:a", codec}
	switch codec {
	case "flac":
		args = append(args, "-frame_size", "1152", "-f", "flac")
	default:
		args = append(args, "-b:a", "192k", "-f", codec)
	}
	Run(tb, "ffmpeg", append(args, out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	es := AudioES{Rate: 48000}
	switch codec {
	case "flac":
		es.FourCC, es.SamplesPerFrame = "fLaC", 1152
		es.Config, es.Frames, err = splitFLAC(b)
	default:
		es.FourCC = map[string]string{"ac3": "ac-3", "eac3": "ec-3"}[codec]
		es.Frames, es.SamplesPerFrame, err = splitAC3(b)
	}
	if err != nil {
		tb.Fatalf("%s: %v", codec, err)
	}
	return es
}

func splitAC3(b []byte) (frames [][]byte, samples int, err error) {
	for len(b) > 0 {
		f, err := ac3.ParseFrame(b)
		if err != nil {
			return nil, 0, err
		}
		if f.Size > len(b) {
			return nil, 0, fmt.Errorf("frame of %d bytes, %d left", f.Size, len(b))
		}
		frames, samples, b = append(frames, b[:f.Size]), f.Samples, b[f.Size:]
	}
	return frames, samples, nil
}

// splitFLAC cuts a native FLAC file into its STREAMINFO block (with its
// metadata block header) and frames. A frame starts with the fixed-blocksize
// sync code 0xFFF8 and a header whose CRC-8 checks; the encoder's fixed
// frame size makes the header length known.
func splitFLAC(b []byte) (streamInfo []byte, frames [][]byte, err error) {
	if len(b) < 42 || string(b[:4]) != "fLaC" {
		return nil, nil, fmt.Errorf("not a FLAC file")
	}
	streamInfo = b[4:42]
	pos := 4
	for last := false; !last; {
		if pos+4 > len(b) {
			return nil, nil, fmt.Errorf("metadata truncated")
		}
		last = b[pos]&0x80 != 0
		pos += 4 + (int(b[pos+1])<<16 | int(b[pos+2])<<8 | int(b[pos+3]))
	}
	var starts []int
	for i := pos; i+6 < len(b); i++ {
		if b[i] == 0xff && b[i+1] == 0xf8 && flacHeaderOK(b[i:]) {
			starts = append(starts, i)
		}
	}
	if len(starts) == 0 || starts[0] != pos {
		return nil, nil, fmt.Errorf("no frame after the metadata")
	}
	for i, s := range starts {
		end := len(b)
		if i+1 < len(starts) {
			end = starts[i+1]
		}
		frames = append(frames, b[s:end])
	}
	return streamInfo, frames, nil
}

// flacHeaderOK checks a frame header's CRC-8 (polynomial 0x07): the header is
// 4 bytes, the UTF-8 coded frame number, the optional block size and sample
// rate bytes, then the CRC.
func flacHeaderOK(b []byte) bool {
	n := 4
	switch c := b[4]; {
	case c < 0x80:
		n++
	case c >= 0xc0 && c < 0xe0:
		n += 2
	case c >= 0xe0 && c < 0xf0:
		n += 3
	case c >= 0xf0 && c < 0xf8:
		n += 4
	default:
		return false
	}
	switch bs := b[2] >> 4; bs {
	case 6:
		n++
	case 7:
		n += 2
	}
	switch sr := b[2] & 15; sr {
	case 12:
		n++
	case 13, 14:
		n += 2
	case 15:
		return false
	}
	if n >= len(b) {
		return false
	}
	var crc byte
	for _, c := range b[:n] {
		crc ^= c
		for range 8 {
			if crc&0x80 != 0 {
				crc = crc<<1 ^ 0x07
			} else {
				crc <<= 1
			}
		}
	}
	return crc == b[n]
}
