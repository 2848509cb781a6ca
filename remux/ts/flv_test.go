package ts_test

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
)

// readFLV is a minimal FLV reader for test fixtures made by ffmpeg: it returns the
// H.264 and AAC tracks (from the sequence headers) and every frame in file order.
// The production parser lives in ingest/flv; this one only has to read our own
// fixtures, and it copies frame data so frames outlive the file buffer.
func readFLV(path string) (video, audio *remux.Track, frames []remux.Frame, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, nil, err
	}
	tags, err := testkit.FLVTags(b)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, tag := range tags {
		ts, body := int64(tag.TS), tag.Body
		switch tag.Type {
		case 9:
			if len(body) < 5 || body[0]&0x0F != 7 {
				continue
			}
			cts := int32(body[2])<<16 | int32(body[3])<<8 | int32(body[4])
			cts = cts << 8 >> 8 // sign-extend 24 bits
			switch body[1] {
			case 0:
				video, err = parseAVCC(body[5:])
				if err != nil {
					return nil, nil, nil, err
				}
			case 1:
				if video == nil {
					return nil, nil, nil, fmt.Errorf("video frame before sequence header")
				}
				frames = append(frames, remux.Frame{Track: video, DTS: ts, CTS: cts, Key: body[0]>>4 == 1, Data: append([]byte(nil), body[5:]...)})
			}
		case 8:
			if len(body) < 2 || body[0]>>4 != 10 {
				continue
			}
			switch body[1] {
			case 0:
				audio, err = parseASCTrack(body[2:])
				if err != nil {
					return nil, nil, nil, err
				}
			case 1:
				if audio == nil {
					return nil, nil, nil, fmt.Errorf("audio frame before sequence header")
				}
				frames = append(frames, remux.Frame{Track: audio, DTS: ts, Key: true, Data: append([]byte(nil), body[2:]...)})
			}
		}
	}
	return video, audio, frames, nil
}

func parseAVCC(c []byte) (*remux.Track, error) {
	if len(c) < 7 || c[0] != 1 {
		return nil, fmt.Errorf("avcC: bad header")
	}
	t := &remux.Track{
		ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000,
		Config:         append([]byte(nil), c...),
		CodecString:    fmt.Sprintf("avc1.%02x%02x%02x", c[1], c[2], c[3]),
		NALULengthSize: int(c[4]&3) + 1,
	}
	p := c[5:]
	readSets := func(n int) ([][]byte, error) {
		var out [][]byte
		for range n {
			if len(p) < 2 {
				return nil, fmt.Errorf("avcC: truncated")
			}
			l := int(binary.BigEndian.Uint16(p))
			if len(p) < 2+l {
				return nil, fmt.Errorf("avcC: truncated parameter set")
			}
			out = append(out, append([]byte(nil), p[2:2+l]...))
			p = p[2+l:]
		}
		return out, nil
	}
	var err error
	n := int(p[0] & 0x1F)
	p = p[1:]
	if t.SPS, err = readSets(n); err != nil {
		return nil, err
	}
	if len(p) < 1 {
		return nil, fmt.Errorf("avcC: no PPS count")
	}
	n = int(p[0])
	p = p[1:]
	if t.PPS, err = readSets(n); err != nil {
		return nil, err
	}
	return t, nil
}

func parseASCTrack(c []byte) (*remux.Track, error) {
	if len(c) < 2 {
		return nil, fmt.Errorf("ASC: too short")
	}
	rates := []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}
	aot := int(c[0] >> 3)
	sfi := int(c[0]&7)<<1 | int(c[1]>>7)
	if sfi >= len(rates) {
		return nil, fmt.Errorf("ASC: sampling index %d", sfi)
	}
	return &remux.Track{
		ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: uint32(rates[sfi]),
		Config:          append([]byte(nil), c...),
		CodecString:     fmt.Sprintf("mp4a.40.%d", aot),
		AudioObjectType: aot,
		SampleRate:      rates[sfi],
		Channels:        int(c[1] >> 3 & 0x0F),
	}, nil
}
