package ingest

import (
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux"
)

// exVideo is an Enhanced RTMP video body: frame type, packet type, FourCC, data.
func exVideo(frameType, packetType byte, fourCC string, data ...[]byte) []byte {
	b := append([]byte{0x80 | frameType<<4 | packetType}, fourCC...)
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// exAudio is an Enhanced RTMP audio body: sound format 9, packet type, FourCC, data.
func exAudio(packetType byte, fourCC string, data ...[]byte) []byte {
	b := append([]byte{0x90 | packetType}, fourCC...)
	for _, d := range data {
		b = append(b, d...)
	}
	return b
}

// fixtureParts are configuration records and frames cut from the fixtures.
type fixtureParts struct {
	hvcC, av1C, vpcC, opusHead []byte
	hevcFrames                 []fixture.Packet // with the 3 CTS bytes in front
	av1Frames, vp9Frames       []fixture.Packet
	opusFrames                 []fixture.Packet
}

func loadParts(t *testing.T) fixtureParts {
	t.Helper()
	return fixtureParts{
		hvcC:       fixture.ExBodies(t, "hevc-aac.flv", 9, "hvc1", 0)[0].Data,
		av1C:       fixture.ExBodies(t, "av1-opus.flv", 9, "av01", 0)[0].Data,
		vpcC:       fixture.ExBodies(t, "vp9-opus.flv", 9, "vp09", 0)[0].Data,
		opusHead:   fixture.ExBodies(t, "av1-opus.flv", 8, "Opus", 0)[0].Data,
		hevcFrames: fixture.ExBodies(t, "hevc-aac.flv", 9, "hvc1", 1),
		av1Frames:  fixture.ExBodies(t, "av1-opus.flv", 9, "av01", 1),
		vp9Frames:  fixture.ExBodies(t, "vp9-opus.flv", 9, "vp09", 1),
		opusFrames: fixture.ExBodies(t, "av1-opus.flv", 8, "Opus", 1),
	}
}

type rawMsg struct {
	typ     uint8
	payload []byte
}

func video(b []byte) rawMsg { return rawMsg{rtmp.MsgVideo, b} }
func audio(b []byte) rawMsg { return rawMsg{rtmp.MsgAudio, b} }

// TestEnhancedBadInput sends crafted Enhanced RTMP messages after a good
// publish: each must end the connection with a media ProtocolError, the
// Writer closed once, and the server must go on serving.
func TestEnhancedBadInput(t *testing.T) {
	fp := loadParts(t)
	h := newRecHandler()
	addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})

	hvcC255 := append([]byte(nil), fp.hvcC[:22]...)
	hvcC255 = append(hvcC255, 255)
	opus255 := append([]byte("OpusHead"), 1, 255, 0x38, 1, 0x80, 0xbb, 0, 0, 0, 0, 255)
	// An OBU header (OBU_FRAME, has_size_field) and a leb128 of nine bytes.
	av1LongLEB := []byte{0x32, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01, 0}
	many := func(n int, m rawMsg) []rawMsg {
		out := make([]rawMsg, n)
		for i := range out {
			out[i] = m
		}
		return out
	}
	var changing []rawMsg
	for i := 0; i <= maxConfigChanges+1; i++ {
		rec := append([]byte(nil), fp.hvcC...)
		rec[12] = byte(60 + i) // general_level_idc: a different record each time
		changing = append(changing, video(exVideo(1, 0, "hvc1", rec)), video(exVideo(1, 1, "hvc1", fp.hevcFrames[0].Data)))
	}

	for _, tc := range []struct {
		name string
		msgs []rawMsg
	}{
		{"FourCC change without a sequence start", []rawMsg{
			video(exVideo(1, 0, "hvc1", fp.hvcC)), video(exVideo(1, 1, "hvc1", fp.hevcFrames[0].Data)),
			video(exVideo(1, 3, "av01", fp.av1Frames[0].Data))}},
		{"audio FourCC change without a sequence start", []rawMsg{
			audio(exAudio(0, "Opus", fp.opusHead)), audio(exAudio(1, "mp4a", []byte{0x21, 0x10}))}},
		{"coded frames and never a sequence start", many(maxEarlyFrames+1, video(exVideo(1, 3, "av01", fp.av1Frames[0].Data)))},
		{"ModEx size past the message", []rawMsg{video([]byte{0x97, 10, 1, 2})}},
		{"16-bit ModEx size 65536", []rawMsg{video(append([]byte{0x97, 0xff, 0xff, 0xff}, make([]byte, 100)...))}},
		{"AV1 OBU size leb128 over 8 bytes", []rawMsg{
			video(exVideo(1, 0, "av01", fp.av1C)), video(exVideo(1, 3, "av01", fp.av1Frames[0].Data)),
			video(exVideo(2, 3, "av01", av1LongLEB))}},
		{"hvcC with 255 arrays", []rawMsg{video(exVideo(1, 0, "hvc1", hvcC255))}},
		{"OpusHead with 255 channels and no mapping table", []rawMsg{audio(exAudio(0, "Opus", opus255))}},
		{"HEVC NAL unit length past the frame", []rawMsg{
			video(exVideo(1, 0, "hvc1", fp.hvcC)), video(exVideo(1, 1, "hvc1", []byte{0, 0, 0}, []byte{0, 0, 0, 9, 0x26, 1}))}},
		{"a differing sequence start with every frame", changing},
		{"video FourCC in an audio message", []rawMsg{audio(exAudio(0, "hvc1", fp.hvcC))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialClient(t, addr)
			c.publish("live", "bad")
			w := h.next(t)
			for i, m := range tc.msgs {
				if err := c.send(m.typ, 1, uint32(i*40), m.payload); err != nil {
					break // the server may close before the last message
				}
			}
			c.expectClosed(5 * time.Second)
			w.wait(t)
			w.mu.Lock()
			defer w.mu.Unlock()
			var pe *ProtocolError
			if !errors.As(w.cause, &pe) || pe.Kind != KindMedia {
				t.Fatalf("Close cause %v, want a media ProtocolError", w.cause)
			}
			if w.closes != 1 {
				t.Fatalf("Close called %d times", w.closes)
			}
			t.Logf("closed: %v", w.cause)
		})
	}
	t.Run("good client afterwards", func(t *testing.T) {
		c := dialClient(t, addr)
		c.publish("live", "after")
		h.next(t)
	})
}

// TestEnhancedSession covers what a session accepts and drops: sequence
// starts re-sent unchanged, frames before the first sequence start, a codec
// the outputs cannot carry (refused once, counted, the other track unharmed),
// the ExHeader forms of H.264 and AAC, ModEx TimestampOffsetNano, the bitstream
// winning over the FLV frame type, and VP9 held until its first key frame.
func TestEnhancedSession(t *testing.T) {
	fp := loadParts(t)
	cp := loadCapture(t)
	var logs logBuffer
	h := newRecHandler()
	s := &Server{Handler: h, Logger: zerolog.New(&logs)}
	addr := startServer(t, s)
	run := func(t *testing.T, msgs []rawMsg) *recWriter {
		t.Helper()
		c := dialClient(t, addr)
		c.publish("live", "ok")
		w := h.next(t)
		for i, m := range msgs {
			must(t, c.send(m.typ, 1, uint32(i*40), m.payload))
		}
		must(t, c.command(1, "FCUnpublish", 5, nil, "ok"))
		must(t, c.command(1, "deleteStream", 6, nil, 1.0))
		w.wait(t)
		if w.cause != nil {
			t.Fatalf("Close cause %v", w.cause)
		}
		return w
	}

	t.Run("same sequence start every frame", func(t *testing.T) {
		var msgs []rawMsg
		for _, f := range fp.hevcFrames[:30] {
			msgs = append(msgs, video(exVideo(1, 0, "hvc1", fp.hvcC)), video(exVideo(1, 1, "hvc1", f.Data)))
		}
		w := run(t, msgs)
		if n, keys := w.count(remux.TrackVideo); len(w.tracks) != 1 || n != 30 || keys != 1 {
			t.Fatalf("%d tracks, %d frames, %d keys; want 1, 30, 1", len(w.tracks), n, keys)
		}
	})
	t.Run("frames before the sequence start dropped", func(t *testing.T) {
		w := run(t, []rawMsg{
			video(exVideo(1, 3, "av01", fp.av1Frames[0].Data)), video(exVideo(2, 3, "av01", fp.av1Frames[1].Data)),
			video(exVideo(1, 0, "av01", fp.av1C)), video(exVideo(1, 3, "av01", fp.av1Frames[0].Data)),
		})
		if n, keys := w.count(remux.TrackVideo); n != 1 || keys != 1 {
			t.Fatalf("%d frames, %d keys", n, keys)
		}
	})
	t.Run("unsupported codec refused, other track unharmed", func(t *testing.T) {
		before := s.Stats().UnsupportedCodecs["vp08"]
		vp8 := []byte{1, 0, 0, 0, 0, 0x10, 1, 1, 1, 0, 0}
		w := run(t, []rawMsg{
			video(exVideo(1, 0, "vp08", vp8)), video(exVideo(1, 1, "vp08", []byte{0x10, 2, 0})), video(exVideo(2, 1, "vp08", []byte{0x11, 2, 0})),
			audio(exAudio(0, "Opus", fp.opusHead)), audio(exAudio(1, "Opus", fp.opusFrames[0].Data)),
		})
		if n, _ := w.count(remux.TrackAudio); n != 1 || len(w.tracks) != 1 || w.tracks[0].Codec != remux.CodecOpus {
			t.Fatalf("%d audio frames, tracks %v", n, w.tracks)
		}
		if n, _ := w.count(remux.TrackVideo); n != 0 {
			t.Fatalf("%d VP8 frames passed", n)
		}
		if got := s.Stats().UnsupportedCodecs["vp08"]; got != before+1 {
			t.Fatalf("vp08 refusals %d, want %d", got, before+1)
		}
		if n := logs.count(`"codec":"vp08"`); n != 1 {
			t.Fatalf("%d log lines name the refused vp08 track, want 1:\n%s", n, logs.String())
		}
	})
	t.Run("H.264 and AAC in ExHeader form", func(t *testing.T) {
		// The capture's legacy bodies: AVC header 5 bytes (type, packet type,
		// CTS), AAC 2 bytes. ExHeader CodedFrames of avc1 keep the CTS.
		w := run(t, []rawMsg{
			video(exVideo(1, 0, "avc1", cp.avcSeq[5:])), video(exVideo(1, 1, "avc1", cp.avcKey[2:])),
			audio(exAudio(0, "mp4a", cp.aacSeq[2:])), audio(exAudio(1, "mp4a", cp.aacFrame[2:])),
		})
		if nv, kv := w.count(remux.TrackVideo); nv != 1 || kv != 1 {
			t.Fatalf("%d video frames, %d keys", nv, kv)
		}
		if na, _ := w.count(remux.TrackAudio); na != 1 || len(w.tracks) != 2 ||
			w.tracks[0].Codec != remux.CodecH264 || w.tracks[1].Codec != remux.CodecAAC {
			t.Fatalf("%d audio frames, tracks %v", na, w.tracks)
		}
	})
	t.Run("TimestampOffsetNano rounds to the nearest ms", func(t *testing.T) {
		modEx := func(nano uint32, pt byte, data []byte) []byte {
			// ModEx (packet type 7), size 3-1, UI24 nanoseconds, then
			// TimestampOffsetNano (0) and the real packet type.
			b := []byte{0x90 | 7, 2, byte(nano >> 16), byte(nano >> 8), byte(nano), pt}
			b = append(b, "Opus"...)
			return append(b, data...)
		}
		w := run(t, []rawMsg{audio(exAudio(0, "Opus", fp.opusHead)),
			audio(modEx(499_999, 1, fp.opusFrames[0].Data)), audio(modEx(500_000, 1, fp.opusFrames[1].Data))})
		// Messages go at 40 ms steps: frame 1 at 40 ms + 0.499999, frame 2 at 80 ms + 0.5.
		if len(w.frames) != 2 || w.frames[0].DTS != 40 || w.frames[1].DTS != 81 {
			t.Fatalf("frames %+v, want DTS 40 and 81", w.frames)
		}
	})
	t.Run("bitstream key flag wins", func(t *testing.T) {
		// The fixture's first HEVC frame is an IRAP, the second is not; the FLV
		// frame types say the opposite.
		w := run(t, []rawMsg{video(exVideo(1, 0, "hvc1", fp.hvcC)),
			video(exVideo(2, 1, "hvc1", fp.hevcFrames[0].Data)), video(exVideo(1, 1, "hvc1", fp.hevcFrames[1].Data))})
		if len(w.frames) != 2 || !w.frames[0].Key || w.frames[1].Key {
			t.Fatalf("frames %+v", w.frames)
		}
	})
	t.Run("OpusTags as a sequence start ignored", func(t *testing.T) {
		tags := append([]byte("OpusTags"), 0, 0, 0, 0, 0, 0, 0, 0)
		w := run(t, []rawMsg{audio(exAudio(0, "Opus", fp.opusHead)), audio(exAudio(0, "Opus", tags)),
			audio(exAudio(1, "Opus", fp.opusFrames[0].Data))})
		if n, _ := w.count(remux.TrackAudio); len(w.tracks) != 1 || n != 1 {
			t.Fatalf("%d tracks, %d frames", len(w.tracks), n)
		}
	})
	t.Run("AV1 by MPEG-2 TS descriptor only refused", func(t *testing.T) {
		before := s.Stats().UnsupportedCodecs["av01-mpeg2ts"]
		w := run(t, []rawMsg{video(exVideo(1, 5, "av01", []byte{0x80, 4, 'A', 'V', '0', '1'})),
			video(exVideo(1, 3, "av01", fp.av1Frames[0].Data)),
			audio(exAudio(0, "Opus", fp.opusHead)), audio(exAudio(1, "Opus", fp.opusFrames[0].Data))})
		if n, _ := w.count(remux.TrackVideo); n != 0 || len(w.tracks) != 1 {
			t.Fatalf("%d video frames, tracks %v", n, w.tracks)
		}
		if got := s.Stats().UnsupportedCodecs["av01-mpeg2ts"]; got != before+1 {
			t.Fatalf("refusals %d", got)
		}
	})
	t.Run("VP9 announced at its first key frame", func(t *testing.T) {
		w := run(t, []rawMsg{video(exVideo(1, 0, "vp09", fp.vpcC)),
			video(exVideo(2, 3, "vp09", fp.vp9Frames[1].Data)), // an inter frame first: dropped
			video(exVideo(1, 3, "vp09", fp.vp9Frames[0].Data)), video(exVideo(2, 3, "vp09", fp.vp9Frames[1].Data))})
		if len(w.tracks) != 1 || w.tracks[0].Width != 640 || w.tracks[0].Height != 360 {
			t.Fatalf("tracks %v", w.tracks)
		}
		if n, keys := w.count(remux.TrackVideo); n != 2 || keys != 1 {
			t.Fatalf("%d frames, %d keys", n, keys)
		}
	})
}

// TestNonStandardHEVC publishes the hevc-aac fixture's HEVC in the two legacy
// forms found in the wild: codec id 12, and an hvcC under codec id 7 (OBS
// before 29.1). Each is served as HEVC, with one log line naming it.
func TestNonStandardHEVC(t *testing.T) {
	fp := loadParts(t)
	for _, tc := range []struct {
		name    string
		codecID byte
		log     string
	}{
		{"codec id 12", 12, "HEVC under legacy codec id 12"},
		{"hvcC under codec id 7", 7, "HEVC record under legacy codec id 7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs logBuffer
			h := newRecHandler()
			addr := startServer(t, &Server{Handler: h, Logger: zerolog.New(&logs)})
			c := dialClient(t, addr)
			c.publish("live", "hevc")
			w := h.next(t)
			must(t, c.send(rtmp.MsgVideo, 1, 0, append([]byte{0x10 | tc.codecID, 0, 0, 0, 0}, fp.hvcC...)))
			for i, f := range hevcAllFrames(t) {
				ft := byte(0x20)
				if f.Key {
					ft = 0x10
				}
				// Legacy AVC layout: frame type and codec id, packet type 1, then
				// the SI24 composition time and the NAL units (f.Data holds both).
				must(t, c.send(rtmp.MsgVideo, 1, uint32(i*40), append([]byte{ft | tc.codecID, 1}, f.Data...)))
			}
			must(t, c.command(1, "FCUnpublish", 5, nil, "hevc"))
			must(t, c.command(1, "deleteStream", 6, nil, 1.0))
			w.wait(t)
			if w.cause != nil {
				t.Fatalf("Close cause %v", w.cause)
			}
			if len(w.tracks) != 1 || w.tracks[0].Codec != remux.CodecHEVC {
				t.Fatalf("tracks %v", w.tracks)
			}
			if n, keys := w.count(remux.TrackVideo); n != 150 || keys != 3 {
				t.Fatalf("%d frames, %d keys", n, keys)
			}
			var cts bool
			for _, f := range w.frames {
				cts = cts || f.CTS != 0
			}
			if !cts {
				t.Fatal("no frame kept a composition time (the fixture has B-frames)")
			}
			if n := logs.count(tc.log); n != 1 {
				t.Fatalf("%d log lines name %q, want 1:\n%s", n, tc.log, logs.String())
			}
		})
	}
}

// hevcAllFrames are the hevc-aac fixture's HEVC frames in legacy layout
// order: the SI24 composition time (0 for CodedFramesX) then the NAL units.
func hevcAllFrames(t *testing.T) []fixture.Packet {
	var out []fixture.Packet
	for _, tag := range fixture.Tags(t, "hevc-aac.flv") {
		b := tag.Body
		if tag.Type != 9 || len(b) < 5 || b[0]&0x80 == 0 || string(b[1:5]) != "hvc1" {
			continue
		}
		key := b[0]>>4&7 == 1
		switch b[0] & 0x0f {
		case 1:
			out = append(out, fixture.Packet{Key: key, Data: b[5:]})
		case 3:
			out = append(out, fixture.Packet{Key: key, Data: append([]byte{0, 0, 0}, b[5:]...)})
		}
	}
	return out
}
