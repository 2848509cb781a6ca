package packager_test

import (
	"slices"
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

var (
	audio44 = &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 44100, Config: []byte{0x12, 0x10}, CodecString: "mp4a.40.2", AudioObjectType: 2, SampleRate: 44100, Channels: 2}
	video30 = &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000, Config: []byte{1, 0x64, 0, 0x1e}, CodecString: "avc1.64001e", Width: 640, Height: 360, NALULengthSize: 4}
)

// rtmpMedia is media with RTMP's millisecond timestamps at rates that do not
// divide 1000: video at fps (floor(n*1000/fps)), AAC frames of 1024 samples at the
// audio track's sample rate, keyframes at the listed GOP lengths (cycled).
type rtmpMedia struct {
	video, audio *remux.Track
	fps          int64
	gops         []int64
	until        int64 // ms
}

func (m rtmpMedia) frames() []remux.Frame {
	var out []remux.Frame
	var vn, an, inGOP int64
	gi := 0
	for {
		vt := vn * 1000 / max(m.fps, 1)
		var at int64
		if m.audio != nil {
			at = an * 1024 * 1000 / int64(m.audio.SampleRate)
		}
		vOK := m.video != nil && vt < m.until
		aOK := m.audio != nil && at < m.until
		if !vOK && !aOK {
			return out
		}
		if vOK && (!aOK || vt <= at) {
			out = append(out, remux.Frame{Track: m.video, DTS: vt, CTS: 66, Key: inGOP == 0, Data: []byte{0, 0, 0, 2, 0x65, byte(vn)}})
			inGOP++
			if len(m.gops) > 0 && inGOP >= m.gops[gi%len(m.gops)] {
				inGOP, gi = 0, gi+1
			}
			vn++
			continue
		}
		out = append(out, remux.Frame{Track: m.audio, DTS: at, Key: true, Data: []byte{0x21, 0x10, byte(an)}})
		an++
	}
}

func (m rtmpMedia) publish(t *testing.T, w remux.Writer) []remux.Frame {
	t.Helper()
	if err := w.WriteMetadata(&remux.Metadata{HasVideo: m.video != nil, HasAudio: m.audio != nil}); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*remux.Track{m.video, m.audio} {
		if tr != nil {
			if err := w.WriteTrack(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	frames := m.frames()
	writeFrames(t, w, frames)
	return frames
}

// ticks is round(ms*timescale/1000), the conversion remux/cmaf uses.
func ticks(ms int64, timescale uint32) uint64 { return uint64((ms*int64(timescale) + 500) / 1000) }

// TestCMAFTimelines feeds media whose frame intervals do not divide the timescale
// (44.1 kHz audio, 30 fps video in ms) with odd GOPs and checks, live and after
// unpublish: the TS, fMP4 and DASH outputs list the same media sequence numbers;
// every SegmentTimeline entry starts where the previous ends and equals the
// stored fragment's tfdt and summed sample durations; every video fragment starts
// with a sync sample; and after Close the fragments hold every frame and their
// durations add up to the media.
func TestCMAFTimelines(t *testing.T) {
	tests := []struct {
		name    string
		m       rtmpMedia
		classic bool // low latency off: segments cut without the DASH segment grid
	}{
		// GOPs of 4.33, 1.5+2.03, 3.33, 1.1+2.33 and 4 s: cuts at keyframes only,
		// none forced, segments of uneven length. (With low latency on, the
		// segment grid forces a cut where the tolerance around the nominal
		// duration runs out first.)
		{"av 44.1k odd gops", rtmpMedia{video: video30, audio: audio44, fps: 30, gops: []int64{130, 45, 61, 100, 33, 70, 120}, until: 41000}, true},
		{"av 48k 25fps", rtmpMedia{video: videoA, audio: audioA, fps: 25, gops: []int64{50}, until: 13000}, false},
		{"audio only 44.1k", rtmpMedia{audio: audio44, until: 15000}, false},
		// 2 s, then 2.467 s: the longest GOP that stays under the 2.499 s cap
		// (a 2.500 s one would round above the target and is cut mid-GOP).
		{"video only 30fps", rtmpMedia{video: video30, fps: 30, gops: []int64{60, 74}, until: 12000}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, c := newHub(t, packager.Config{WindowSegments: 1000, DisableLowLatency: tt.classic})
			w := mustPublish(t, h, "live", "a")
			frames := tt.m.publish(t, w)
			st := mustStream(t, h, "live", "a")
			checkCMAF(t, st, nil)
			c.Advance(10e9)
			closeWriter(t, w)
			checkCMAF(t, st, frames)
		})
	}
}

// checkCMAF checks the CMAF outputs of st against its TS playlist; with frames
// (after Close) also against the media.
func checkCMAF(t *testing.T, st *packager.Stream, frames []remux.Frame) {
	t.Helper()
	p := snapshotPlaylist(t, st)
	var tsMSN []uint64
	for _, s := range p.segs {
		tsMSN = append(tsMSN, msnOf(t, s.name))
	}
	m := parseMPD(t, st)
	wantType := "dynamic"
	if frames != nil {
		wantType = "static"
	}
	if m.Type != wantType || m.Profiles != "urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019" {
		t.Fatalf("MPD type %q profiles %q", m.Type, m.Profiles)
	}
	if (m.MinimumUpdatePeriod == "") == (frames == nil) || (m.MediaPresentationDuration == "") == (frames != nil) {
		t.Fatalf("MPD %s: minimumUpdatePeriod %q mediaPresentationDuration %q", m.Type, m.MinimumUpdatePeriod, m.MediaPresentationDuration)
	}
	if m.UTCTiming.Value != packager.OriginPlaceholder+"/time" {
		t.Fatalf("UTCTiming %q", m.UTCTiming.Value)
	}
	kinds := map[remux.Kind]bool{}
	for _, f := range frames {
		kinds[f.Track.Kind()] = true
	}
	for _, k := range []struct {
		kind        remux.Kind
		contentType string
		playlist    string
	}{{remux.KindVideo, "video", packager.VideoPlaylistPath}, {remux.KindAudio, "audio", packager.AudioPlaylistPath}} {
		entries, timescale := expandTimeline(t, st, m, k.contentType)
		obj, ok := st.Object(k.playlist)
		if len(entries) == 0 {
			if ok {
				t.Fatalf("%s playlist without %s adaptation set", k.playlist, k.contentType)
			}
			if kinds[k.kind] {
				t.Fatalf("no %s in the MPD", k.contentType)
			}
			continue
		}
		if !ok || obj.ContentType != packager.ContentTypePlaylist || obj.Immutable {
			t.Fatalf("%s: found %v, %q", k.playlist, ok, obj.ContentType)
		}
		pl := parseFMP4Playlist(t, obj.Data)
		if pl.ended != (frames != nil) || pl.gaps != 0 {
			t.Fatalf("%s: ended %v, %d gaps", k.playlist, pl.ended, pl.gaps)
		}
		var plMSN, mpdMSN []uint64
		for _, n := range pl.names {
			plMSN = append(plMSN, msnOf(t, n))
		}
		for _, e := range entries {
			mpdMSN = append(mpdMSN, e.n)
		}
		if !slices.Equal(tsMSN, plMSN) || !slices.Equal(tsMSN, mpdMSN) {
			t.Fatalf("%s media sequence numbers: TS %v, fMP4 %v, DASH %v", k.contentType, tsMSN, plMSN, mpdMSN)
		}
		samples := 0
		var prev *frag
		for i, e := range entries {
			obj, ok := st.Object(e.path)
			if !ok {
				t.Fatalf("%s not served", e.path)
			}
			if !obj.Immutable || obj.ContentType != map[remux.Kind]string{remux.KindVideo: packager.ContentTypeVideoMP4, remux.KindAudio: packager.ContentTypeAudioMP4}[k.kind] {
				t.Fatalf("%s: content type %q immutable %v", e.path, obj.ContentType, obj.Immutable)
			}
			f, err := parseFragment(obj.Data)
			if err != nil {
				t.Fatalf("%s: %v", e.path, err)
			}
			// DASH times a segment by its earliest presentation: tfdt plus the
			// opening sample's composition offset.
			ept := uint64(int64(f.tfdt) + int64(f.firstCTO))
			if e.nominal {
				// SegmentTemplate@duration: the DASH-IF timing model allows the
				// true start to deviate from the nominal one by half of it.
				if max(ept, e.t)-min(ept, e.t) > e.d/2 {
					t.Fatalf("%s: starts at %d, nominally at %d: more than half of @duration %d off", e.path, ept, e.t, e.d)
				}
			} else if ept != e.t {
				t.Fatalf("%s: tfdt %d + composition offset %d, MPD t %d", e.path, f.tfdt, f.firstCTO, e.t)
			}
			if f.duration() != e.d && i+1 < len(entries) && !e.nominal {
				if next, ok := st.Object(entries[i+1].path); ok {
					if nf, err := parseFragment(next.Data); err == nil && int64(e.d) != int64(f.duration())+int64(nf.firstCTO)-int64(f.firstCTO) {
						t.Fatalf("%s: duration %d, MPD d %d, composition offsets %d then %d", e.path, f.duration(), e.d, f.firstCTO, nf.firstCTO)
					}
				}
			}
			if i > 0 && e.t != entries[i-1].t+entries[i-1].d {
				t.Fatalf("%s timeline: segment %d starts at %d, previous ended at %d", k.contentType, e.n, e.t, entries[i-1].t+entries[i-1].d)
			}
			if prev != nil && f.tfdt != prev.tfdt+prev.duration() {
				t.Fatalf("%s: tfdt %d, previous fragment ended at %d", e.path, f.tfdt, prev.tfdt+prev.duration())
			}
			if k.kind == remux.KindVideo && !f.firstSync {
				t.Fatalf("%s does not start with a sync sample", e.path)
			}
			if want := (int64(f.duration())*1000 + int64(timescale)/2) / int64(timescale); pl.durs[i] != want {
				t.Fatalf("%s: EXTINF %d ms, fragment %d ticks = %d ms", e.path, pl.durs[i], f.duration(), want)
			}
			samples += len(f.durations)
			prev = &f
		}
		if frames == nil {
			continue
		}
		var kf []remux.Frame
		for _, f := range frames {
			if f.Track.Kind() == k.kind {
				kf = append(kf, f)
			}
		}
		if samples != len(kf) {
			t.Fatalf("%s fragments hold %d samples, source %d frames", k.contentType, samples, len(kf))
		}
		last := kf[len(kf)-1].DTS
		end := last + kf[len(kf)-1].DTS - kf[len(kf)-2].DTS
		if k.kind == remux.KindAudio {
			end = last + (1024*1000+int64(timescale)/2)/int64(timescale)
		}
		// The timeline is in presentation time; the test media's composition
		// offset is the same for every keyframe.
		cto := int64(kf[0].CTS)
		first := entries[0].t
		lastE := entries[len(entries)-1]
		if first != ticks(kf[0].DTS+cto, timescale) || lastE.t+lastE.d != ticks(end+cto, timescale) {
			t.Fatalf("%s timeline %d..%d, media %d..%d", k.contentType, first, lastE.t+lastE.d, ticks(kf[0].DTS+cto, timescale), ticks(end+cto, timescale))
		}
	}
}
