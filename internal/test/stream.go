// Package test holds helpers shared by several packages' tests, so none is
// written twice: synthetic streams published on a packager.Hub (a demo
// stream, a live feed driven frame by frame) and raw HTTP/1.1 exchanges.
package test

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// Video (H.264 640x360) and Audio (AAC-LC 48 kHz stereo) are the demo tracks.
var (
	Video = &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000, CodecString: "avc1.64001e",
		Profile: "High", Level: "3.0",
		Width: 640, Height: 360, NALULengthSize: 4, SPS: [][]byte{{0x67, 0x64, 0, 0x1e}}, PPS: [][]byte{{0x68, 0xee}},
		Config: []byte{1, 0x64, 0, 0x1e, 0xff, 0xe1, 0, 4, 0x67, 0x64, 0, 0x1e, 1, 0, 2, 0x68, 0xee}}
	Audio = &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 48000, CodecString: "mp4a.40.2", Profile: "LC",
		AudioObjectType: 2, SampleRate: 48000, Channels: 2, Config: []byte{0x11, 0x90}}
)

// DemoHub publishes 5 s of synthetic media (2 s GOPs, 25 fps) on live/demo of
// a new hub, closed when the test ends; each video frame carries pad more
// bytes of slice data. end unpublishes the stream after its last frame;
// otherwise it stays live (its last segment in production) until the test ends.
func DemoHub(tb testing.TB, end bool, pad int) *packager.Hub {
	tb.Helper()
	hub := packager.NewHub(packager.Config{}, zerolog.Nop())
	tb.Cleanup(hub.Close)
	PublishDemo(tb, hub, "live", "demo", end, pad)
	return hub
}

// PublishDemo publishes DemoHub's 5 s of media on app/name of hub, ending the
// session when end is set (at cleanup otherwise).
func PublishDemo(tb testing.TB, hub *packager.Hub, app, name string, end bool, pad int) {
	tb.Helper()
	w, err := hub.Publish(app, name, "127.0.0.1:5000", func() {})
	if err != nil {
		tb.Fatal(err)
	}
	must := func(err error) {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
	}
	must(w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true}))
	must(w.WriteTrack(Video))
	must(w.WriteTrack(Audio))
	vdts, adts := int64(0), int64(0)
	for vdts < 5000 {
		for adts <= vdts {
			must(w.WriteFrame(&remux.Frame{Track: Audio, DTS: adts, Key: true, Data: []byte{0x21, 0x10, 0x04}}))
			adts += 21
		}
		key := vdts%2000 == 0
		nal := byte(0x41)
		if key {
			nal = 0x65
		}
		data := make([]byte, 7+pad)
		n := 3 + pad
		copy(data, []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n), nal, 0x88, 0x84})
		must(w.WriteFrame(&remux.Frame{Track: Video, DTS: vdts, Key: key, Data: data}))
		vdts += 40
	}
	if end {
		must(w.Close(nil))
	} else {
		tb.Cleanup(func() { _ = w.Close(nil) })
	}
}

// Live is a stream on live/ll that a test drives frame by frame: 25 fps
// video with 2 s GOPs and 48 kHz AAC, timestamps in ms. Its fields are the
// session's state, for tests that end and restart a session.
type Live struct {
	TB  testing.TB
	Hub *packager.Hub
	W   remux.Writer // the session's writer
	// VDTS and ADTS are the next video and audio DTS; AN counts audio
	// frames (ADTS is derived from it); Base is the session's first DTS.
	VDTS, ADTS, AN, Base int64
}

// NewLive publishes live/ll on a new hub with cfg, closed when the test ends.
func NewLive(tb testing.TB, cfg packager.Config) *Live {
	tb.Helper()
	hub := packager.NewHub(cfg, zerolog.Nop())
	tb.Cleanup(hub.Close)
	f := &Live{TB: tb, Hub: hub}
	f.Publish()
	return f
}

// Publish starts a session at VDTS, closed when the test ends.
func (f *Live) Publish() {
	f.TB.Helper()
	w, err := f.Hub.Publish("live", "ll", "127.0.0.1:5000", func() {})
	if err != nil {
		f.TB.Fatal(err)
	}
	f.W = w
	f.Base = f.VDTS
	f.must(w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true}))
	f.must(w.WriteTrack(Video))
	f.must(w.WriteTrack(Audio))
	f.TB.Cleanup(func() { _ = w.Close(nil) })
}

func (f *Live) must(err error) {
	f.TB.Helper()
	if err != nil {
		f.TB.Fatal(err)
	}
}

// Feed writes the frames with DTS below ms (of media since the session began)
// and returns how many.
func (f *Live) Feed(ms int64) int {
	n := 0
	for f.VDTS < f.Base+ms {
		for f.ADTS <= f.VDTS {
			f.must(f.W.WriteFrame(&remux.Frame{Track: Audio, DTS: f.ADTS, Key: true, Data: []byte{0x21, 0x10, 0x04}}))
			f.AN++
			f.ADTS = f.AN * 1024 * 1000 / 48000
			n++
		}
		key := (f.VDTS-f.Base)%2000 == 0
		nal := byte(0x41)
		if key {
			nal = 0x65
		}
		f.must(f.W.WriteFrame(&remux.Frame{Track: Video, DTS: f.VDTS, Key: key, Data: []byte{0, 0, 0, 3, nal, 0x88, 0x84}}))
		f.VDTS += 40
		n++
	}
	return n
}

var hintRe = regexp.MustCompile(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)-(\d+)\.(\d+)\.m4s"`)

// Hinted returns the epoch, msn and part index a playlist's preload hint names.
func Hinted(tb testing.TB, pl string) (epoch string, msn uint64, part int) {
	tb.Helper()
	m := hintRe.FindStringSubmatch(pl)
	if m == nil {
		tb.Fatalf("no preload hint:\n%s", pl)
	}
	msn, _ = strconv.ParseUint(m[2], 10, 64)
	part, _ = strconv.Atoi(m[3])
	return m[1], msn, part
}
