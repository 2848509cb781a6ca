package packager_test

import (
	"errors"
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// mediaEnd is where the frames' media ends: the last video DTS plus its last
// interval, or the audio's when there is no video.
func mediaEnd(frames []remux.Frame) int64 {
	last := map[remux.Kind][2]int64{}
	for _, f := range frames {
		k := f.Track.Kind()
		last[k] = [2]int64{last[k][1], f.DTS}
	}
	l, ok := last[remux.KindVideo]
	if !ok {
		l = last[remux.KindAudio]
	}
	return l[1] + l[1] - l[0]
}

// checkSegments decodes every listed segment and checks that together they hold
// want in order, that each segment's EXTINF is the next segment's first DTS minus
// its own, and returns the records per segment.
func checkSegments(t *testing.T, st *packager.Stream, p playlist, want []remux.Frame) [][]rec {
	t.Helper()
	segs := segmentRecords(t, st, p)
	var got []rec
	for i, s := range segs {
		if len(s) == 0 {
			t.Fatalf("segment %d is empty", i)
		}
		if i+1 < len(segs) && !p.segs[i+1].disc {
			if d := segs[i+1][0].dts - s[0].dts; d != p.segs[i].dur {
				t.Errorf("segment %d: EXTINF %d ms, next starts %d ms later", i, p.segs[i].dur, d)
			}
		}
		got = append(got, s...)
	}
	if len(got) != len(want) {
		t.Fatalf("segments hold %d frames, want %d", len(got), len(want))
	}
	for i := range got {
		w := want[i]
		if got[i].dts != w.DTS || got[i].kind != w.Track.Kind() || got[i].key != w.Key || got[i].size != len(w.Data) {
			t.Fatalf("frame %d = %+v, want %v dts %d key %v", i, got[i], w.Track.Kind(), w.DTS, w.Key)
		}
	}
	return segs
}

func TestEXTINFSumsEqualMediaTime(t *testing.T) {
	tests := []struct {
		name string
		m    media
	}{
		{"av gop 2s", media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 13000}},
		{"av gop 1s 30fps", media{video: videoA, audio: audioA, vStep: 33, gops: []int64{30}, until: 9000}},
		{"av odd gops", media{video: videoA, audio: audioA, vStep: 40, gops: []int64{17, 91, 40, 63, 150, 5}, until: 30000}},
		{"video only no keyframes", media{video: videoA, vStep: 40, gops: []int64{1 << 30}, until: 25000}},
		{"audio only", media{audio: audioA, until: 11000}},
		{"starts late", media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, start: 123456, until: 130000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHub(t, packager.Config{WindowSegments: 100})
			w := mustPublish(t, h, "live", "a")
			publish(t, w, tt.m)
			closeWriter(t, w)
			st := mustStream(t, h, "live", "a")
			p := snapshotPlaylist(t, st)
			if !p.ended {
				t.Fatal("no ENDLIST after Close")
			}
			frames := tt.m.frames()
			checkSegments(t, st, p, frames)
			var sum int64
			for _, s := range p.segs {
				sum += s.dur
			}
			if want := mediaEnd(frames) - frames[0].DTS; sum != want {
				t.Fatalf("EXTINF sum %d ms, media %d ms", sum, want)
			}
		})
	}
}

// audioSpill is how far a segment's audio share may run past its video: one
// 48 kHz AAC frame in whole ms (21 or 22) plus 1 ms.
const audioSpill = 23

func TestTargetDurationOddGOPs(t *testing.T) {
	tests := []struct {
		name       string
		gops       []int64
		wantTarget int64
	}{
		{"steady 2s", []int64{50}, 2},
		{"steady 2.44s rounds down", []int64{61}, 2},
		// The audio rendition's share of a segment runs to the first audio frame
		// after the cut, up to 2.50 s here, which would round above 2.
		{"steady 2.48s with audio rounds up", []int64{62}, 3},
		{"steady 2.52s rounds up", []int64{63}, 3},
		{"first short then long", []int64{10, 200, 3, 120}, 8}, // keyframes at 0, 0.4, 8.4 s
		{"first 6s", []int64{150, 20, 300, 7}, 6},
		{"no keyframe after the first", []int64{1 << 30}, 10},
		{"tiny gops", []int64{1, 2, 3}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHub(t, packager.Config{WindowSegments: 1000})
			w := mustPublish(t, h, "live", "a")
			m := media{video: videoA, audio: audioA, vStep: 40, gops: tt.gops, until: 60000}
			publish(t, w, m)
			closeWriter(t, w)
			st := mustStream(t, h, "live", "a")
			p := snapshotPlaylist(t, st) // checks every rounded EXTINF <= target
			if p.target != tt.wantTarget {
				t.Fatalf("target %d, want %d", p.target, tt.wantTarget)
			}
			first := p.segs[0].dur
			// The first segment, with one audio frame (21.3 ms) and 1 ms to spare.
			if lo, hi := max(2, (first+500)/1000), max(2, (first+audioSpill+500)/1000); p.target < lo || p.target > hi {
				t.Fatalf("target %d, want max(2, round(%d ms + up to %d ms)), %d to %d", p.target, first, audioSpill, lo, hi)
			}
			segs := checkSegments(t, st, p, m.frames())
			forced := 0
			for i, s := range segs {
				if p.segs[i].dur > p.target*1000+499 {
					t.Fatalf("segment %d: %d ms > target %d s + 499 ms", i, p.segs[i].dur, p.target)
				}
				for _, r := range s {
					if r.kind != remux.KindVideo {
						continue
					}
					if !r.key {
						// A segment may only start mid-GOP when the cap forced it.
						forced++
						limit := p.target*1000 + 499
						if i == 1 {
							limit = 10000 // the first segment closes under MaxSegmentDuration
						}
						// The cap looks ahead one video and one audio frame, plus 1 ms.
						if i == 0 || p.segs[i-1].dur < limit-40-audioSpill {
							t.Fatalf("segment %d starts with a non-key video frame after a %d ms segment", i, p.segs[i-1].dur)
						}
					}
					break
				}
			}
			t.Logf("target %d s, %d segments, %d forced", p.target, len(segs), forced)
		})
	}
}

func TestTrackWait(t *testing.T) {
	tests := []struct {
		name       string
		md         *remux.Metadata
		lateAudio  int64 // DTS at which the audio header arrives; -1 never
		wantTracks int
	}{
		{"audio header after 600 ms of video", nil, 600, 2},
		{"metadata promises audio that never comes", &remux.Metadata{HasVideo: true, HasAudio: true}, -1, 1},
		{"no metadata, audio never", nil, -1, 1},
		{"metadata says video only", &remux.Metadata{HasVideo: true}, -1, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, _ := newHub(t, packager.Config{TrackWait: 1000e6, WindowSegments: 100})
			w := mustPublish(t, h, "live", "a")
			if tt.md != nil {
				if err := w.WriteMetadata(tt.md); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.WriteTrack(videoA); err != nil {
				t.Fatal(err)
			}
			m := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 7000}
			var sent []remux.Frame
			audioOn := false
			for _, f := range m.frames() {
				if f.Track == audioA && !audioOn {
					if tt.lateAudio < 0 || f.DTS < tt.lateAudio {
						continue
					}
					if err := w.WriteTrack(audioA); err != nil {
						t.Fatal(err)
					}
					audioOn = true
				}
				if err := w.WriteFrame(&f); err != nil {
					t.Fatal(err)
				}
				sent = append(sent, f)
			}
			closeWriter(t, w)
			st := mustStream(t, h, "live", "a")
			if n := len(st.Snapshot().Tracks); n != tt.wantTracks {
				t.Fatalf("%d tracks, want %d", n, tt.wantTracks)
			}
			p := snapshotPlaylist(t, st)
			segs := checkSegments(t, st, p, sent) // nothing lost, in order
			if r := segs[0][0]; r.dts != 0 || !r.key {
				t.Fatalf("first segment starts with %+v, want the first keyframe", r)
			}
		})
	}
}

func TestSequenceHeaderChange(t *testing.T) {
	h, _ := newHub(t, packager.Config{WindowSegments: 100})
	w := mustPublish(t, h, "live", "a")
	m := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{25}, until: 3000}
	publish(t, w, m)
	sent := m.frames()
	st := mustStream(t, h, "live", "a")
	before := len(snapshotPlaylist(t, st).segs)

	// The same configuration again (a new *Track, identical bytes) changes nothing.
	same := *videoA
	if err := w.WriteTrack(&same); err != nil {
		t.Fatal(err)
	}
	if n := len(snapshotPlaylist(t, st).segs); n != before {
		t.Fatalf("identical sequence header closed a segment: %d -> %d", before, n)
	}
	// A new resolution: the open segment is published, the next one follows a
	// discontinuity.
	if err := w.WriteTrack(videoB); err != nil {
		t.Fatal(err)
	}
	p := snapshotPlaylist(t, st)
	if len(p.segs) != before+1 {
		t.Fatalf("changed sequence header: %d segments, want %d", len(p.segs), before+1)
	}
	if tr := st.Snapshot().Tracks; len(tr) != 2 || tr[0] != videoB {
		t.Fatalf("tracks after change: %v", tr)
	}
	m2 := media{video: videoB, audio: audioA, vStep: 40, gops: []int64{25}, start: 3000, until: 6000}
	writeFrames(t, w, m2.frames())
	closeWriter(t, w)
	p = snapshotPlaylist(t, st)
	sent = append(sent, m2.frames()...)
	checkSegments(t, st, p, sent)
	for i, s := range p.segs {
		if want := i == before+1; s.disc != want {
			t.Fatalf("segment %d: discontinuity %v, want %v", i, s.disc, want)
		}
	}
	if p.discSeq != 0 {
		t.Fatalf("discontinuity sequence %d", p.discSeq)
	}
}

func TestWriterErrors(t *testing.T) {
	h, _ := newHub(t, packager.Config{})
	w := mustPublish(t, h, "live", "a")
	if err := w.WriteFrame(nil); err == nil {
		t.Error("nil frame accepted")
	}
	if err := w.WriteTrack(nil); err == nil {
		t.Error("nil track accepted")
	}
	if err := w.WriteTrack(&remux.Track{Codec: remux.Codec(77)}); err == nil {
		t.Error("unknown codec accepted")
	}
	// Frames before any sequence header are dropped, not an error.
	if err := w.WriteFrame(&remux.Frame{Track: videoA, Key: true, Data: []byte{1}}); err != nil {
		t.Error(err)
	}
	closeWriter(t, w)
	if err := w.WriteFrame(&remux.Frame{Track: videoA}); err == nil {
		t.Error("write after Close accepted")
	}
	if err := w.Close(nil); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := h.Publish("live", "a/b", "", nil); !errors.Is(err, packager.ErrInvalidName) {
		t.Errorf("name with slash: %v", err)
	}
	if _, err := h.Publish("", "a", "", nil); !errors.Is(err, packager.ErrInvalidName) {
		t.Errorf("empty app: %v", err)
	}
}
