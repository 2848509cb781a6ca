package packager_test

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// Feeding a hub by hand, as ingest does for a publish: the tracks, then the
// frames, then Close; the stream's playlists are then served from it. Here an
// audio-only stream of 7 s of AAC frames, on a fixed clock so that the segment
// names (which carry the publish time) come out the same every run.
func Example() {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	hub := packager.NewHub(packager.Config{
		DisableLowLatency: true, // classic segments only: a short playlist to print
		Now:               func() time.Time { return start },
	}, zerolog.Nop())
	defer hub.Close()

	w, err := hub.Publish("live", "demo", "192.0.2.1:50000", nil)
	if err != nil {
		panic(err)
	}
	aac := &remux.Track{
		ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 48000,
		Config: []byte{0x11, 0x90}, CodecString: "mp4a.40.2", AudioObjectType: 2, SampleRate: 48000, Channels: 2,
	}
	_ = w.WriteMetadata(&remux.Metadata{HasAudio: true})
	_ = w.WriteTrack(aac)
	payload := make([]byte, 64)
	// 1024 samples at 48 kHz: a frame every 21.33 ms, in RTMP's milliseconds.
	for n := int64(0); n*1024*1000/48000 < 7000; n++ {
		_ = w.WriteFrame(&remux.Frame{Track: aac, DTS: n * 1024 * 1000 / 48000, Key: true, Data: payload})
	}
	_ = w.Close(nil) // the publisher left: the partial segment is published, the playlist ends

	st, err := hub.Stream("live", "demo")
	if err != nil {
		panic(err)
	}
	pl, _ := st.Object(packager.PlaylistPath)
	fmt.Print(string(pl.Data))
	// Output:
	// #EXTM3U
	// #EXT-X-VERSION:3
	// #EXT-X-TARGETDURATION:2
	// #EXT-X-MEDIA-SEQUENCE:0
	// #EXT-X-DISCONTINUITY-SEQUENCE:0
	// #EXT-X-PROGRAM-DATE-TIME:2026-12-01T12:00:00.000Z
	// #EXTINF:2.005,
	// dn9do54em800-0.ts
	// #EXT-X-PROGRAM-DATE-TIME:2026-12-01T12:00:02.005Z
	// #EXTINF:2.005,
	// dn9do54em800-1.ts
	// #EXT-X-PROGRAM-DATE-TIME:2026-12-01T12:00:04.010Z
	// #EXTINF:2.006,
	// dn9do54em800-2.ts
	// #EXT-X-PROGRAM-DATE-TIME:2026-12-01T12:00:06.016Z
	// #EXTINF:1.002,
	// dn9do54em800-3.ts
	// #EXT-X-ENDLIST
}
