package cmaf_test

import (
	"encoding/binary"
	"fmt"
	"os"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
	codec "github.com/yapingcat/gomedia/go-codec"
)

// flvClip is what the tests need from an FLV file: the two tracks and their frames
// in file order. The real FLV parsers live in ingest/flv; this reader only handles
// the clips ffmpeg writes in these tests.
type flvClip struct {
	video, audio   *remux.Track
	vFrames, aFrms []remux.Frame
}

func readFLV(path string) (*flvClip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	tags, err := testkit.FLVTags(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c := &flvClip{}
	for _, tag := range tags {
		ts, body := int64(tag.TS), tag.Body
		switch tag.Type {
		case 9:
			err = c.videoTag(ts, body)
		case 8:
			err = c.audioTag(ts, body)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: DTS %d: %w", path, ts, err)
		}
	}
	return c, nil
}

func (c *flvClip) videoTag(ts int64, body []byte) error {
	if len(body) < 5 || body[0]&0x0f != 7 {
		return fmt.Errorf("not an AVC video tag")
	}
	data := body[5:]
	switch body[1] {
	case 0:
		// avcC: profile..level, lengthSizeMinusOne, then the first SPS.
		if len(data) < 8 {
			return fmt.Errorf("short avcC")
		}
		spsLen := int(binary.BigEndian.Uint16(data[6:]))
		if len(data) < 8+spsLen {
			return fmt.Errorf("short SPS in avcC")
		}
		sps := append([]byte{0, 0, 0, 1}, data[8:8+spsLen]...)
		w, h := codec.GetH264Resolution(sps)
		c.video = &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000,
			Config: append([]byte(nil), data...), Width: int(w), Height: int(h),
			NALULengthSize: int(data[4]&3) + 1}
	case 1:
		cts := int32(uint32(body[2])<<16|uint32(body[3])<<8|uint32(body[4])) << 8 >> 8
		c.vFrames = append(c.vFrames, remux.Frame{Track: c.video, DTS: ts, CTS: cts,
			Key: body[0]>>4 == 1, Data: data})
	}
	return nil
}

var aacRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

func (c *flvClip) audioTag(ts int64, body []byte) error {
	if len(body) < 2 || body[0]>>4 != 10 {
		return fmt.Errorf("not an AAC audio tag")
	}
	data := body[2:]
	switch body[1] {
	case 0:
		// AudioSpecificConfig: 5 bits object type, 4 bits rate index, 4 bits channels.
		if len(data) < 2 {
			return fmt.Errorf("short AudioSpecificConfig")
		}
		idx := int(data[0]&7)<<1 | int(data[1]>>7)
		if idx >= len(aacRates) {
			return fmt.Errorf("sample rate index %d", idx)
		}
		rate := aacRates[idx]
		c.audio = &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: uint32(rate),
			Config: append([]byte(nil), data...), AudioObjectType: int(data[0] >> 3),
			SampleRate: rate, Channels: int(data[1] >> 3 & 0x0f)}
	case 1:
		c.aFrms = append(c.aFrms, remux.Frame{Track: c.audio, DTS: ts, Key: true, Data: data})
	}
	return nil
}
