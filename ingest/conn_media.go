package ingest

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

// media handles one audio or video message of the live publish session.
func (c *conn) media(m *rtmp.Message) error {
	w := c.pub.writer
	if w == nil || len(m.Payload) == 0 {
		// Media before publish or after unpublish has no session to go to; empty
		// tag bodies are keep-alives some encoders send.
		return nil
	}
	video := m.Type == rtmp.MsgVideo
	idx := 1
	var pkt flv.Packet
	var err error
	if video {
		idx = 0
		pkt, err = flv.ParseVideo(m.Payload)
	} else {
		pkt, err = flv.ParseAudio(m.Payload)
	}
	if err != nil {
		if errors.Is(err, flv.ErrUnsupportedCodec) {
			if c.pub.unsupported[idx] == 0 {
				c.log.Warn().Err(err).Str("track", kindName(video)).Msg("unsupported codec: track ignored")
			}
			c.pub.unsupported[idx]++
			return nil
		}
		return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("%s message: %w", kindName(video), err)}
	}
	switch pkt.Type {
	case flv.PacketSequenceHeader:
		if pkt.Track == nil {
			return protoErr(KindMedia, "%s sequence header without a track", kindName(video))
		}
		if video {
			c.pub.video = pkt.Track
		} else {
			c.pub.audio = pkt.Track
		}
		if err := w.WriteTrack(pkt.Track); err != nil {
			return fmt.Errorf("ingest: writer: track: %w", err)
		}
	case flv.PacketFrame:
		t := c.pub.audio
		if video {
			t = c.pub.video
		}
		if t == nil {
			c.pub.early++
			return nil
		}
		if t.Codec == remux.CodecH264 {
			if err := flv.CheckNALUs(pkt.Data, t.NALULengthSize); err != nil {
				return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("video frame at %d ms: %w", m.Timestamp, err)}
			}
		}
		c.pub.frame = remux.Frame{Track: t, DTS: c.pub.tl.dts(idx, m.Timestamp), CTS: pkt.CTS, Key: pkt.Key, Data: pkt.Data}
		if err := w.WriteFrame(&c.pub.frame); err != nil {
			return fmt.Errorf("ingest: writer: frame: %w", err)
		}
		c.pub.frames++
		c.framesUncounted++
		c.pub.bytes += int64(len(pkt.Data))
	}
	return nil
}

func kindName(video bool) string {
	if video {
		return "video"
	}
	return "audio"
}
