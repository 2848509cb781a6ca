package remux_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
)

var (
	videoTrack = &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000}
	audioTrack = &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 48000, SampleRate: 48000}
)

// av builds frames in DTS order: video every vStep ms with a keyframe every gop
// frames, audio every aStep ms (0: no track), up to until ms.
func av(vStep, gop, aStep, until int64, size int) []remux.Frame {
	var out []remux.Frame
	var vt, at int64
	var n int64
	for (vStep > 0 && vt < until) || (aStep > 0 && at < until) {
		if vStep > 0 && vt < until && (aStep == 0 || at >= until || vt <= at) {
			out = append(out, remux.Frame{Track: videoTrack, DTS: vt, Key: gop > 0 && n%gop == 0, Data: make([]byte, size)})
			vt += vStep
			n++
			continue
		}
		out = append(out, remux.Frame{Track: audioTrack, DTS: at, Key: true, Data: make([]byte, size/4)})
		at += aStep
	}
	return out
}

type cut struct {
	dts    int64
	reason remux.CutReason
	indep  bool
}

func run(s *remux.Segmenter, frames []remux.Frame) []cut {
	var cuts []cut
	for i := range frames {
		if d := s.Push(&frames[i]); d.Cuts() {
			cuts = append(cuts, cut{frames[i].DTS, d.Reason, d.Independent})
		}
	}
	return cuts
}

func TestSegmenterCuts(t *testing.T) {
	tests := []struct {
		name   string
		seg    remux.Segmenter
		frames []remux.Frame
		want   []cut
	}{
		{
			name:   "video gop 1s target 2s cuts at every second keyframe",
			seg:    remux.Segmenter{Target: 2 * time.Second, Video: true},
			frames: av(40, 25, 0, 6000, 100),
			want:   []cut{{0, remux.CutStart, true}, {2000, remux.CutTarget, true}, {4000, remux.CutTarget, true}},
		},
		{
			name:   "video gop 3s target 2s cuts at keyframes only",
			seg:    remux.Segmenter{Target: 2 * time.Second, Video: true},
			frames: av(40, 75, 21, 9000, 100),
			want:   []cut{{0, remux.CutStart, true}, {3000, remux.CutTarget, true}, {6000, remux.CutTarget, true}},
		},
		{
			name:   "audio-only cuts on time",
			seg:    remux.Segmenter{Target: 2 * time.Second},
			frames: av(0, 0, 21, 4300, 100),
			// 21 ms frames, half a frame of tolerance: first at or after 1990 is
			// 1995, then at or after 3985 is 3990
			want: []cut{{0, remux.CutStart, true}, {1995, remux.CutTarget, true}, {3990, remux.CutTarget, true}},
		},
		{
			name:   "no keyframe: forced at max duration looking one frame ahead",
			seg:    remux.Segmenter{Target: 2 * time.Second, MaxDuration: 2499 * time.Millisecond, Video: true},
			frames: av(40, 1000, 0, 5100, 100),
			// 2440+40 = 2480 <= 2499 keeps 2440; 2480+40 > 2499 cuts: duration 2480
			want: []cut{{0, remux.CutStart, true}, {2480, remux.CutDuration, false}, {4960, remux.CutDuration, false}},
		},
		{
			// Millisecond timestamps of a 2 s GOP at 30 fps can land a keyframe at
			// 1999 ms: it still cuts, rather than a forced cut mid-GOP later.
			name: "keyframe a millisecond before the target cuts",
			seg:  remux.Segmenter{Target: 2 * time.Second, MaxDuration: 2499 * time.Millisecond, Video: true},
			frames: []remux.Frame{
				{Track: videoTrack, DTS: 0, Key: true}, {Track: videoTrack, DTS: 33}, {Track: videoTrack, DTS: 1966},
				{Track: videoTrack, DTS: 1999, Key: true}, {Track: videoTrack, DTS: 2032},
			},
			want: []cut{{0, remux.CutStart, true}, {1999, remux.CutTarget, true}},
		},
		{
			name:   "max bytes forces a cut without keyframe",
			seg:    remux.Segmenter{Target: 2 * time.Second, MaxBytes: 1000, Video: true},
			frames: av(40, 1000, 0, 400, 300),
			want:   []cut{{0, remux.CutStart, true}, {120, remux.CutBytes, false}, {240, remux.CutBytes, false}, {360, remux.CutBytes, false}},
		},
		{
			name:   "frame bigger than max bytes sits alone",
			seg:    remux.Segmenter{MaxBytes: 10, Video: true},
			frames: av(40, 1, 0, 120, 50),
			want:   []cut{{0, remux.CutStart, true}, {40, remux.CutBytes, true}, {80, remux.CutBytes, true}},
		},
		{
			name:   "first frame not a keyframe opens a dependent segment",
			seg:    remux.Segmenter{Video: true},
			frames: []remux.Frame{{Track: videoTrack, DTS: 5}, {Track: videoTrack, DTS: 45, Key: true}},
			want:   []cut{{5, remux.CutStart, false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.seg
			got := run(&s, tt.frames)
			if len(got) != len(tt.want) {
				t.Fatalf("cuts = %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("cut %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestSegmenterResetAndEnd(t *testing.T) {
	s := remux.Segmenter{Video: true}
	frames := av(40, 25, 20, 1000, 10)
	run(&s, frames)
	if s.Start() != 0 || s.End() != 1000 {
		t.Fatalf("start, end = %d, %d, want 0, 1000", s.Start(), s.End())
	}
	if s.Step(remux.KindVideo) != 40 || s.Step(remux.KindAudio) != 20 {
		t.Fatalf("steps = %d, %d", s.Step(remux.KindVideo), s.Step(remux.KindAudio))
	}
	if s.Frames() != len(frames) {
		t.Fatalf("frames = %d, want %d", s.Frames(), len(frames))
	}
	s.Reset()
	if d := s.Push(&remux.Frame{Track: videoTrack, DTS: 1000}); d.Reason != remux.CutStart || d.Independent {
		t.Fatalf("after reset: %+v", d)
	}
	if d := s.Push(nil); d.Cuts() {
		t.Fatalf("nil frame cut: %+v", d)
	}
}

func TestSegmenterNoAllocs(t *testing.T) {
	s := remux.Segmenter{Video: true}
	frames := av(40, 25, 21, 10000, 10)
	if n := testing.AllocsPerRun(10, func() { run2(&s, frames) }); n != 0 {
		t.Fatalf("allocs per run = %v", n)
	}
}

func run2(s *remux.Segmenter, frames []remux.Frame) {
	for i := range frames {
		s.Push(&frames[i])
	}
}

func BenchmarkSegmenter(b *testing.B) {
	s := remux.Segmenter{Video: true}
	frames := av(40, 25, 21, 60000, 10)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := &frames[i%len(frames)]
		if i%len(frames) == 0 {
			s.Reset()
		}
		s.Push(f)
	}
}

func TestPartDue(t *testing.T) {
	// Segments of each rate cut into parts by PartDue, with the expected frame
	// count known (a steady GOP) or not (the first segment): every part must be at
	// most the target long, every part but the last that does not start with a
	// sync sample at least 85% of it (RFC 8216bis 4.4.4.9) where one more frame
	// would not have fit, and no last part a single frame once the track's frame
	// interval is known.
	tests := []struct {
		name   string
		times  func(n int64) int64
		step   int64
		sync   bool
		frames int     // in the segment
		expect int     // frames the plan expects; 0: unknown
		full   int     // FullPart; 0: unknown
		want   []int64 // part durations, ms
	}{
		{"25 fps", func(n int64) int64 { return n * 40 }, 40, false, 50, 50, 5, []int64{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{"30 fps ms", func(n int64) int64 { return n * 1000 / 30 }, 33, false, 60, 60, 6, []int64{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{"30 fps, unknown", func(n int64) int64 { return n * 1000 / 30 }, 33, false, 60, 0, 0, []int64{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{"48 kHz AAC, 94 frames", func(n int64) int64 { return n * 1024 * 1000 / 48000 }, 21, true, 94, 94, 9, []int64{192, 170, 192, 192, 192, 171, 192, 192, 192, 171, 149}},
		{"48 kHz AAC, 93 frames", func(n int64) int64 { return n * 1024 * 1000 / 48000 }, 21, true, 93, 94, 9, []int64{192, 170, 192, 192, 192, 171, 192, 192, 192, 171, 128}},
		{"48 kHz AAC, 95 frames", func(n int64) int64 { return n * 1024 * 1000 / 48000 }, 21, true, 95, 94, 9, []int64{192, 170, 192, 192, 192, 171, 192, 192, 192, 171, 170}},
		// Two frames more than its predecessor (92 then 94, as 48 kHz AAC cut at a 2 s
		// GOP's keyframes had): planned for one more, it ended in a 21 ms part.
		{"48 kHz AAC, 94 frames after 92", func(n int64) int64 { return n * 1024 * 1000 / 48000 }, 21, true, 94, 92, 9, []int64{192, 170, 192, 171, 192, 171, 192, 170, 192, 171, 192}},
		{"48 kHz AAC, target rule alone", func(n int64) int64 { return n * 1024 * 1000 / 48000 }, 21, true, 94, 0, 0, []int64{192, 192, 192, 192, 192, 192, 192, 192, 192, 192, 85}},
		{"44.1 kHz AAC", func(n int64) int64 { return n * 1024 * 1000 / 44100 }, 23, true, 87, 87, 8, []int64{185, 186, 186, 186, 185, 186, 186, 186, 185, 186, 163}},
		// 30 fps ms timestamps starting on a 34 ms step: the last interval alone
		// predicts 201 ms after five frames; the mean interval keeps six.
		{"30 fps from 33 ms, mean known", func(n int64) int64 { return (n + 1) * 1000 / 30 }, 34, false, 60, 60, 6, []int64{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
		{"30 fps from 33 ms, first segment", func(n int64) int64 { return (n + 1) * 1000 / 30 }, 34, false, 60, 0, 0, []int64{167, 200, 200, 200, 200, 200, 200, 200, 200, 200, 33}},
		{"29.97 fps", func(n int64) int64 { return n * 1001 / 30 }, 33, false, 60, 60, 5, []int64{166, 167, 167, 167, 167, 167, 166, 167, 167, 167, 167, 167}},
		{"1 fps: a frame per part", func(n int64) int64 { return n * 1000 }, 1000, false, 2, 2, 0, []int64{1000, 1000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var durs []int64
			plan := remux.PartPlan{Target: 200 * time.Millisecond, PartStart: tt.times(0), PartKey: true, PartFrames: 1, Expect: tt.expect, FullPart: tt.full, Sync: tt.sync}
			for n := 1; n <= tt.frames; n++ {
				dts := tt.times(int64(n))
				plan.Frames = n
				step := dts - tt.times(int64(n-1)) // the last interval, as the session knows it
				if n == 1 {
					step = tt.step
				}
				if n == tt.frames || remux.PartDue(plan, dts, step) {
					durs = append(durs, dts-plan.PartStart)
					plan.PartStart, plan.PartKey, plan.PartFrames = dts, tt.sync, 0
					plan.Parts++
				}
				plan.PartFrames++
			}
			if fmt.Sprint(durs) != fmt.Sprint(tt.want) {
				t.Errorf("parts %v, want %v", durs, tt.want)
			}
			for i, d := range durs {
				last := i == len(durs)-1
				if d > 200 && tt.step <= 200 {
					t.Errorf("part %d: %d ms, over the target", i, d)
				}
				// Under 85% only where another frame would not fit (29.97 fps: five
				// frames are 166.8 ms, six 200.2; whole-ms timestamps blur that by 1 ms).
				if !last && !tt.sync && i > 0 && d < 170 && d+tt.step+1 < 200 {
					t.Errorf("part %d: %d ms, under 85%% of the target", i, d)
				}
				// The first segment, its mean interval not known yet, may still end in a sliver.
				if last && len(durs) > 1 && d <= tt.step+1 && tt.step < 200 && (tt.full > 0 || tt.sync) {
					t.Errorf("last part a single frame: %v", durs)
				}
			}
		})
	}
}

// TestSegmenterForcedCutsKeepEveryTrackUnderTheCap feeds a keyframe-less stream
// with RTMP's whole-millisecond timestamps (30 fps video: 33, 33, 34 ms; AAC at
// 44.1 kHz: 23 or 24 ms) and measures each track's share of every segment the
// way the CMAF fragments do: from the track's first frame in the segment to its
// first frame after the cut. Every share must stay at or under MaxDuration
// (2.499 s rounds to the target 2); cuts made on audio frames used to let the
// video share reach 2.500 s.
func TestSegmenterForcedCutsKeepEveryTrackUnderTheCap(t *testing.T) {
	var frames []remux.Frame
	for n, a := int64(0), int64(0); n < 30*60; {
		v := n * 1000 / 30
		if aDTS := a * 1024 * 1000 / 44100; aDTS < v {
			frames = append(frames, remux.Frame{Track: audioTrack, DTS: aDTS, Key: true, Data: make([]byte, 10)})
			a++
			continue
		}
		frames = append(frames, remux.Frame{Track: videoTrack, DTS: v, Key: n == 0, Data: make([]byte, 100)})
		n++
	}
	s := remux.Segmenter{Target: 2 * time.Second, MaxDuration: 2499 * time.Millisecond, Video: true}
	const none = -1
	first := [2]int64{none, none} // per kind: first DTS in the open segment
	worst := [2]int64{}
	segments := 0
	for i := range frames {
		f := &frames[i]
		k := 0
		if f.Track.Kind() == remux.KindAudio {
			k = 1
		}
		d := s.Push(f)
		if d.Cuts() {
			segments++
			if d.Reason != remux.CutStart && d.Reason != remux.CutDuration {
				t.Fatalf("frame at %d ms: cut %v", f.DTS, d.Reason)
			}
			if d.Reason == remux.CutDuration && k != 0 {
				t.Errorf("forced cut on an audio frame at %d ms while video flows", f.DTS)
			}
			// The other track's share of the closed segment ends at its next frame.
			prev := first
			first = [2]int64{none, none}
			for j := i; j < len(frames); j++ {
				kj := 0
				if frames[j].Track.Kind() == remux.KindAudio {
					kj = 1
				}
				if prev[kj] != none {
					worst[kj] = max(worst[kj], frames[j].DTS-prev[kj])
					prev[kj] = none
				}
				if prev[0] == none && prev[1] == none {
					break
				}
			}
		}
		if first[k] == none {
			first[k] = f.DTS
		}
	}
	if segments < 20 {
		t.Fatalf("%d segments in 60 s", segments)
	}
	for k, w := range worst {
		if w > 2499 {
			t.Errorf("track %d: a segment's share reached %d ms, cap 2499", k, w)
		}
	}
	t.Logf("%d segments; longest video share %d ms, audio %d ms", segments, worst[0], worst[1])
}

// TestSegmenterGrid checks the Grid rule over long runs: segment starts stay
// within half the nominal duration of their nominal instants (the DASH-IF
// timing model's tolerance for SegmentTemplate@duration), on keyframes where
// the GOP allows, and the grid is never re-anchored by the cuts it makes.
func TestSegmenterGrid(t *testing.T) {
	// ms timestamps of a 29.97 fps stream (frame i at round(i*1001/30)) with a
	// keyframe every 60 frames, or at a scene cut.
	ntsc := func(n int, key func(i int) bool) []remux.Frame {
		out := make([]remux.Frame, n)
		for i := range out {
			out[i] = remux.Frame{Track: videoTrack, DTS: (int64(i)*1001 + 15) / 30, Key: key(i), Data: make([]byte, 100)}
		}
		return out
	}
	tests := []struct {
		name       string
		frames     []remux.Frame
		video      bool
		wantD      int64
		keyframes  bool  // every cut is on a sync point
		maxOff     int64 // largest deviation from the nominal instant expected, ms
		wantForced int   // -1: any, up to one cut in six
	}{
		{"29.97 fps, 60-frame GOP, 1 h", ntsc(30*3600, func(i int) bool { return i%60 == 0 }), true, 2002, true, 1, 0},
		// A scene cut 40 frames into every fifth GOP restarts the encoder's
		// 60-frame count there: the keyframes after it are shifted by 0.67 s
		// each time. A shifted keyframe is taken up to D/2 before its nominal
		// instant rather than a cut forced after it; where no keyframe lies
		// both within D/2 of the nominal instant and within the 2.499 s cap,
		// the cut is forced: 86 of 600 cuts here, where the rule without a
		// grid forces 256 of 515 (the cap) and drifts without bound.
		{"scene cuts shift the GOP", func() []remux.Frame {
			keys := map[int]bool{0: true}
			for i, last, gops := 1, 0, 0; i < 30*1200; i++ {
				if i-last == 60 || i-last == 40 && gops%5 == 4 {
					keys[i], last = true, i
					gops++
				}
			}
			return ntsc(30*1200, func(i int) bool { return keys[i] })
		}(), true, 2002, false, 1001, -1},
		// Audio only: 1024-sample frames at 44.1 kHz in ms: no drift either.
		{"audio 44.1k, 1 h", func() []remux.Frame {
			out := make([]remux.Frame, 3600*44100/1024)
			for i := range out {
				out[i] = remux.Frame{Track: audioTrack, DTS: (int64(i)*1024*1000 + 22050) / 44100, Key: true, Data: make([]byte, 10)}
			}
			return out
		}(), false, 1997, true, 23, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := remux.Segmenter{Target: 2 * time.Second, MaxDuration: 2499 * time.Millisecond, Video: tt.video, Grid: true}
			var (
				start, n, maxOff int64
				forced           int
			)
			for i := range tt.frames {
				f := &tt.frames[i]
				d := s.Push(f)
				if !d.Cuts() {
					continue
				}
				if d.Regrid {
					t.Fatalf("frame %d (dts %d): grid re-anchored", i, f.DTS)
				}
				if d.Forced() {
					forced++
				}
				if tt.keyframes && !d.Independent {
					t.Fatalf("frame %d (dts %d): cut off a sync point (%v)", i, f.DTS, d.Reason)
				}
				switch {
				case n == 0:
					start = f.DTS
				case n == 1:
					if D := s.GridDuration(); D != tt.wantD {
						t.Fatalf("grid duration %d, want %d", D, tt.wantD)
					}
				default:
					off := f.DTS - (start + n*tt.wantD)
					maxOff = max(maxOff, off, -off)
				}
				n++
			}
			t.Logf("%d segments: largest deviation %d ms, %d forced cuts", n, maxOff, forced)
			if maxOff > tt.maxOff || maxOff > tt.wantD/2 || tt.wantForced >= 0 && forced != tt.wantForced || forced > int(n)/6 {
				t.Fatalf("%d segments: largest deviation %d ms (want <= %d), %d forced cuts (want %d)", n, maxOff, tt.maxOff, forced, tt.wantForced)
			}
		})
	}
}

// TestFullPart checks how many frames a part holds at a track's measured mean
// interval: a segment's whole-millisecond length must not cost 30 fps its
// sixth frame (twelve 167 ms parts instead of ten of 200 ms), and 29.97 fps,
// whose six frames last 200.2 ms, keeps five.
func TestFullPart(t *testing.T) {
	for _, tt := range []struct {
		name   string
		frames int
		dur    int64
		want   int
	}{
		{"30 fps over 2000 ms", 60, 2000, 6},
		{"30 fps over 2001 ms", 60, 2001, 6},
		{"29.97 fps over 2002 ms", 60, 2002, 5},
		{"25 fps", 50, 2000, 5},
		{"48 kHz AAC, 93 frames", 93, 1984, 9},
		{"44.1 kHz AAC, 87 frames", 87, 2020, 8},
		{"unknown", 1, 40, 0},
	} {
		if got := remux.FullPart(200*time.Millisecond, tt.frames, tt.dur); got != tt.want {
			t.Errorf("%s: FullPart = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// An encoder with B-frames gives its first keyframe a smaller composition
// offset than the later ones (x265 at 25 fps with 2 B-frames: 80 ms, then
// 120 ms), so a 2 s GOP's keyframes come 1960 ms apart in decode time but 2 s
// apart in presentation time. Each is a 2 s cut, with and without the grid.
func TestSegmenterKeyframesByPresentation(t *testing.T) {
	var frames []remux.Frame
	for i := int64(0); i < 150; i++ {
		f := remux.Frame{Track: videoTrack, DTS: i * 40, Data: make([]byte, 100)}
		switch {
		case i == 0:
			f.Key, f.CTS = true, 80
		case i == 49 || i == 99:
			f.Key, f.CTS = true, 120
		}
		frames = append(frames, f)
	}
	for _, grid := range []bool{false, true} {
		s := &remux.Segmenter{Video: true, Grid: grid}
		cuts := run(s, frames)
		if len(cuts) != 3 || cuts[1].dts != 1960 || cuts[2].dts != 3960 || cuts[1].reason != remux.CutTarget || cuts[2].reason != remux.CutTarget {
			t.Errorf("grid %v: cuts %+v, want CutStart at 0 and CutTarget at 1960 and 3960", grid, cuts)
		}
		if grid && s.GridDuration() != 2000 {
			t.Errorf("grid duration %d ms, want 2000", s.GridDuration())
		}
	}
}
