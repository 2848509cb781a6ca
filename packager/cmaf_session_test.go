package packager_test

import (
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// TestCMAFAudioStops: audio ends mid-stream while video goes on. The segment
// whose audio never continues is published at its cut like every other, its
// audio fragment ending one AAC frame after its last sample; later segments
// have no audio fragment and the audio playlist marks them as gaps.
func TestCMAFAudioStops(t *testing.T) {
	h, _ := newHub(t, packager.Config{WindowSegments: 100})
	w := mustPublish(t, h, "live", "a")
	st := mustStream(t, h, "live", "a")
	audio := media{audio: audioA, until: 3000}.frames()
	video := media{video: videoA, vStep: 40, gops: []int64{50}, until: 12000}.frames()
	var frames []remux.Frame
	for len(audio)+len(video) > 0 {
		if len(audio) > 0 && (len(video) == 0 || audio[0].DTS < video[0].DTS) {
			frames, audio = append(frames, audio[0]), audio[1:]
		} else {
			frames, video = append(frames, video[0]), video[1:]
		}
	}
	if err := w.WriteTrack(videoA); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTrack(audioA); err != nil {
		t.Fatal(err)
	}
	var lastAudio int64
	for i := range frames {
		f := &frames[i]
		if f.Track == audioA {
			lastAudio = f.DTS
		}
		if err := w.WriteFrame(f); err != nil {
			t.Fatal(err)
		}
		segs := 0
		if st.Snapshot().TSPlaylist != nil {
			segs = len(snapshotPlaylist(t, st).segs)
		}
		switch f.DTS {
		case 3960: // the last video frame before the cut
			if segs != 1 {
				t.Fatalf("at %d ms: %d segments published, want 1", f.DTS, segs)
			}
		case 4000: // the keyframe's cut lists the segment at once, audio frame or not
			if segs != 2 {
				t.Fatalf("at %d ms: %d segments published, want 2", f.DTS, segs)
			}
		}
	}
	closeWriter(t, w)
	checkAudioGaps(t, st, lastAudio)
}

func checkAudioGaps(t *testing.T, st *packager.Stream, lastAudio int64) {
	t.Helper()
	m := parseMPD(t, st)
	entries, timescale := expandTimeline(t, st, m, "audio")
	if len(entries) != 2 {
		t.Fatalf("%d audio segments, want 2", len(entries))
	}
	last := entries[1]
	if end := ticks(lastAudio+21, timescale); last.t+last.d != end {
		t.Fatalf("last audio fragment ends at %d, want %d (last frame + 1024 samples)", last.t+last.d, end)
	}
	obj, _ := st.Object(packager.AudioPlaylistPath)
	if n := strings.Count(string(obj.Data), "#EXT-X-GAP\n"); n != 4 {
		t.Fatalf("%d gaps in the audio playlist, want 4:\n%s", n, obj.Data)
	}
	v, _ := expandTimeline(t, st, m, "video")
	if len(v) != 6 {
		t.Fatalf("%d video segments, want 6", len(v))
	}
}

// TestCMAFRepublishPeriods: republishing at once with timestamps starting over
// opens a new Period that starts where the previous one's media ended, with a
// new init segment; Periods keep their ids and starts while they are listed;
// init segments stay served while a segment needs them and their bytes are
// counted in the store.
func TestCMAFRepublishPeriods(t *testing.T) {
	h, c := newHub(t, packager.Config{WindowSegments: 3})
	st := mustStream0(t, h)
	var periods []string
	for i := 0; i < 3; i++ {
		w := mustPublish(t, h, "live", "a")
		publish(t, w, media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 4000})
		closeWriter(t, w)
		m := parseMPD(t, st)
		if m.Type != "static" {
			t.Fatalf("MPD type %q after unpublish", m.Type)
		}
		var prevEnd time.Duration
		for j, p := range m.Periods {
			start := parseDur(t, p.Start)
			if j > 0 && start < prevEnd {
				t.Fatalf("period %s starts at %v, before the previous one ended at %v", p.ID, start, prevEnd)
			}
			var dur time.Duration
			for _, as := range p.AdaptationSets {
				tpl := as.Representations[0].Template
				if s := tpl.S[0]; s.T < tpl.PTO {
					t.Fatalf("period %s: first t %d before presentationTimeOffset %d", p.ID, s.T, tpl.PTO)
				}
				last := tpl.S[len(tpl.S)-1]
				end := last.T + uint64(last.R+1)*last.D - tpl.PTO
				dur = max(dur, time.Duration(end)*time.Second/time.Duration(tpl.Timescale))
				if _, ok := st.Object(tpl.Initialization); !ok {
					t.Fatalf("period %s: init %s not served", p.ID, tpl.Initialization)
				}
			}
			prevEnd = start + dur
			if k := len(periods) - (len(m.Periods) - 1) + j; j < len(m.Periods)-1 && (k < 0 || periods[k] != p.ID) {
				t.Fatalf("period ids %v, now %s at %d", periods, p.ID, j)
			}
		}
		periods = append(periods, m.Periods[len(m.Periods)-1].ID)
		if mpd := parseDur(t, m.MediaPresentationDuration); mpd != prevEnd {
			t.Fatalf("mediaPresentationDuration %v, last period ends at %v", mpd, prevEnd)
		}
	}
	if periods[0] == periods[1] || periods[1] == periods[2] {
		t.Fatalf("period ids %v", periods)
	}
	// The first session's init is still served for the segments kept after
	// leaving the window; once they expire it goes, and the store shrinks by
	// exactly the bytes of what is no longer served (and the spare capacity of
	// their buffers, which the store counts too).
	first := "v/init-" + strings.Split(firstSegment(t, st), "-")[0] + "-1.mp4"
	if _, ok := st.Object(first); !ok {
		t.Fatalf("%s not served while its segments are kept", first)
	}
	c.Advance(time.Minute)
	w := mustPublish(t, h, "live", "a")
	h.Sweep()
	if _, ok := st.Object(first); ok {
		t.Fatalf("%s still served after its segments expired", first)
	}
	spare := packager.SpareBytes(st)
	if got, want := st.Snapshot().Bytes, servedBytes(t, st); got != want+spare || spare > want/2 {
		t.Fatalf("store counts %d bytes, objects served hold %d, spare capacity %d", got, want, spare)
	}
	closeWriter(t, w)
}

func mustStream0(t *testing.T, h *packager.Hub) *packager.Stream {
	t.Helper()
	w := mustPublish(t, h, "live", "a")
	closeWriter(t, w)
	return mustStream(t, h, "live", "a")
}

func firstSegment(t *testing.T, st *packager.Stream) string {
	t.Helper()
	return snapshotPlaylist(t, st).segs[0].name
}

// servedBytes adds up every object the stream serves: window segments, their
// fragments and init segments (segments kept after leaving the window are
// expected to be gone).
func servedBytes(t *testing.T, st *packager.Stream) int64 {
	t.Helper()
	var n int64
	seen := map[string]bool{}
	add := func(path string) {
		if seen[path] {
			return
		}
		seen[path] = true
		obj, ok := st.Object(path)
		if !ok {
			t.Fatalf("%s not served", path)
		}
		n += int64(len(obj.Data))
	}
	for _, s := range snapshotPlaylist(t, st).segs {
		add("ts/" + s.name)
	}
	for _, pl := range []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath} {
		obj, ok := st.Object(pl)
		if !ok {
			continue
		}
		p := parseFMP4Playlist(t, obj.Data)
		for _, m := range p.maps {
			add(pl[:2] + m)
		}
		for _, s := range p.names {
			add(pl[:2] + s)
		}
	}
	return n
}

func parseDur(t *testing.T, s string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(strings.ToLower(strings.TrimPrefix(s, "PT")))
	if err != nil {
		t.Fatalf("duration %q: %v", s, err)
	}
	return d
}

// TestMultivariantClosedCaptions: the variant says CLOSED-CAPTIONS=NONE while its
// video carries no CEA-608/708 captions, and names a CLOSED-CAPTIONS rendition
// once a listed segment's video does (RFC 8216bis 4.4.6.2).
func TestMultivariantClosedCaptions(t *testing.T) {
	// An SEI NAL unit with one A/53 caption message, before the slice.
	sei := []byte{0, 0, 0, 21, 6, 4, 17, 0xB5, 0x00, 0x31, 'G', 'A', '9', '4', 0x03, 0xC2, 0xFF, 0xFC, 0x94, 0x20, 0xFC, 0x00, 0x00, 0xFF, 0x80}
	for _, tc := range []struct {
		name     string
		captions bool
		want     []string
	}{
		{"none", false, []string{",CLOSED-CAPTIONS=NONE\n"}},
		{"cea608", true, []string{`#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"` + "\n", `,CLOSED-CAPTIONS="cc"` + "\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := newHub(t, packager.Config{})
			w := mustPublish(t, h, "live", "cc")
			st := mustStream(t, h, "live", "cc")
			m := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 6000}
			for _, tr := range []*remux.Track{videoA, audioA} {
				if err := w.WriteTrack(tr); err != nil {
					t.Fatal(err)
				}
			}
			frames := m.frames()
			if tc.captions {
				for i := range frames {
					if frames[i].Track == videoA {
						frames[i].Data = append(append([]byte{}, sei...), frames[i].Data...)
					}
				}
			}
			writeFrames(t, w, frames)
			obj, ok := st.Object(packager.MultivariantPath)
			if !ok {
				t.Fatal("no multivariant playlist")
			}
			for _, want := range tc.want {
				if !strings.Contains(string(obj.Data), want) {
					t.Errorf("multivariant playlist lacks %q:\n%s", want, obj.Data)
				}
			}
			if !tc.captions && strings.Contains(string(obj.Data), "TYPE=CLOSED-CAPTIONS") {
				t.Errorf("captions announced without any:\n%s", obj.Data)
			}
		})
	}
}

// TestPartsSpreadEvenly publishes 30 fps video with RTMP's whole-millisecond
// timestamps (33, 33, 34 ms: a 2 s GOP of 60 frames) and 48 kHz AAC, and checks
// every segment's parts once listed: each at most PART-TARGET, video parts six
// frames (200 ms) but a segment's last, no part that is not INDEPENDENT under 85%
// of the target unless it is its segment's last (RFC 8216bis 4.4.4.9), and no
// segment ending in a sliver under half the target (a one-frame last part
// stalled hls.js 1.7.4; 48 kHz AAC used to end every segment in 43 to 85 ms).
// The first segment, cut before a frame interval is known, is left out.
// Timestamps are rounded as ffmpeg's FLV muxer rounds them: 0, 33, 67, 100 ms.
func TestPartsSpreadEvenly(t *testing.T) {
	h, _ := newHub(t, packager.Config{PartTarget: 200 * time.Millisecond})
	w := mustPublish(t, h, "live", "parts")
	st := mustStream(t, h, "live", "parts")
	for _, tr := range []*remux.Track{videoA, audioA} {
		if err := w.WriteTrack(tr); err != nil {
			t.Fatal(err)
		}
	}
	checked := map[string]bool{}
	check := func(path string) {
		obj, ok := st.Object(path)
		if !ok {
			return
		}
		p := parseFMP4Playlist(t, obj.Data)
		for i, parts := range p.partsOf {
			if len(parts) == 0 || i == 0 && p.names[i] == p.names[0] && strings.HasSuffix(p.names[0], "-0.m4s") || checked[path+p.names[i]] {
				continue
			}
			checked[path+p.names[i]] = true
			var durs []int64
			for _, pt := range parts {
				durs = append(durs, pt.dur)
			}
			for k, pt := range parts {
				last := k == len(parts)-1
				if pt.dur > 200 {
					t.Errorf("%s %s: part %d is %d ms, over PART-TARGET: %v", path, p.names[i], k, pt.dur, durs)
				}
				if !last && !pt.indep && pt.dur < 170 {
					t.Errorf("%s %s: part %d is %d ms, under 85%% of PART-TARGET: %v", path, p.names[i], k, pt.dur, durs)
				}
				if last && pt.dur < 100 {
					t.Errorf("%s %s: ends in a %d ms sliver: %v", path, p.names[i], pt.dur, durs)
				}
				if path == packager.VideoPlaylistPath && !last && pt.dur != 200 {
					t.Errorf("%s %s: part %d is %d ms, want six frames (200 ms): %v", path, p.names[i], k, pt.dur, durs)
				}
			}
		}
	}
	var an int64
	for n := int64(0); n < 30*20; n++ {
		v := (n*1000 + 15) / 30
		for ; (an*1024*1000+24000)/48000 < v; an++ {
			f := remux.Frame{Track: audioA, DTS: (an*1024*1000 + 24000) / 48000, Key: true, Data: []byte{0x21, 0x10}}
			if err := w.WriteFrame(&f); err != nil {
				t.Fatal(err)
			}
		}
		f := remux.Frame{Track: videoA, DTS: v, Key: n%60 == 0, Data: []byte{0, 0, 0, 1, 0x65}}
		if err := w.WriteFrame(&f); err != nil {
			t.Fatal(err)
		}
		if n%60 == 59 {
			check(packager.VideoPlaylistPath)
			check(packager.AudioPlaylistPath)
		}
	}
	if len(checked) < 2*6 {
		t.Fatalf("only %d segments' parts checked", len(checked))
	}
}
