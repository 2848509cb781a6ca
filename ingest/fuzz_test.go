package ingest

import (
	"os"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
)

// chunkedTags is the audio and video tags as a publisher's chunk stream on
// message stream 1 (the capture's chunk size, 4096), cut to about limit bytes.
func chunkedTags(tags []fixture.Tag, limit int) []byte {
	w := rtmp.ChunkWriter{ChunkSize: 4096}
	for _, tag := range tags {
		switch tag.Type {
		case rtmp.MsgVideo:
			w.AppendMessage(rtmp.CSIDVideo, rtmp.MsgVideo, 1, tag.TS, tag.Body)
		case rtmp.MsgAudio:
			w.AppendMessage(rtmp.CSIDAudio, rtmp.MsgAudio, 1, tag.TS, tag.Body)
		}
		if len(w.Buf) >= limit {
			break
		}
	}
	return w.Buf
}

// FuzzConn replays the capture's handshake and commands, then the fuzzer's bytes
// as the rest of the stream: no panic, no hang, the Writer closed exactly once.
func FuzzConn(f *testing.F) {
	data, err := os.ReadFile("testdata/publish.rtmp")
	if err != nil {
		f.Fatal(err)
	}
	cp, err := scanCapture(data)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[cp.mediaStart:min(len(data), cp.mediaStart+3000)])
	f.Add(data[cp.framesStart:min(len(data), cp.framesStart+3000)])
	// Enhanced RTMP: each fixture's first messages (sequence starts, ModEx,
	// multitrack), chunked as a publisher sends them.
	if fixture.Dir() != "" {
		for _, name := range []string{"hevc-aac.flv", "av1-opus.flv", "vp9-opus.flv", "multitrack-h264.flv", "multitrack-hevc-h264.flv"} {
			f.Add(chunkedTags(fixture.Tags(f, name), 3000))
		}
		// The multitrack fixture in the two forms that pack several tracks
		// into one message.
		for _, form := range []uint8{rtmpclient.ManyTracks, rtmpclient.ManyTracksManyCodecs} {
			tags := fixture.Tags(f, "multitrack-hevc-h264.flv")
			clip := make([]rtmpclient.Tag, len(tags))
			for i, tg := range tags {
				clip[i] = rtmpclient.Tag{Type: tg.Type, Timestamp: tg.TS, Body: tg.Body}
			}
			packed, err := rtmpclient.RepackMultitrack(clip, form)
			if err != nil {
				f.Fatal(err)
			}
			tags = nil
			for _, tg := range packed {
				tags = append(tags, fixture.Tag{Type: tg.Type, TS: tg.Timestamp, Body: tg.Body})
			}
			f.Add(chunkedTags(tags, 3000))
		}
	}
	f.Fuzz(func(t *testing.T, tail []byte) {
		var panics int
		h := &newWriters{renditions: true}
		s := &Server{Handler: h, MaxMessageSize: 1 << 16, MaxTracks: 3, OnPanic: func() { panics++ }}
		rc := &replayConn{prefix: cp.data[:cp.mediaStart], body: tail, loops: 1}
		done := make(chan struct{})
		go func() {
			defer close(done)
			newConn(s, rc).serve()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection did not end")
		}
		if panics != 0 {
			t.Fatal("panic recovered")
		}
		if len(h.writers) == 0 {
			t.Fatal("the capture's publish did not reach the handler")
		}
		for i, w := range h.writers {
			if w.closes != 1 {
				t.Fatalf("writer %d: Close called %d times", i, w.closes)
			}
		}
	})
}
