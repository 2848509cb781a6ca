package packager_test

import (
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// TestLastSegmentBFrames publishes video with two B-frames between P-frames
// (decode order I P B B P B B ..., 40 ms frames, presented 80 ms after decode
// for I and P and 40 ms before the next P for B) and stops right after a
// P-frame, as an encoder that is not flushed does: the B-frames presented
// before that P-frame never come. The last segment's EXTINF (TS and fMP4) and
// its DASH timeline entry must cover its media up to the end of that P-frame,
// its latest presented frame, not only up to its last decoded frame plus one.
func TestLastSegmentBFrames(t *testing.T) {
	for _, ll := range []bool{false, true} {
		name := "classic"
		if ll {
			name = "low latency"
		}
		t.Run(name, func(t *testing.T) {
			h, c := newHub(t, packager.Config{DisableLowLatency: !ll, WindowSegments: 100})
			w := mustPublish(t, h, "live", "a")
			if err := w.WriteTrack(videoA); err != nil {
				t.Fatal(err)
			}
			// GOPs of 49 frames, 40 ms each, closed: display order I0 B1 B2
			// P3 ... B46 B47 P48, decode order I0 P3 B1 B2 P6 B4 B5 ... P48 B46
			// B47; presented one frame after decode (I: CTS 40 ms, P: 120 ms,
			// B: 0).
			var frames []remux.Frame
			for g := 0; g < 3; g++ {
				order := []int{0}
				for d := 3; d < 49; d += 3 {
					order = append(order, d, d-2, d-1)
				}
				for j, d := range order {
					k := g*49 + j
					frames = append(frames, remux.Frame{Track: videoA, DTS: int64(k) * 40, CTS: int32((d-j)*40 + 40), Key: d == 0, Data: []byte{0, 0, 0, 1, 0x65}})
				}
			}
			// End on a P-frame: drop the B-frames after the last P.
			for frames[len(frames)-1].CTS <= 40 {
				frames = frames[:len(frames)-1]
			}
			writeFrames(t, w, frames)
			c.Advance(1e9)
			closeWriter(t, w)
			st := mustStream(t, h, "live", "a")
			last := frames[len(frames)-1]
			var maxPTS int64
			p := snapshotPlaylist(t, st)
			seg := p.segs[len(p.segs)-1]
			var start int64 // the last segment's first DTS: the EXTINFs before it add up to it
			for _, s := range p.segs[:len(p.segs)-1] {
				start += s.dur
			}
			segFirst := frames[start/40]
			for _, f := range frames {
				maxPTS = max(maxPTS, f.DTS+int64(f.CTS))
			}
			// The media of the last segment: from its keyframe's presentation
			// to the end of the latest presented frame.
			want := maxPTS + 40 - (segFirst.DTS + int64(segFirst.CTS))
			if seg.dur != want {
				t.Fatalf("last TS EXTINF %d ms, media %d ms (last DTS %d, latest PTS %d)", seg.dur, want, last.DTS, maxPTS)
			}
			obj, _ := st.Object(packager.VideoPlaylistPath)
			pl := parseFMP4Playlist(t, obj.Data)
			if got := pl.durs[len(pl.durs)-1]; got != want {
				t.Fatalf("last fMP4 EXTINF %d ms, media %d ms", got, want)
			}
			entries, ts := expandTimeline(t, st, parseMPD(t, st), "video")
			e := entries[len(entries)-1]
			if e.t+e.d != ticks(maxPTS+40, ts) {
				t.Fatalf("last DASH segment ends at %d, latest frame at %d", e.t+e.d, ticks(maxPTS+40, ts))
			}
		})
	}
}

// TestOffGridCutStartsPeriod: a cut the segment grid did not make, far from a
// nominal instant (here a frame over the segment byte cap, mid-segment), cannot
// keep its number's nominal span, so the low-latency MPD starts a new Period
// there (without an HLS discontinuity) and lists the old one by its
// SegmentTimeline, while the new one is addressed by its own grid.
func TestOffGridCutStartsPeriod(t *testing.T) {
	h, _ := newHub(t, packager.Config{MaxSegmentBytes: 64 << 10, WindowSegments: 100})
	w := mustPublish(t, h, "live", "a")
	if err := w.WriteTrack(videoA); err != nil {
		t.Fatal(err)
	}
	var frames []remux.Frame
	for k := 0; k < 300; k++ { // 12 s at 25 fps, a keyframe every 2 s
		f := remux.Frame{Track: videoA, DTS: int64(k) * 40, CTS: 80, Key: k%50 == 0, Data: []byte{0, 0, 0, 1, 0x65}}
		if k == 75 { // 3.0 s: mid-slot
			f.Data = make([]byte, 60<<10) // over the segmenter's 7/8 of the cap, within the fragment's
			copy(f.Data, []byte{0, 1, 0x8f, 0xfc, 0x65})
		}
		frames = append(frames, f)
	}
	writeFrames(t, w, frames)
	st := mustStream(t, h, "live", "a")
	m := parseMPD(t, st)
	if len(m.Periods) < 2 {
		t.Fatalf("want a new Period after the off-grid cut, got %d", len(m.Periods))
	}
	first, last := m.Periods[0].AdaptationSets[0].Representations[0].Template, m.Periods[len(m.Periods)-1].AdaptationSets[0].Representations[0].Template
	if first.Duration != 0 || len(first.S) == 0 || last.Duration == 0 || len(last.S) != 0 {
		t.Fatalf("first Period %+v, last %+v: want a timeline, then a grid", first, last)
	}
	for _, seg := range snapshotPlaylist(t, st).segs {
		if seg.disc {
			t.Fatalf("a discontinuity in the TS playlist at %s", seg.name)
		}
	}
	// The new grid's segments start within half of @duration of their nominal starts.
	entries, _ := expandTimeline(t, st, m, "video")
	nominal := 0
	for _, e := range entries {
		if !e.nominal {
			continue
		}
		nominal++
		obj, _ := st.Object(e.path)
		f, err := parseFragment(obj.Data)
		if err != nil {
			t.Fatal(err)
		}
		if ept := uint64(int64(f.tfdt) + int64(f.firstCTO)); max(ept, e.t)-min(ept, e.t) > e.d/2 {
			t.Fatalf("%s starts at %d, nominally %d, @duration %d", e.path, ept, e.t, e.d)
		}
	}
	if nominal < 2 {
		t.Fatalf("%d segments in the new grid", nominal)
	}
	closeWriter(t, w)
}
