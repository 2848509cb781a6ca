package remux_test

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
)

// FuzzSegmenter checks the Segmenter's invariants on frames built from the input:
// segments are never empty, a segment's media bytes stay within MaxBytes unless it
// holds a single frame, no frame sits more than MaxDuration after its segment's
// start, target cuts are sync points (video keyframes when there is video), and,
// for steady frame rates in DTS order, no segment lasts longer than MaxDuration.
//
// With Grid, every cut that does not re-anchor the grid lies within half the
// nominal duration of its nominal instant.
//
// Input layout: byte 0 flags (bit 0 steady mode, bit 1 video, bit 2 audio, bit 3
// grid), byte 1
// video interval, byte 2 audio interval, byte 3 target (x100 ms), byte 4 extra
// max duration (x100 ms), bytes 5-6 max bytes, then one byte per frame (bit 0
// kind in raw mode, bit 1 key, bits 2-7 size) and, in raw mode, two more bytes of
// signed DTS delta.
func FuzzSegmenter(f *testing.F) {
	f.Add([]byte{0x07, 40, 21, 20, 5, 0x10, 0x00, 0x02, 0x00, 0x00, 0x04, 0xfc, 0x02})
	f.Add([]byte{0x03, 33, 0, 10, 0, 0x00, 0x40, 0x02, 0x00, 0x80, 0x00})
	f.Add([]byte{0x06, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0x7f, 0x03, 0x80, 0x00, 0x01, 0x00, 0x00})
	f.Add([]byte{0x0f, 33, 21, 20, 5, 0x10, 0x00, 0x02, 0x00, 0x00, 0x04, 0xfc, 0x02, 0x02, 0x00, 0x02})
	f.Add([]byte{0x0a, 0, 0, 20, 0, 0, 0, 0x02, 0x07, 0xd0, 0x03, 0x07, 0xd0, 0x02, 0x07, 0xd0, 0x02, 0x0f, 0xa0})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 7 {
			return
		}
		flags := data[0]
		steady := flags&1 != 0
		hasVideo := flags&2 != 0
		hasAudio := flags&4 != 0 || !hasVideo
		vStep := int64(data[1]%100) + 1
		aStep := int64(data[2]%100) + 1
		s := remux.Segmenter{
			Target:      time.Duration(data[3]%50+1) * 100 * time.Millisecond,
			MaxDuration: time.Duration(data[4]%100) * 100 * time.Millisecond,
			MaxBytes:    int(binary.BigEndian.Uint16(data[5:7])),
			Video:       hasVideo,
			Grid:        flags&8 != 0,
		}
		// A max below 1 s is legal but makes the steady-rate bound depend on the
		// interval clamp (intervals over a quarter of the max are ignored).
		maxDur := s.MaxDuration.Milliseconds()
		if maxDur <= 0 {
			maxDur = remux.DefaultSegmentMaxDur.Milliseconds()
		}
		maxBytes := s.MaxBytes
		if maxBytes <= 0 {
			maxBytes = remux.DefaultSegmentMaxBytes
		}
		data = data[7:]

		var (
			vt, at    int64 // steady mode clocks
			rawDTS    int64
			segFrames int
			segBytes  int
			segStart  int64
			pushed    int
			gridStart int64 // the grid as the test follows it
			gridDur   int64
			gridN     int64
		)
		frame := remux.Frame{}
		payload := make([]byte, 64*4)
		for len(data) > 0 && pushed < 4096 {
			b := data[0]
			data = data[1:]
			frame.Key = b&2 != 0
			frame.Data = payload[:int(b>>2)*4]
			if steady {
				video := hasVideo && (!hasAudio || vt <= at)
				if video {
					frame.Track, frame.DTS = videoTrack, vt
					vt += vStep
				} else {
					frame.Track, frame.DTS = audioTrack, at
					at += aStep
				}
			} else {
				if len(data) < 2 {
					return
				}
				rawDTS += int64(int16(binary.BigEndian.Uint16(data)))
				data = data[2:]
				frame.Track, frame.DTS = audioTrack, rawDTS
				if b&1 != 0 {
					frame.Track = videoTrack
				}
			}
			d := s.Push(&frame)
			pushed++
			if pushed == 1 && d.Reason != remux.CutStart {
				t.Fatalf("first frame: reason %v, want start", d.Reason)
			}
			if d.Reason == remux.CutTarget && !d.Independent {
				t.Fatalf("frame %d: target cut not independent", pushed)
			}
			if d.Independent && hasVideo && !(frame.Track == videoTrack && frame.Key) {
				t.Fatalf("frame %d: independent but not a video keyframe", pushed)
			}
			if d.Cuts() && s.Grid {
				switch {
				case pushed == 1 || d.Regrid:
					gridStart, gridDur, gridN = frame.DTS, 0, 1
				case gridDur == 0 && (d.Reason == remux.CutTarget || d.Reason == remux.CutDuration):
					gridDur, gridN = frame.DTS-gridStart, 2
				case gridDur > 0:
					if off := frame.DTS - (gridStart + gridN*gridDur); off > gridDur/2 || -off > gridDur/2 {
						t.Fatalf("frame %d: cut %d ms off its nominal instant, grid duration %d", pushed, off, gridDur)
					}
					gridN++
				}
				if s.GridDuration() != gridDur {
					t.Fatalf("frame %d: grid duration %d, want %d", pushed, s.GridDuration(), gridDur)
				}
			}
			if d.Cuts() {
				if pushed > 1 {
					if segFrames == 0 {
						t.Fatalf("frame %d: cut closes an empty segment", pushed)
					}
					dur := frame.DTS - segStart
					if steady && pushed > 1 && dur > maxDur && vStep <= maxDur/4 && aStep <= maxDur/4 {
						t.Fatalf("frame %d: segment from %d lasted %d ms > max %d (cut %v)", pushed, segStart, dur, maxDur, d.Reason)
					}
				}
				segFrames, segBytes, segStart = 0, 0, frame.DTS
			} else if frame.DTS-segStart > maxDur {
				t.Fatalf("frame %d: dts %d is %d ms after segment start, max %d", pushed, frame.DTS, frame.DTS-segStart, maxDur)
			}
			segFrames++
			segBytes += len(frame.Data)
			if segFrames > 1 && segBytes > maxBytes {
				t.Fatalf("frame %d: segment holds %d bytes in %d frames, max %d", pushed, segBytes, segFrames, maxBytes)
			}
			if s.Frames() != segFrames || s.Bytes() != segBytes || s.Start() != segStart {
				t.Fatalf("frame %d: segmenter says %d frames %d bytes start %d, want %d %d %d",
					pushed, s.Frames(), s.Bytes(), s.Start(), segFrames, segBytes, segStart)
			}
		}
	})
}
