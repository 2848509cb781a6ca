package packager_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
)

// cmafDocs are the CMAF documents a golden case compares, by Object path.
var cmafDocs = []string{packager.MultivariantPath, packager.VideoPlaylistPath, packager.AudioPlaylistPath, packager.MPDPath}

func TestGoldenCMAF(t *testing.T) {
	av := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}}
	tests := []struct {
		name string
		cfg  packager.Config
		run  func(t *testing.T, h *packager.Hub, c *clock)
	}{
		{
			name: "av_live",
			cfg:  packager.Config{WindowSegments: 3},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 12000
				publish(t, w, m)
				c.Advance(12 * time.Second)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			name: "av_ended",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 5000
				publish(t, w, m)
				c.Advance(5 * time.Second)
				closeWriter(t, w)
			},
		},
		{
			name: "audio_only",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				publish(t, w, media{audio: audioA, until: 7000})
				c.Advance(7 * time.Second)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			name: "video_only",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				publish(t, w, media{video: videoA, vStep: 40, gops: []int64{50}, until: 7000})
				c.Advance(7 * time.Second)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			// A republish after unpublish: EXT-X-DISCONTINUITY and a new EXT-X-MAP in
			// the media playlists, a second Period in the MPD, dynamic again.
			name: "republish_live",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 6000
				publish(t, w, m)
				c.Advance(6 * time.Second)
				closeWriter(t, w)
				c.Advance(4 * time.Second)
				w = mustPublish(t, h, "live", "a")
				m.until = 4100
				publish(t, w, m)
				c.Advance(4 * time.Second)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			name: "republish_ended",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 6000
				publish(t, w, m)
				c.Advance(6 * time.Second)
				closeWriter(t, w)
				c.Advance(4 * time.Second)
				w = mustPublish(t, h, "live", "a")
				m.video = videoB
				m.start, m.until = 500, 4100
				publish(t, w, m)
				c.Advance(4 * time.Second)
				closeWriter(t, w)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// These goldens are the classic outputs; TestGoldenLowLatency has the
			// LL-HLS and low-latency DASH ones.
			tt.cfg.DisableLowLatency = true
			h, c := newHub(t, tt.cfg)
			tt.run(t, h, c)
			st := mustStream(t, h, "live", "a")
			dir := filepath.Join("testdata", "golden", "cmaf", tt.name)
			for _, p := range cmafDocs {
				file := filepath.Join(dir, filepath.FromSlash(p))
				obj, ok := st.Object(p)
				if !ok {
					if _, err := os.Stat(file); err == nil && !*update {
						t.Errorf("%s not served, golden %s exists", p, file)
					}
					continue
				}
				if *update {
					if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(file, obj.Data, 0o644); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if want := readFile(t, file); !bytes.Equal(obj.Data, want) {
					t.Errorf("%s differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", p, file, obj.Data, want)
				}
			}
		})
	}
}
