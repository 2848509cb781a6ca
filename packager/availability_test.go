package packager_test

import (
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// publishRealTime writes frames with the fake clock at each frame's DTS, as a
// publisher sending in real time, and calls after (if set) after each write.
func publishRealTime(t *testing.T, w remux.Writer, clk *clock, frames []remux.Frame, after func(f *remux.Frame)) {
	t.Helper()
	for _, tr := range []*remux.Track{videoA, audioA} {
		if err := w.WriteTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	var now int64
	for i := range frames {
		f := &frames[i]
		clk.Advance(time.Duration(f.DTS-now) * time.Millisecond)
		now = f.DTS
		if err := w.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after(f)
		}
	}
}

// listed counts the segments of st's TS playlist, its audio playlist and its
// MPD's audio timeline.
func listed(t *testing.T, st *packager.Stream) (ts, audio, dash int) {
	t.Helper()
	if st.Snapshot().TSPlaylist == nil {
		return 0, 0, 0
	}
	ts = len(snapshotPlaylist(t, st).segs)
	if obj, ok := st.Object(packager.AudioPlaylistPath); ok {
		audio = len(parseFMP4Playlist(t, obj.Data).names)
	}
	entries, _ := expandTimeline(t, st, parseMPD(t, st), "audio")
	return ts, audio, len(entries)
}

// TestSegmentAvailability publishes in real time on the fake clock and checks
// that a segment cut by a keyframe is listed in the TS playlist, the audio
// playlist and the MPD by the time that keyframe's write returns, without
// waiting for audio's next frame (its fragment ends where that frame is due),
// and that the histogram counts each such segment at 0 ms (the fake clock
// stands still within a write). The segment closed by the unpublish is not
// counted. The audio timeline stays gapless (checkCMAF).
func TestSegmentAvailability(t *testing.T) {
	h, clk := newHub(t, packager.Config{WindowSegments: 100})
	w := mustPublish(t, h, "live", "avail")
	st := mustStream(t, h, "live", "avail")
	frames := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 9000}.frames()
	cuts := 0
	publishRealTime(t, w, clk, frames, func(f *remux.Frame) {
		if !f.Key || f.Track != videoA || f.DTS == 0 {
			return
		}
		cuts++
		if ts, audio, dash := listed(t, st); ts != cuts || audio != cuts || dash != cuts {
			t.Fatalf("keyframe at %d ms: TS, audio and DASH list %d, %d and %d segments, want %d", f.DTS, ts, audio, dash, cuts)
		}
	})
	checkCMAF(t, st, nil)
	closeWriter(t, w)
	checkCMAF(t, st, frames)

	got := h.SegmentAvailability()
	if cuts != 4 || got.Count != 4 || got.Sum != 0 || got.Buckets[0.0005] != 4 {
		t.Fatalf("%d cuts; histogram count %d sum %v s, %d at or below 0.5 ms", cuts, got.Count, got.Sum, got.Buckets[0.0005])
	}
	if p99 := got.Quantile(0.99); p99 > 0.0005 {
		t.Fatalf("p99 %v s", p99)
	}
}

// TestAudioOffItsEstimatedEnd: audio whose first frame after a cut does not
// come where its estimated end put it. Late (a jump in its timestamps) leaves
// that gap in the audio timeline; early moves the frame to the estimated end,
// no sample lost. Either way the session's later cuts wait for audio's next
// frame again (exact ends), so those segments are listed when it arrives.
func TestAudioOffItsEstimatedEnd(t *testing.T) {
	for _, tc := range []struct {
		name  string
		shift int64 // ms added to the first audio frame after the cut at 2000, and (late) to every later one
		late  bool
	}{
		{"late", 15, true},
		{"early", -12, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, clk := newHub(t, packager.Config{WindowSegments: 100})
			w := mustPublish(t, h, "live", "a")
			st := mustStream(t, h, "live", "a")
			frames := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 9000}.frames()
			cut, moved := -1, -1
			for i := range frames {
				f := &frames[i]
				if f.Track == videoA && f.DTS == 2000 {
					cut = i
				}
				if cut >= 0 && i > cut && f.Track == audioA && (moved < 0 || tc.late) {
					if moved < 0 {
						moved = i
					}
					f.DTS += tc.shift
				}
			}
			want := frames[moved].DTS
			var atCut []bool // per later cut: listed by the time its keyframe's write returned
			publishRealTime(t, w, clk, frames, func(f *remux.Frame) {
				if f.Key && f.Track == videoA && f.DTS > 2000 {
					ts, _, _ := listed(t, st)
					atCut = append(atCut, ts == int(f.DTS/2000))
				}
			})
			closeWriter(t, w)
			entries, ts := expandTimeline(t, st, parseMPD(t, st), "audio")
			if len(entries) != 5 {
				t.Fatalf("%d audio segments", len(entries))
			}
			gap := int64(entries[1].t) - int64(entries[0].t+entries[0].d)
			wantGap := int64(0)
			if tc.late {
				// The fragment ended at the estimate; the next starts at the frame.
				wantGap = int64(ticks(want, ts)) - int64(entries[0].t+entries[0].d)
			}
			if gap != wantGap || tc.late && gap <= 0 {
				t.Fatalf("audio timeline: %d ticks between the first two segments, want %d", gap, wantGap)
			}
			for i := 2; i < len(entries); i++ {
				if entries[i].t != entries[i-1].t+entries[i-1].d {
					t.Fatalf("audio segment %d starts at %d, previous ended at %d", i, entries[i].t, entries[i-1].t+entries[i-1].d)
				}
			}
			samples := 0
			for _, e := range entries {
				obj, _ := st.Object(e.path)
				fr, err := parseFragment(obj.Data)
				if err != nil {
					t.Fatal(err)
				}
				samples += len(fr.durations)
			}
			nAudio := 0
			for _, f := range frames {
				if f.Track == audioA {
					nAudio++
				}
			}
			if samples != nAudio {
				t.Fatalf("audio fragments hold %d samples, source %d", samples, nAudio)
			}
			if len(atCut) != 3 || atCut[0] || atCut[1] || atCut[2] {
				t.Fatalf("later cuts listed at their keyframe: %v, want 3 waiting for audio's next frame", atCut)
			}
			if got := h.SegmentAvailability().Count; got != 4 {
				t.Fatalf("%d segments in the availability histogram, want 4", got)
			}
		})
	}
}
