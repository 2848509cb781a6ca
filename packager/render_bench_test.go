package packager_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// BenchmarkSessionFramesWatched is BenchmarkSessionFrames with a viewer: after
// every frame the fMP4 media playlists, the multivariant playlist and the MPD
// are read, so every change (each part, each segment) is rendered once, as
// when a stream is watched.
func BenchmarkSessionFramesWatched(b *testing.B) {
	c := makeClip(b, 10)
	base := time.Now()
	var mediaNow atomic.Int64 // ms of media, read by the janitor too
	clock := func() time.Time { return base.Add(time.Duration(mediaNow.Load()) * time.Millisecond) }
	h := packager.NewHub(packager.Config{WindowSegments: 6, Now: clock}, zerolog.Nop())
	defer h.Close()
	w, err := h.Publish("live", "bench", "127.0.0.1:1", nil)
	if err != nil {
		b.Fatal(err)
	}
	for _, tr := range c.tracks {
		if err := w.WriteTrack(tr); err != nil {
			b.Fatal(err)
		}
	}
	st, err := h.Stream("live", "bench")
	if err != nil {
		b.Fatal(err)
	}
	span := c.frames[len(c.frames)-1].DTS + 100
	f := new(remux.Frame)
	paths := []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath, packager.MultivariantPath, packager.MPDPath}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		*f = c.frames[i%len(c.frames)]
		f.DTS += int64(i/len(c.frames)) * span
		mediaNow.Store(f.DTS)
		if err := w.WriteFrame(f); err != nil {
			b.Fatal(err)
		}
		for _, p := range paths {
			st.Object(p)
		}
	}
	b.StopTimer()
	if err := w.Close(nil); err != nil {
		b.Fatal(err)
	}
}
