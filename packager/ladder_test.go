package packager_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

func ladderURIs(t *testing.T, l *packager.Ladder) []string {
	t.Helper()
	var uris []string
	for _, line := range strings.Split(string(l.Multivariant()), "\n") {
		if strings.HasSuffix(line, "v/index.m3u8") {
			uris = append(uris, line)
		}
	}
	return uris
}

func TestLadder(t *testing.T) {
	h, _ := newHub(t, packager.Config{Variants: []string{"_hi", "_lo"}, DisableLowLatency: true})
	if base, ok := h.LadderOf("demo_lo"); !ok || base != "demo" {
		t.Fatalf("LadderOf(demo_lo) = %q, %v", base, ok)
	}
	for _, name := range []string{"demo", "_lo", "demo_mid"} {
		if _, ok := h.LadderOf(name); ok {
			t.Errorf("LadderOf(%q) names a ladder", name)
		}
	}
	if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("a ladder without members: %v", err)
	}
	hi := mustPublish(t, h, "live", "demo_hi")
	lo := mustPublish(t, h, "live", "demo_lo")
	m := media{vStep: 40, gops: []int64{50}, until: 8000}
	m.video, m.audio = videoB, audioA
	publish(t, hi, m)
	m.video = videoA
	publish(t, lo, m)

	l, err := h.Ladder("live", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if got := ladderURIs(t, l); strings.Join(got, " ") != "demo_hi/v/index.m3u8 demo_lo/v/index.m3u8" {
		t.Fatalf("variants %v:\n%s", got, l.Multivariant())
	}
	for _, want := range []string{"RESOLUTION=1280x720", "RESOLUTION=640x360", `URI="demo_hi/a/index.m3u8"`, `URI="demo_lo/a/index.m3u8"`} {
		if !strings.Contains(string(l.Multivariant()), want) {
			t.Errorf("no %s:\n%s", want, l.Multivariant())
		}
	}
	again, _ := h.Ladder("live", "demo")
	if &again.Multivariant()[0] != &l.Multivariant()[0] {
		t.Error("an unchanged ladder rendered again")
	}
	// Published at the same instant with keyframes every 2 s of media: the
	// segments start together.
	if a := l.Alignment(); !a.Aligned || a.Compared < 2 || a.MaxOffset != 0 {
		t.Errorf("alignment %+v, want aligned", a)
	}

	// The low rendition leaves: only the high one is listed; while none is
	// live the lingering ones are.
	closeWriter(t, lo)
	l, _ = h.Ladder("live", "demo")
	if got := ladderURIs(t, l); len(got) != 1 || got[0] != "demo_hi/v/index.m3u8" {
		t.Fatalf("after demo_lo left: %v", got)
	}
	if a := l.Alignment(); a.Aligned || a.Compared != 0 {
		t.Errorf("alignment of one live rendition %+v", a)
	}
	closeWriter(t, hi)
	l, _ = h.Ladder("live", "demo")
	if got := ladderURIs(t, l); len(got) != 2 {
		t.Fatalf("after both left: %v", got)
	}

	// A stream of the ladder's own name wins.
	plain := mustPublish(t, h, "live", "demo")
	defer closeWriter(t, plain)
	if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("ladder beside a stream of its name: %v", err)
	}
}

func TestLadderOff(t *testing.T) {
	h, _ := newHub(t, packager.Config{})
	w := mustPublish(t, h, "live", "demo_hi")
	defer closeWriter(t, w)
	if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("ladder without variants configured: %v", err)
	}
	if _, ok := h.LadderOf("demo_hi"); ok {
		t.Fatal("LadderOf without variants configured")
	}
}

// TestTrackLadder publishes a multitrack stream as ingest does: the stream
// itself (track 0 and the audio) and its video track 1 through OpenTrack,
// fed frames of the same instants interleaved. The ladder is the stream's
// own name, its variants share the stream's audio, and both renditions are
// cut at the same instants with the same media sequence numbers.
func TestTrackLadder(t *testing.T) {
	for _, ll := range []bool{false, true} {
		t.Run(map[bool]string{false: "classic", true: "lowlatency"}[ll], func(t *testing.T) {
			h, _ := newHub(t, packager.Config{DisableLowLatency: !ll})
			w := mustPublish(t, h, "live", "demo")
			if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
				t.Fatalf("a plain stream is a ladder: %v", err)
			}
			tw, err := w.(remux.TrackOpener).OpenTrack(1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.(remux.TrackOpener).OpenTrack(0); err == nil {
				t.Fatal("track 0 opened as a rendition")
			}
			main := media{video: videoB, audio: audioA, vStep: 40, gops: []int64{50}, until: 9000}
			track := media{video: videoA, vStep: 40, gops: []int64{50}, until: 9000}
			for _, p := range []struct {
				w remux.Writer
				m media
			}{{w, main}, {tw, track}} {
				if err := p.w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: p.m.audio != nil}); err != nil {
					t.Fatal(err)
				}
				for _, tr := range []*remux.Track{p.m.video, p.m.audio} {
					if tr != nil {
						if err := p.w.WriteTrack(tr); err != nil {
							t.Fatal(err)
						}
					}
				}
			}
			mf, tf := main.frames(), track.frames()
			for i, j := 0, 0; i < len(mf) || j < len(tf); {
				if j < len(tf) && (i >= len(mf) || tf[j].DTS <= mf[i].DTS) {
					writeFrames(t, tw, tf[j:j+1])
					j++
					continue
				}
				writeFrames(t, w, mf[i:i+1])
				i++
			}

			l, err := h.Ladder("live", "demo")
			if err != nil {
				t.Fatal(err)
			}
			mv := string(l.Multivariant())
			if !l.Tracks || len(l.Members) != 2 || l.Members[1].Snapshot.Name != "demo/v1" || l.Members[1].Prefix != "v1/" {
				t.Fatalf("ladder %+v", l)
			}
			// Ordered by bandwidth, which the fake muxer's bytes leave close.
			if got := ladderURIs(t, l); len(got) != 2 || !slices.Contains(got, "v/index.m3u8") || !slices.Contains(got, "v1/v/index.m3u8") {
				t.Fatalf("variants %v:\n%s", got, mv)
			}
			if strings.Count(mv, "TYPE=AUDIO") != 1 || !strings.Contains(mv, `GROUP-ID="aac",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a/index.m3u8"`) ||
				strings.Count(mv, `AUDIO="aac"`) != 2 || strings.Count(mv, `CODECS="avc1.640028,mp4a.40.2"`) != 1 || strings.Count(mv, `CODECS="avc1.64001f,mp4a.40.2"`) != 1 {
				t.Errorf("not one audio group shared by both variants:\n%s", mv)
			}
			if a := l.Alignment(); !a.Aligned || a.Compared < 3 || a.MaxOffset != 0 {
				t.Errorf("alignment %+v, want aligned", a)
			}
			// The same cuts, numbered alike.
			own := parseFMP4Playlist(t, mustObject(t, l.Members[0].Snapshot, packager.VideoPlaylistPath))
			v1 := parseFMP4Playlist(t, mustObject(t, l.Members[1].Snapshot, packager.VideoPlaylistPath))
			if len(own.names) < 3 || len(own.names) != len(v1.names) {
				t.Fatalf("track 0: %v; track 1: %v", own.names, v1.names)
			}
			for i := range own.names {
				if msnOf(t, own.names[i]) != msnOf(t, v1.names[i]) || own.durs[i] != v1.durs[i] {
					t.Errorf("segment %d: %s of %d ms against %s of %d ms", i, own.names[i], own.durs[i], v1.names[i], v1.durs[i])
				}
			}
			if _, err := h.Stream("live", "demo/v1"); err != nil {
				t.Fatal(err)
			}

			// Ended together, they stay a ladder; a new publish of the name
			// without tracks is a plain stream again.
			closeWriter(t, tw)
			closeWriter(t, w)
			if l, err := h.Ladder("live", "demo"); err != nil || len(l.Listed()) != 2 {
				t.Fatalf("ended multitrack ladder: %v", err)
			}
			w2 := mustPublish(t, h, "live", "demo")
			defer closeWriter(t, w2)
			if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
				t.Fatalf("a republish without tracks is still a ladder: %v", err)
			}
		})
	}
}

func TestTrackOf(t *testing.T) {
	for name, want := range map[string]uint8{"demo/v1": 1, "a/b/v255": 255, "demo/v0": 0, "demo/v01": 0, "demo/v256": 0, "/v1": 0, "demo_v1": 0} {
		base, id, ok := packager.TrackOf(name)
		if ok != (want > 0) || id != want || ok && packager.TrackStreamName(base, id) != name {
			t.Errorf("TrackOf(%q) = %q, %d, %v", name, base, id, ok)
		}
	}
}

// A rendition whose keyframes fall elsewhere (every 1.8 s against 2 s) is
// cut at its own keyframes: the ladder says it is not aligned.
func TestTrackLadderMisaligned(t *testing.T) {
	h, _ := newHub(t, packager.Config{DisableLowLatency: true})
	w := mustPublish(t, h, "live", "demo")
	tw, err := w.(remux.TrackOpener).OpenTrack(1)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, w, media{video: videoB, audio: audioA, vStep: 40, gops: []int64{50}, until: 12000})
	publish(t, tw, media{video: videoA, vStep: 40, gops: []int64{45}, until: 12000})
	l, err := h.Ladder("live", "demo")
	if err != nil {
		t.Fatal(err)
	}
	a := l.Alignment()
	t.Logf("alignment %+v", a)
	if a.Aligned || a.Compared == 0 || a.MaxOffset < 100*time.Millisecond {
		t.Errorf("alignment %+v, want misaligned", a)
	}
	closeWriter(t, tw)
	closeWriter(t, w)
}

// TestTrackLadderAudio publishes a multitrack stream with a second audio
// track as ingest does (OpenAudioTrack) and GOPs of 3 s against a 2 s
// target: the audio rendition is cut where the stream cuts (not at its own
// target), numbered alike; the multivariant playlist lists both audio tracks
// in the one group, the metadata's label on track 1, and the MPD has an
// audio AdaptationSet per track.
func TestTrackLadderAudio(t *testing.T) {
	for _, ll := range []bool{false, true} {
		t.Run(map[bool]string{false: "classic", true: "lowlatency"}[ll], func(t *testing.T) {
			h, _ := newHub(t, packager.Config{DisableLowLatency: !ll})
			w := mustPublish(t, h, "live", "demo")
			aw, err := w.(remux.AudioTrackOpener).OpenAudioTrack(1)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.(remux.AudioTrackOpener).OpenAudioTrack(0); err == nil {
				t.Fatal("audio track 0 opened as a rendition")
			}
			md := &remux.Metadata{HasVideo: true, HasAudio: true, AudioLabels: []remux.TrackLabel{{ID: 1, Name: "Commentary", Language: "en", Role: "commentary"}}}
			for _, err := range []error{w.WriteMetadata(md), w.WriteTrack(videoB), w.WriteTrack(audioA), aw.WriteMetadata(&remux.Metadata{HasAudio: true}), aw.WriteTrack(audioA)} {
				if err != nil {
					t.Fatal(err)
				}
			}
			mf := media{video: videoB, audio: audioA, vStep: 40, gops: []int64{75}, until: 12000}.frames()
			af := media{audio: audioA, until: 12000}.frames()
			interleave(t, w, mf, aw, af)
			l, err := h.Ladder("live", "demo")
			if err != nil {
				t.Fatal(err)
			}
			if !l.Tracks || len(l.Members) != 2 || l.Members[1].Snapshot.Name != "demo/a1" || l.Members[1].Prefix != "a1/" {
				t.Fatalf("ladder %+v", l)
			}
			mv := string(l.Multivariant())
			for _, want := range []string{
				`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Audio 1",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a/index.m3u8"`,
				`#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="Commentary",LANGUAGE="en",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="a1/a/index.m3u8"`,
			} {
				if !strings.Contains(mv, want) {
					t.Errorf("multivariant playlist lacks %s:\n%s", want, mv)
				}
			}
			if n := strings.Count(mv, "#EXT-X-STREAM-INF:"); n != 1 || strings.Count(mv, `AUDIO="aac"`) != 1 {
				t.Errorf("%d variants, want 1 referring to the group:\n%s", n, mv)
			}
			own := parseFMP4Playlist(t, mustObject(t, l.Members[0].Snapshot, packager.AudioPlaylistPath))
			a1 := parseFMP4Playlist(t, mustObject(t, l.Members[1].Snapshot, packager.AudioPlaylistPath))
			if len(own.names) < 3 || len(own.names) != len(a1.names) {
				t.Fatalf("track 0: %v %v; audio track 1: %v %v", own.names, own.durs, a1.names, a1.durs)
			}
			t.Logf("track 0's audio %v %v, audio track 1 %v %v", own.names, own.durs, a1.names, a1.durs)
			for i := range own.names {
				if d := own.durs[i] - a1.durs[i]; msnOf(t, own.names[i]) != msnOf(t, a1.names[i]) || d < -22 || d > 22 || a1.durs[i] < 2900 {
					t.Errorf("segment %d: %s of %d ms against %s of %d ms", i, own.names[i], own.durs[i], a1.names[i], a1.durs[i])
				}
			}
			mpd := string(h.LadderMPD(l))
			if strings.Count(mpd, `contentType="audio"`) != 2 || !strings.Contains(mpd, `lang="en">`) ||
				!strings.Contains(mpd, "<Label>Commentary</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"commentary\"/>") ||
				!strings.Contains(mpd, "<Label>Audio 1</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>") ||
				!strings.Contains(mpd, `initialization="a1/a/init-`) {
				t.Errorf("MPD without an audio AdaptationSet per track:\n%s", mpd)
			}
			closeWriter(t, aw)
			closeWriter(t, w)
		})
	}
}

// TestTrackLadderAudioLate opens an audio track's rendition mid-stream, and
// its first frames come after the stream has cut another segment: the
// rendition's segments must still carry the numbers of the segments they play
// beside, its first one that of the segment its first frame falls in.
func TestTrackLadderAudioLate(t *testing.T) {
	for _, ll := range []bool{false, true} {
		t.Run(map[bool]string{false: "classic", true: "lowlatency"}[ll], func(t *testing.T) {
			h, w, mf := publishUntil(t, ll, 75, 18000, 7000)
			i := 0
			aw, err := w.(remux.AudioTrackOpener).OpenAudioTrack(1)
			if err != nil {
				t.Fatal(err)
			}
			if err := aw.WriteMetadata(&remux.Metadata{HasAudio: true}); err != nil {
				t.Fatal(err)
			}
			if err := aw.WriteTrack(audioA); err != nil {
				t.Fatal(err)
			}
			// The stream cuts at 9 s before the track's first frame, at 9.5 s.
			for ; i < len(mf) && mf[i].DTS < 9500; i++ {
				writeFrames(t, w, mf[i:i+1])
			}
			af := media{audio: audioA, start: 9500, until: 18000}.frames()
			interleave(t, w, mf[i:], aw, af)
			l, err := h.Ladder("live", "demo")
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Members) != 2 {
				t.Fatalf("ladder %+v", l)
			}
			own := parseFMP4Playlist(t, mustObject(t, l.Members[0].Snapshot, packager.AudioPlaylistPath))
			a1 := parseFMP4Playlist(t, mustObject(t, l.Members[1].Snapshot, packager.AudioPlaylistPath))
			t.Logf("track 0's audio %v %v, audio track 1 %v %v", own.names, own.durs, a1.names, a1.durs)
			durs := map[uint64]int64{}
			for k, name := range own.names {
				durs[msnOf(t, name)] = own.durs[k]
			}
			if len(a1.names) < 2 {
				t.Fatalf("audio track 1 lists %d segments", len(a1.names))
			}
			// Its first segment starts at 9.5 s in the stream's segment of 9 to 12 s.
			if first, want := msnOf(t, a1.names[0]), msnOf(t, own.names[len(own.names)-len(a1.names)]); first != want || a1.durs[0] > 2600 {
				t.Errorf("audio track 1's first segment %s of %d ms, want number %d (9.5 to 12 s)", a1.names[0], a1.durs[0], want)
			}
			if last, want := msnOf(t, a1.names[len(a1.names)-1]), msnOf(t, own.names[len(own.names)-1]); last != want {
				t.Errorf("audio track 1's last segment is number %d, the stream's %d", last, want)
			}
			for k := 1; k < len(a1.names); k++ {
				d, ok := durs[msnOf(t, a1.names[k])]
				if !ok || d-a1.durs[k] < -22 || d-a1.durs[k] > 22 {
					t.Errorf("audio track 1's segment %s of %d ms: the stream's of that number %d ms (listed %v)", a1.names[k], a1.durs[k], d, ok)
				}
			}
			closeWriter(t, aw)
			closeWriter(t, w)
		})
	}
}

// interleave writes mf to w and af to aw in decode-time order, as one
// connection's multitrack messages arrive.
func interleave(t *testing.T, w remux.Writer, mf []remux.Frame, aw remux.Writer, af []remux.Frame) {
	t.Helper()
	for i, j := 0, 0; i < len(mf) || j < len(af); {
		if j < len(af) && (i >= len(mf) || af[j].DTS < mf[i].DTS) {
			writeFrames(t, aw, af[j:j+1])
			j++
			continue
		}
		writeFrames(t, w, mf[i:i+1])
		i++
	}
}

// TestTrackLadderVideoLate opens a video track's rendition mid-stream, its
// first keyframe 3 s and a cut of the stream's later, written before and after
// the stream's own keyframe of that instant: the rendition's segments must
// carry the numbers of the stream's segments of the same instants.
func TestTrackLadderVideoLate(t *testing.T) {
	for _, ll := range []bool{false, true} {
		for _, trackFirst := range []bool{false, true} {
			t.Run(fmt.Sprintf("lowlatency=%v/trackfirst=%v", ll, trackFirst), func(t *testing.T) {
				h, w, mf := publishUntil(t, ll, 50, 16000, 5000)
				i := 0
				tw, err := w.(remux.TrackOpener).OpenTrack(1)
				if err != nil {
					t.Fatal(err)
				}
				for _, err := range []error{tw.WriteMetadata(&remux.Metadata{HasVideo: true}), tw.WriteTrack(videoA)} {
					if err != nil {
						t.Fatal(err)
					}
				}
				for ; mf[i].DTS < 8000; i++ {
					writeFrames(t, w, mf[i:i+1])
				}
				tf := media{video: videoA, vStep: 40, gops: []int64{50}, start: 8000, until: 16000}.frames()
				for j := 0; i < len(mf) || j < len(tf); {
					if j < len(tf) && (i >= len(mf) || tf[j].DTS < mf[i].DTS || trackFirst && tf[j].DTS == mf[i].DTS) {
						writeFrames(t, tw, tf[j:j+1])
						j++
						continue
					}
					writeFrames(t, w, mf[i:i+1])
					i++
				}
				l, err := h.Ladder("live", "demo")
				if err != nil || len(l.Members) != 2 {
					t.Fatalf("ladder %+v: %v", l, err)
				}
				own := parseFMP4Playlist(t, mustObject(t, l.Members[0].Snapshot, packager.VideoPlaylistPath))
				v1 := parseFMP4Playlist(t, mustObject(t, l.Members[1].Snapshot, packager.VideoPlaylistPath))
				t.Logf("track 0 %v %v, track 1 %v %v", own.names, own.durs, v1.names, v1.durs)
				// 2 s segments: the stream's segment n starts at 2n s, the rendition's first at 8 s.
				for k, name := range v1.names {
					if got, want := msnOf(t, name), uint64(4+k); got != want || v1.durs[k] != 2000 {
						t.Errorf("track 1's segment %d is %s of %d ms, want number %d", k, name, v1.durs[k], want)
					}
				}
				if len(v1.names) < 3 || msnOf(t, v1.names[len(v1.names)-1]) != msnOf(t, own.names[len(own.names)-1]) {
					t.Errorf("track 1 lists %v, the stream %v", v1.names, own.names)
				}
				closeWriter(t, tw)
				closeWriter(t, w)
			})
		}
	}
}

// publishUntil publishes live/demo on a new hub (classic or low-latency): 25
// fps video in GOPs of gop frames and audio, until ms, of which it writes the
// frames before at; it returns the rest.
func publishUntil(t *testing.T, ll bool, gop, until, at int64) (*packager.Hub, remux.Writer, []remux.Frame) {
	t.Helper()
	h, _ := newHub(t, packager.Config{DisableLowLatency: !ll})
	w := mustPublish(t, h, "live", "demo")
	for _, err := range []error{w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true}), w.WriteTrack(videoB), w.WriteTrack(audioA)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	mf := media{video: videoB, audio: audioA, vStep: 40, gops: []int64{gop}, until: until}.frames()
	i := 0
	for ; i < len(mf) && mf[i].DTS < at; i++ {
		writeFrames(t, w, mf[i:i+1])
	}
	return h, w, mf[i:]
}
