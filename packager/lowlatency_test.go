package packager_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// TestGoldenLowLatency pins the LL-HLS media playlists (parts of the newest
// segments and of the one being produced, preload hint, rendition reports,
// server control), a delta update, and the low-latency MPD.
func TestGoldenLowLatency(t *testing.T) {
	av := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}}
	tests := []struct {
		name string
		cfg  packager.Config
		run  func(t *testing.T, h *packager.Hub, c *clock)
	}{
		{
			// 7.5 s: three finished segments and 1.5 s of the fourth.
			name: "av_live",
			cfg:  packager.Config{WindowSegments: 3},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 7500
				publish(t, w, m)
				c.Advance(7500 * time.Millisecond)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			// A window longer than CAN-SKIP-UNTIL (12 s): the delta update skips.
			name: "av_skip",
			cfg:  packager.Config{WindowSegments: 10},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 20300
				publish(t, w, m)
				c.Advance(20300 * time.Millisecond)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			name: "audio_only",
			cfg:  packager.Config{WindowSegments: 3},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				publish(t, w, media{audio: audioA, until: 4500})
				c.Advance(4500 * time.Millisecond)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			// A publisher drops and comes back: the playlists go on with a
			// discontinuity and a new EXT-X-MAP before the new session's parts.
			name: "republish",
			cfg:  packager.Config{WindowSegments: 4},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 4000
				publish(t, w, m)
				c.Advance(4 * time.Second)
				closeWriter(t, w)
				c.Advance(2 * time.Second)
				w = mustPublish(t, h, "live", "a")
				m.video = videoB
				m.start, m.until = 100, 2700
				publish(t, w, m)
				c.Advance(2600 * time.Millisecond)
				t.Cleanup(func() { _ = w.Close(nil) })
			},
		},
		{
			name: "ended",
			cfg:  packager.Config{WindowSegments: 3},
			run: func(t *testing.T, h *packager.Hub, c *clock) {
				w := mustPublish(t, h, "live", "a")
				m := av
				m.until = 4600
				publish(t, w, m)
				c.Advance(4600 * time.Millisecond)
				closeWriter(t, w)
			},
		},
	}
	docs := []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath, packager.MPDPath, "v/delta.m3u8", "a/delta.m3u8"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := newHub(t, tt.cfg)
			tt.run(t, h, c)
			st := mustStream(t, h, "live", "a")
			dir := filepath.Join("testdata", "golden", "ll", tt.name)
			for _, p := range docs {
				file := filepath.Join(dir, filepath.FromSlash(p))
				var (
					obj packager.Object
					ok  bool
				)
				if strings.HasSuffix(p, "delta.m3u8") {
					obj, ok = st.Snapshot().DeltaPlaylist(p[:2] + "index.m3u8")
				} else {
					obj, ok = st.Object(p)
				}
				if !ok {
					if _, err := os.Stat(file); err == nil && !*update {
						t.Errorf("%s not served, golden %s exists", p, file)
					}
					continue
				}
				if strings.HasSuffix(p, ".m3u8") {
					checkLLPlaylist(t, st, p, obj.Data)
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

// checkLLPlaylist checks RFC 8216bis rules on an LL-HLS media playlist: every
// part within PART-TARGET (but the single-frame exception, which these media
// never need), parts listed for at most the three newest segments, a video part
// opening on a keyframe marked INDEPENDENT, every part served.
func checkLLPlaylist(t *testing.T, st *packager.Stream, path string, b []byte) {
	t.Helper()
	p := parseFMP4Playlist(t, b)
	if !p.ll {
		t.Fatalf("%s: not an LL-HLS playlist:\n%s", path, b)
	}
	if !bytes.Contains(b, []byte("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL=12.000,PART-HOLD-BACK=0.600\n#EXT-X-PART-INF:PART-TARGET=0.200\n")) {
		t.Fatalf("%s: server control or part info missing:\n%s", path, b)
	}
	all := append([][]llPart(nil), p.partsOf...)
	all = append(all, p.openParts)
	for _, parts := range all {
		for k, pt := range parts {
			if pt.dur > 200 || pt.dur <= 0 {
				t.Fatalf("%s: part %s lasts %d ms, PART-TARGET 200:\n%s", path, pt.uri, pt.dur, b)
			}
			if k+1 < len(parts) && pt.dur < 170 && !pt.indep {
				t.Fatalf("%s: part %s lasts %d ms, under 85%% of PART-TARGET:\n%s", path, pt.uri, pt.dur, b)
			}
			obj, ok := st.Object(path[:2] + pt.uri)
			if !ok {
				t.Fatalf("%s: part %s not served", path, pt.uri)
			}
			f, err := parseFragment(append(make([]byte, packager.StypSize), obj.Data...)[packager.StypSize:])
			if err != nil {
				t.Fatalf("%s: %v", pt.uri, err)
			}
			if path[0] == 'v' && f.firstSync != pt.indep {
				t.Fatalf("%s: part %s opens with sync sample %v, INDEPENDENT %v", path, pt.uri, f.firstSync, pt.indep)
			}
			if path[0] == 'a' && !pt.indep {
				t.Fatalf("%s: audio part %s not INDEPENDENT", path, pt.uri)
			}
		}
	}
}

// TestPartsGapless cuts real-rate media (30 fps in ms, 44.1 kHz AAC) into parts
// and checks each track's parts back to back: tfdt of each part is where the
// previous part ended, across segment boundaries, and every part is at most the
// part target.
func TestPartsGapless(t *testing.T) {
	tests := []struct {
		name string
		m    rtmpMedia
	}{
		{"av 30fps 44.1k", rtmpMedia{video: video30, audio: audio44, fps: 30, gops: []int64{60}, until: 9000}},
		{"av 25fps 48k odd gops", rtmpMedia{video: videoA, audio: audioA, fps: 25, gops: []int64{50, 37, 61}, until: 9000}},
		{"audio only", rtmpMedia{audio: audio44, until: 9000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHub(t, packager.Config{WindowSegments: 100})
			w := mustPublish(t, h, "live", "a")
			tt.m.publish(t, w)
			st := mustStream(t, h, "live", "a")
			for _, path := range []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath} {
				obj, ok := st.Object(path)
				if !ok {
					continue
				}
				var (
					end   uint64
					parts int
				)
				for n := uint64(0); ; n++ {
					// Every part of every segment, by name: the playlist lists
					// only the newest, the store serves all of the window.
					var got int
					for k := 0; ; k++ {
						name := strings.TrimSuffix(segName(t, obj.Data), "0.m4s") + strconv.FormatUint(n, 10) + "." + strconv.Itoa(k) + ".m4s"
						po, ok := st.Object(path[:2] + name)
						if !ok {
							break
						}
						f, err := parseFragment(append(make([]byte, packager.StypSize), po.Data...)[packager.StypSize:])
						if err != nil {
							t.Fatal(err)
						}
						if parts > 0 && f.tfdt != end {
							t.Fatalf("%s: part %s starts at %d, previous ended at %d", path, name, f.tfdt, end)
						}
						ts := map[byte]uint64{'v': 90000, 'a': uint64(tt.m.audio.SampleRate)}[path[0]]
						if ms := f.duration() * 1000 / ts; ms > 200 {
							t.Fatalf("%s: part %s lasts %d ms", path, name, ms)
						}
						end = f.tfdt + f.duration()
						parts++
						got++
					}
					if got == 0 {
						break
					}
				}
				if parts < 30 {
					t.Fatalf("%s: %d parts in 9 s", path, parts)
				}
			}
		})
	}
}

// segName is the first segment name of a media playlist, "<epoch>-<msn>.m4s",
// with the msn replaced by "0." for building part names.
func segName(t *testing.T, b []byte) string {
	t.Helper()
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasSuffix(l, ".m4s") && !strings.HasPrefix(l, "#") {
			epoch, _, _ := strings.Cut(l, "-")
			return epoch + "-0.m4s"
		}
	}
	t.Fatalf("no segment in\n%s", b)
	return ""
}

// TestBlockingReadiness walks a live stream part by part and checks what a
// blocking request sees: PlaylistReady for the next part turns true exactly when
// that part is listed; far-ahead requests are refused; Upcoming names the hinted
// part and the segment being produced; SegmentSoFar grows into the segment.
func TestBlockingReadiness(t *testing.T) {
	h, c := newHub(t, packager.Config{})
	w := mustPublish(t, h, "live", "a")
	m := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 60000}
	if err := w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true}); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*remux.Track{videoA, audioA} {
		if err := w.WriteTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = w.Close(nil) })
	st := mustStream(t, h, "live", "a")
	frames := m.frames()
	fi := 0
	feedUntil := func(ms int64) {
		for ; fi < len(frames) && frames[fi].DTS < ms; fi++ {
			f := frames[fi]
			if err := w.WriteFrame(&f); err != nil {
				t.Fatal(err)
			}
		}
		c.Advance(time.Duration(ms)*time.Millisecond - c.Now().Sub(t0))
	}
	feedUntil(4300) // two segments finished, the third (msn 2) under way with a part
	snap := st.Snapshot()
	p := parseFMP4Playlist(t, mustObject(t, snap, packager.VideoPlaylistPath))
	if len(p.names) != 2 || len(p.openParts) == 0 {
		t.Fatalf("after 4.3 s: %d segments, %d open parts", len(p.names), len(p.openParts))
	}
	have := len(p.openParts)
	epoch, _, _ := strings.Cut(p.names[0], "-")
	if want := epoch + "-2." + strconv.Itoa(have) + ".m4s"; p.hint != want {
		t.Fatalf("preload hint %q, want %q", p.hint, want)
	}
	if len(p.reports) != 1 || !strings.HasPrefix(p.reports[0], `URI="../a/index.m3u8",LAST-MSN=2,LAST-PART=`) {
		t.Fatalf("rendition reports %q", p.reports)
	}
	tests := []struct {
		msn      uint64
		part     int
		ready    bool
		tooFar   bool
		upcoming string // a path Upcoming must accept ("" none)
	}{
		{msn: 1, part: -1, ready: true},
		{msn: 2, part: have - 1, ready: true},
		{msn: 2, part: have},
		{msn: 2, part: -1},
		{msn: 3, part: 0},
		{msn: 3, part: -1},
		{msn: 4, part: -1, tooFar: true},
		{msn: 2, part: have + 4}, // hls.js without low-latency mode asks this far ahead
		{msn: 2, part: have + 15},
		{msn: 2, part: have + 16, tooFar: true}, // 3 s of 200 ms parts (RFC 8216bis 6.2.5.2)
		{msn: 3, part: 15},
		{msn: 3, part: 16, tooFar: true},
	}
	for _, tt := range tests {
		t.Run("msn "+strconv.FormatUint(tt.msn, 10)+" part "+strconv.Itoa(tt.part), func(t *testing.T) {
			ready, err := snap.PlaylistReady(packager.VideoPlaylistPath, tt.msn, tt.part)
			if ready != tt.ready || errors.Is(err, packager.ErrTooFarAhead) != tt.tooFar {
				t.Fatalf("ready %v err %v, want ready %v too far %v", ready, err, tt.ready, tt.tooFar)
			}
		})
	}
	for _, c := range []struct {
		path string
		want bool
	}{
		{"v/" + p.hint, true},
		{"v/" + epoch + "-3.0.m4s", true},
		{"v/" + epoch + "-2.m4s", true},
		{"v/" + epoch + "-3.m4s", true},
		{"v/" + epoch + "-2." + strconv.Itoa(have+1) + ".m4s", false},
		{"v/" + epoch + "-4.0.m4s", false},
		{"v/" + epoch + "-1.m4s", false},
		{"v/nonsense.m4s", false},
	} {
		if got := snap.Upcoming(c.path); got != c.want {
			t.Errorf("Upcoming(%s) = %v, want %v", c.path, got, c.want)
		}
	}
	chunks, ok := snap.SegmentSoFar("v/" + epoch + "-2.m4s")
	if !ok || len(chunks) != have+1 {
		t.Fatalf("SegmentSoFar: %d chunks ok %v, want styp and %d parts", len(chunks), ok, have)
	}

	// One more part: the waiting request for it is answered by the very next
	// change of the stream that lists it.
	changed := snap.Changed
	for ms := int64(4300); ; ms += 20 {
		feedUntil(ms)
		select {
		case <-changed:
		default:
			continue
		}
		next := st.Snapshot()
		ready, _ := next.PlaylistReady(packager.VideoPlaylistPath, 2, have)
		if _, listed := next.Object("v/" + p.hint); ready != listed {
			t.Fatalf("at %d ms: ready %v, hinted part served %v", ms, ready, listed)
		}
		if ready {
			break
		}
		changed = next.Changed
		if ms > 4800 {
			t.Fatal("no new part in 500 ms")
		}
	}

	// The segment finished: its bytes begin with what SegmentSoFar gave.
	feedUntil(6100)
	seg := mustObject(t, st.Snapshot(), "v/"+epoch+"-2.m4s")
	if prefix := bytes.Join(chunks, nil); !bytes.HasPrefix(seg, prefix) {
		t.Fatal("the finished segment does not begin with the bytes streamed while it was produced")
	}
	if _, ok := st.Snapshot().SegmentSoFar("v/" + epoch + "-2.m4s"); ok {
		t.Fatal("SegmentSoFar for a finished segment")
	}
}

func mustObject(t *testing.T, snap *packager.Snapshot, path string) []byte {
	t.Helper()
	obj, ok := snap.Object(path)
	if !ok {
		t.Fatalf("%s not served", path)
	}
	return obj.Data
}
