// Package fixturemedia turns an Enhanced RTMP fixture (internal/fixture) into
// what a publish session hands the muxers: its tracks and frames, through the
// real ingest/flv parsers. It is imported by _test.go files only; it lives
// apart from internal/fixture because ingest/flv's own tests import that.
package fixturemedia

import (
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/codec/vp9"
)

// Clip is one fixture file read into tracks and frames. Frames are in file
// (decode) order, their Data copied, their Key judged as ingest does.
type Clip struct {
	Video, Audio *remux.Track
	Frames       []remux.Frame
}

// VideoFrames and AudioFrames are the frames of one kind, in order.
func (c *Clip) VideoFrames() []remux.Frame { return c.kind(remux.KindVideo) }

func (c *Clip) AudioFrames() []remux.Frame { return c.kind(remux.KindAudio) }

func (c *Clip) kind(k remux.Kind) []remux.Frame {
	var out []remux.Frame
	for _, f := range c.Frames {
		if f.Track.Kind() == k {
			out = append(out, f)
		}
	}
	return out
}

// Read splits every audio and video tag of the single-track fixture name with
// flv.SplitVideo / flv.SplitAudio, builds tracks with flv.NewTrack (a VP9
// track takes its size from its first key frame, as the ingest session does)
// and judges key frames with flv.IsKey (H.264 from the FLV frame type).
// Anything the parsers refuse fails the test.
func Read(tb testing.TB, name string) *Clip {
	tb.Helper()
	var (
		c   Clip
		buf [flv.MaxTracks]flv.TrackPacket
	)
	for _, tag := range fixture.Tags(tb, name) {
		var (
			m   flv.Message
			err error
		)
		switch tag.Type {
		case 9:
			m, err = flv.SplitVideo(buf[:0], tag.Body)
		case 8:
			m, err = flv.SplitAudio(buf[:0], tag.Body)
		default:
			continue
		}
		if err != nil {
			tb.Fatalf("%s: tag at %d ms: %v", name, tag.TS, err)
		}
		for _, p := range m.Packets {
			switch p.Type {
			case flv.PacketSequenceHeader:
				t, err := flv.NewTrack(p.FourCC, p.Data)
				if err != nil {
					tb.Fatalf("%s: sequence start at %d ms: %v", name, tag.TS, err)
				}
				if t.Kind() == remux.KindVideo {
					c.Video = t
				} else {
					c.Audio = t
				}
			case flv.PacketFrame:
				t := c.Audio
				if tag.Type == 9 {
					t = c.Video
				}
				if t == nil {
					tb.Fatalf("%s: frame at %d ms before its sequence start", name, tag.TS)
				}
				key := p.Key
				if t.Codec != remux.CodecH264 {
					if key, err = flv.IsKey(t, p.Data); err != nil {
						tb.Fatalf("%s: frame at %d ms: %v", name, tag.TS, err)
					}
				}
				if t.Codec == remux.CodecVP9 && key && t.Width == 0 {
					f, err := vp9.ParseFrame(p.Data)
					if err != nil {
						tb.Fatalf("%s: VP9 key frame at %d ms: %v", name, tag.TS, err)
					}
					t.Width, t.Height = f.Width, f.Height
				}
				c.Frames = append(c.Frames, remux.Frame{Track: t, DTS: int64(tag.TS), CTS: p.CTS, Key: key,
					Data: append([]byte(nil), p.Data...)})
			}
		}
	}
	if c.Video == nil || c.Audio == nil {
		tb.Fatalf("%s: want a video and an audio track, got %v and %v", name, c.Video, c.Audio)
	}
	return &c
}
