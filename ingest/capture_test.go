package ingest

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
)

// captureHandshake is C0+C1+C2, before the chunk stream starts.
const captureHandshake = 1 + 2*rtmp.HandshakeSize

// capture is testdata/publish.rtmp cut at message boundaries.
type capture struct {
	data       []byte
	mediaStart int // first byte after the publish command
	mediaEnd   int // first byte after the last audio/video message
	video      int // video messages in [mediaStart, mediaEnd)
	audio      int // audio messages in the same range
	// [framesStart, framesEnd) holds only audio and video frames, every message
	// with a fmt 0 or fmt 1 header (its own length and type), so it can be replayed
	// in a loop once the sequence headers before it were read.
	framesStart, framesEnd int
	bodyFrames             int      // frames in [framesStart, framesEnd)
	amf                    [][]byte // command and data message payloads
	avcSeq                 []byte   // first video message: the AVC sequence header
	avcKey                 []byte   // second video message: the first key frame
	aacSeq                 []byte
	aacFrame               []byte
}

// scanCapture walks the capture's chunk stream to find its message boundaries.
func scanCapture(b []byte) (*capture, error) {
	c := &capture{data: b}
	r := rtmp.NewChunkReader(1<<24, 1<<24, 64)
	off := captureHandshake
	videoMsgs := 0
	seqHeaders := 0
	for off < len(b) {
		n, msg, err := r.Parse(b[off:])
		if err != nil {
			return nil, fmt.Errorf("capture at %d: %w", off, err)
		}
		if n == 0 && msg == nil {
			break
		}
		off += n
		if msg == nil {
			continue
		}
		switch msg.Type {
		case rtmp.MsgSetChunkSize:
			if err := r.SetChunkSize(binary.BigEndian.Uint32(msg.Payload)); err != nil {
				return nil, err
			}
		case rtmp.MsgCommandAMF0, rtmp.MsgDataAMF0:
			c.amf = append(c.amf, append([]byte(nil), msg.Payload...))
			if vals, _ := rtmp.DecodeAMF0(msg.Payload); len(vals) > 0 && vals[0] == "publish" {
				c.mediaStart = off
			}
		case rtmp.MsgVideo, rtmp.MsgAudio:
			if c.mediaStart == 0 {
				continue
			}
			c.mediaEnd = off
			if len(msg.Payload) > 1 {
				switch msg.Payload[1] {
				case 0: // AVC or AAC sequence header
					seqHeaders++
					if seqHeaders == 2 {
						c.framesStart = off
					}
				case 1: // AVC NALU or AAC raw frame
					if c.framesStart > 0 {
						c.framesEnd = off
						c.bodyFrames++
					}
				}
			}
			if msg.Type == rtmp.MsgVideo {
				c.video++
				videoMsgs++
				switch videoMsgs {
				case 1:
					c.avcSeq = append([]byte(nil), msg.Payload...)
				case 2:
					c.avcKey = append([]byte(nil), msg.Payload...)
				}
			} else {
				c.audio++
				switch c.audio {
				case 1:
					c.aacSeq = append([]byte(nil), msg.Payload...)
				case 2:
					c.aacFrame = append([]byte(nil), msg.Payload...)
				}
			}
		}
	}
	if c.mediaStart == 0 || c.video < 2 || c.audio < 2 || c.framesStart == 0 || c.bodyFrames == 0 {
		return nil, fmt.Errorf("capture: no publish with media (media at %d, %d video, %d audio)", c.mediaStart, c.video, c.audio)
	}
	return c, nil
}

func loadCapture(t testing.TB) *capture {
	t.Helper()
	b, err := os.ReadFile("testdata/publish.rtmp")
	if err != nil {
		t.Fatalf("%v (make it with go test -run TestMakeCapture -update-capture)", err)
	}
	c, err := scanCapture(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
