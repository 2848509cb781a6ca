package packager_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
)

var update = flag.Bool("update", false, "rewrite testdata/golden from the current output")

func TestGoldenPlaylists(t *testing.T) {
	av := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}}
	tests := []struct {
		name string
		cfg  packager.Config
		run  func(t *testing.T, h *packager.Hub, c *clock)
	}{
		{
			name: "live_window",
			cfg:  packager.Config{WindowSegments: 3},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 20000
				publish(t, w, m)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			name: "ended",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 5000
				publish(t, w, m)
				closeWriter(t, w)
			},
		},
		{
			name: "republish",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 6000
				publish(t, w, m)
				closeWriter(t, w)
				c.Advance(10 * time.Second)
				w = mustPublish(t, h, "live", "a")
				m.until = 4100
				publish(t, w, m)
				closeWriter(t, w)
			},
		},
		{
			name: "republish_rolling",
			cfg:  packager.Config{WindowSegments: 3},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				for i := 0; i < 4; i++ {
					w := mustPublish(t, h, "live", "a")
					m := av
					m.until = 4000
					publish(t, w, m)
					closeWriter(t, w)
					c.Advance(5 * time.Second)
				}
			},
		},
		{
			name: "audio_only",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				publish(t, w, media{audio: audioA, until: 7000})
				closeWriter(t, w)
			},
		},
		{
			name: "odd_gops",
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				// 1.2 s, 3.2 s, 1.8 s and 5.2 s GOPs: the first keyframe at or after 2 s
				// is at 4.4 s, which fixes the target at 4 s; the 5.2 s GOP is then cut
				// without a keyframe before 4.5 s.
				publish(t, w, media{video: videoA, audio: audioA, vStep: 40, gops: []int64{30, 80, 45, 130}, until: 16000})
				closeWriter(t, w)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := newHub(t, tt.cfg)
			tt.run(t, h, c)
			got := mustStream(t, h, "live", "a").Snapshot().TSPlaylist
			parsePlaylist(t, got) // the structural checks apply to goldens too
			path := filepath.Join("testdata", "golden", tt.name+".m3u8")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if want := readFile(t, path); !bytes.Equal(got, want) {
				t.Errorf("playlist differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}
