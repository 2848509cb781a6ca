package main

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// multitrackCase is a multitrack fixture, the size of each video track and
// the tone of each audio track.
type multitrackCase struct {
	file, key string
	sizes     []string  // RESOLUTION of video track 0, 1...
	tones     []float64 // the sine of audio track 0, 1..., Hz
	realtime  bool      // published in real time, to read the API while live
}

var multitrackCases = []multitrackCase{
	{"multitrack-h264.flv", "mth264", []string{"1280x720", "640x360", "320x180"}, []float64{440, 660}, true},
	{"multitrack-hevc-h264.flv", "mthevc", []string{"640x360", "320x180"}, []float64{440}, false},
}

// audioDir is where audio track i of a multitrack publish is served,
// relative to the stream: its own "a/" for track 0, "aN/a/" for track N.
func audioDir(i int) string {
	if i == 0 {
		return "a/"
	}
	return "a" + strconv.Itoa(i) + "/a/"
}

// TestMultitrackLadder publishes each Enhanced RTMP multitrack fixture
// (FFmpeg 8's muxer: track 0 plain, the others OneTrack messages) unchanged
// through a real RTMP connection. The stream's multivariant playlist is the
// ladder of its video tracks, highest first, all referring to the one audio
// group of the stream's audio tracks (track 0 the default, track 1 of the
// H.264 fixture at a1/); every rendition decodes to all 150 frames with a
// keyframe at each segment start, and the renditions are cut at the same
// instants with the same media sequence numbers and program date times;
// each audio track decodes whole and carries its own tone (440 Hz, 660 Hz),
// cut where the video is. Each rendition is reachable on its own at
// /live/KEY/vN/ and /live/KEY/aN/, and the API names the ladder, its
// renditions and their alignment. While live, each rendition's LL-HLS
// playlist reports every other one at a part that playlist lists.
func TestMultitrackLadder(t *testing.T) {
	g := startGateway(t, "-window-segments", "20")
	for _, tc := range multitrackCases {
		t.Run(tc.key, func(t *testing.T) {
			c := enhancedClip(t, tc.file)
			speed := 0.0
			if tc.realtime {
				speed = 1
			}
			published := make(chan error, 1)
			go func() { published <- publishTags(g.ingestURL(tc.key), clipTags(c, 0, true), speed) }()
			var want []string
			for i := range tc.sizes {
				if i == 0 {
					want = append(want, "v/index.m3u8")
				} else {
					want = append(want, "v"+strconv.Itoa(i)+"/v/index.m3u8")
				}
			}
			mvURL := g.streamURL(tc.key, "index.m3u8")
			waitLadder(t, mvURL, want, 20*time.Second)
			if tc.realtime {
				multitrackAPI(t, g, tc)
				checkTrackLadderMPD(t, g, tc, "live")
				var pls []string
				for _, p := range want {
					pls = append(pls, g.streamURL(tc.key, p))
				}
				for i := range tc.tones {
					pls = append(pls, g.streamURL(tc.key, audioDir(i)+"index.m3u8"))
				}
				began := time.Now()
				n := checkRenditionReports(t, pls, 3*time.Second)
				t.Logf("live: %d rendition reports of %d playlists resolve to a listed part (checked in %v)", n, len(pls), time.Since(began).Round(time.Millisecond))
			}
			if err := <-published; err != nil {
				t.Fatal(err)
			}
			waitPlaylist(t, g.streamURL(tc.key, "v/index.m3u8"), 5*time.Second, ended)
			checkTrackLadderMPD(t, g, tc, "ended")
			body := waitLadder(t, mvURL, want, 5*time.Second)
			t.Logf("ladder:\n%s", body)
			vs, _ := parseLadder(body)
			renditions := audioRenditions(body)
			if len(renditions) != len(tc.tones) {
				t.Fatalf("%d audio renditions, want %d", len(renditions), len(tc.tones))
			}
			for i, r := range renditions {
				name, def := "audio", "YES"
				if len(tc.tones) > 1 {
					name = "Audio " + strconv.Itoa(i+1) // FFmpeg 8 sends no audioTrackIdInfoMap
				}
				if i > 0 {
					def = "NO"
				}
				if r["GROUP-ID"] != "aac" || r["URI"] != audioDir(i)+"index.m3u8" || r["NAME"] != name || r["DEFAULT"] != def || r["AUTOSELECT"] != "YES" || r["CHANNELS"] != "1" {
					t.Errorf("audio rendition %d: %v", i, r)
				}
			}
			for i, v := range vs {
				if v.attrs["RESOLUTION"] != tc.sizes[i] || v.attrs["AUDIO"] != "aac" || !strings.HasSuffix(v.attrs["CODECS"], ",mp4a.40.2") {
					t.Errorf("variant %s: %v, want %s sharing the audio", v.uri, v.attrs, tc.sizes[i])
				}
				if i > 0 {
					prev, _ := strconv.Atoi(vs[i-1].attrs["BANDWIDTH"])
					if bw, _ := strconv.Atoi(v.attrs["BANDWIDTH"]); bw <= 0 || bw > prev {
						t.Errorf("variant %s: BANDWIDTH %d after %d", v.uri, bw, prev)
					}
				}
			}
			var audioPls []mediaPlaylist
			for i, hz := range tc.tones {
				a, _, pl := fetchTrack(t, g.streamURL(tc.key, audioDir(i)+"index.m3u8"), t.TempDir(), "a")
				m := probe(t, a, true)
				lv, secs := testkit.ToneLevels(t, a, tc.tones...)
				t.Logf("audio track %d: %d decoded frames, %.2f s, tone levels %v at %v Hz, %d segments from %d", i, m.audioFrames, secs, lv, tc.tones, len(pl.segments), pl.mediaSequence)
				if m.audioFrames < 270 || m.audioFrames > 284 {
					t.Errorf("audio track %d: %d decoded frames", i, m.audioFrames)
				}
				for k, l := range lv {
					if k == i && l < 0.8 || k != i && l > 0.05 {
						t.Errorf("audio track %d: level %.3f at %v Hz, want its own %v Hz alone", i, l, tc.tones[k], hz)
					}
				}
				audioPls = append(audioPls, pl)
			}

			// Every rendition decodes whole, segment by segment on the same cuts.
			type cut struct {
				msn  int
				uris []string
				durs []float64
				pdts []time.Time
			}
			var cuts []cut
			for i, v := range vs {
				u, _ := url.Parse(mvURL)
				ref, _ := url.Parse(v.uri)
				plURL := u.ResolveReference(ref).String()
				whole, frags, pl := fetchTrack(t, plURL, t.TempDir(), "v")
				m := probe(t, whole, true)
				t.Logf("%s (%s): %d packets, %d decoded frames, %d segments from media sequence %d", v.uri, tc.sizes[i], len(m.video), m.videoFrames, len(frags), pl.mediaSequence)
				if m.videoFrames != 150 || len(m.video) != 150 {
					t.Errorf("%s: %d packets, %d decoded frames, want 150", v.uri, len(m.video), m.videoFrames)
				}
				for k, f := range frags {
					if fm := probe(t, f, false); len(fm.video) == 0 || !fm.video[0].key {
						t.Errorf("%s: segment %d does not start with a keyframe", v.uri, k)
					}
				}
				var ct cut
				ct.msn = pl.mediaSequence
				for _, s := range pl.segments {
					ct.uris = append(ct.uris, path.Base(s.uri))
					ct.durs = append(ct.durs, s.duration)
					ct.pdts = append(ct.pdts, s.programDate)
				}
				cuts = append(cuts, ct)
			}
			for i := 1; i < len(cuts); i++ {
				if cuts[i].msn != cuts[0].msn || !slices.Equal(cuts[i].durs, cuts[0].durs) || !slices.EqualFunc(cuts[i].pdts, cuts[0].pdts, time.Time.Equal) {
					t.Errorf("rendition %d cut otherwise than track 0: sequence %d %v %v, track 0 %d %v %v", i, cuts[i].msn, cuts[i].durs, cuts[i].pdts, cuts[0].msn, cuts[0].durs, cuts[0].pdts)
				}
				if len(cuts[i].uris) != 3 {
					t.Errorf("rendition %d: %d segments, want 3 (a keyframe every 2 s)", i, len(cuts[i].uris))
				}
				// Segment names carry the media sequence number after the epoch.
				for k := range cuts[i].uris {
					_, a, _ := strings.Cut(cuts[i].uris[k], "-")
					_, b, _ := strings.Cut(cuts[0].uris[k], "-")
					if a != b {
						t.Errorf("rendition %d segment %d: %s against %s", i, k, cuts[i].uris[k], cuts[0].uris[k])
					}
				}
			}
			// The audio tracks are cut where the video is: the same media
			// sequence numbers, and program date times within an audio frame
			// (21.3 ms at 48 kHz); durations within two, since both ends of a
			// segment may be a frame off (track 0's first segment starts
			// with the audio frame before the first keyframe).
			for i, pl := range audioPls {
				if pl.mediaSequence != cuts[0].msn || len(pl.segments) != len(cuts[0].durs) {
					t.Errorf("audio track %d: %d segments from %d, video %d from %d", i, len(pl.segments), pl.mediaSequence, len(cuts[0].durs), cuts[0].msn)
					continue
				}
				var offs []string
				for k, seg := range pl.segments {
					dd, dp := seg.duration-cuts[0].durs[k], seg.programDate.Sub(cuts[0].pdts[k])
					offs = append(offs, strconv.FormatInt(dp.Milliseconds(), 10)+"/"+strconv.FormatFloat(dd*1000, 'f', 0, 64))
					if dd < -0.043 || dd > 0.043 || dp < -22*time.Millisecond || dp > 22*time.Millisecond {
						t.Errorf("audio track %d segment %d: %.3f s at %v, video %.3f s at %v", i, k, seg.duration, seg.programDate, cuts[0].durs[k], cuts[0].pdts[k])
					}
				}
				t.Logf("audio track %d against the video, per segment: start/duration differences, ms: %v", i, offs)
			}
			// Each rendition on its own: its multivariant playlist, its MPD.
			for i := 1; i < len(tc.sizes); i++ {
				w, h, _ := strings.Cut(tc.sizes[i], "x")
				for p, want := range map[string]string{"index.m3u8": "RESOLUTION=" + tc.sizes[i], "index.mpd": `width="` + w + `" height="` + h + `"`} {
					u := g.streamURL(tc.key, "v"+strconv.Itoa(i)+"/"+p)
					if code, b := httpGet(t, u); code != http.StatusOK || !strings.Contains(string(b), want) {
						t.Errorf("%s: %d, want %s\n%s", u, code, want, b)
					}
				}
			}
			for i := 1; i < len(tc.tones); i++ {
				for p, want := range map[string]string{"index.m3u8": `CODECS="mp4a.40.2"`, "index.mpd": `contentType="audio"`} {
					u := g.streamURL(tc.key, "a"+strconv.Itoa(i)+"/"+p)
					if code, b := httpGet(t, u); code != http.StatusOK || !strings.Contains(string(b), want) || strings.Contains(string(b), "video") {
						t.Errorf("%s: %d, want %s and no video\n%s", u, code, want, b)
					}
				}
			}
		})
	}
}

// checkTrackLadderMPD holds the stream's MPD, the ladder's, to the ISO/IEC
// 23009-1 schema and to its shape: a video Representation per track (each
// under its own path), an audio AdaptationSet per audio track.
func checkTrackLadderMPD(t *testing.T, g *gateway, tc multitrackCase, when string) {
	t.Helper()
	code, body := httpGet(t, g.streamURL(tc.key, "index.mpd"))
	if code != http.StatusOK {
		t.Fatalf("%s ladder MPD: %d", when, code)
	}
	file := filepath.Join(t.TempDir(), "ladder.mpd")
	if err := os.WriteFile(file, body, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fixture.ValidateMPD(t, file); err != nil {
		t.Errorf("%s ladder MPD: %v\n%s", when, err, body)
	}
	mpd := string(body)
	if n := strings.Count(mpd, `mimeType="video/mp4"`); n < 1 || strings.Count(mpd, `mimeType="audio/mp4"`) != len(tc.tones) {
		t.Errorf("%s ladder MPD: %d video AdaptationSets and not %d audio ones:\n%s", when, n, len(tc.tones), mpd)
	}
	for i := range tc.tones {
		if !strings.Contains(mpd, `initialization="`+audioDir(i)+`init-`) {
			t.Errorf("%s ladder MPD lacks audio track %d (%s):\n%s", when, i, audioDir(i), mpd)
		}
		if len(tc.tones) > 1 && !strings.Contains(mpd, "<Label>Audio "+strconv.Itoa(i+1)+"</Label>") {
			t.Errorf("%s ladder MPD: audio track %d has no Label:\n%s", when, i, mpd)
		}
	}
	for i := range tc.sizes {
		dir := "v/"
		if i > 0 {
			dir = "v" + strconv.Itoa(i) + "/v/"
		}
		if !strings.Contains(mpd, `initialization="`+dir+`init-`) {
			t.Errorf("%s ladder MPD lacks track %d (%s):\n%s", when, i, dir, mpd)
		}
	}
}

// multitrackAPI reads the API while the publish is live: the stream and
// each rendition name the ladder, and the renditions' segments line up.
func multitrackAPI(t *testing.T, g *gateway, tc multitrackCase) {
	t.Helper()
	var names []string
	for i := range tc.sizes {
		if i == 0 {
			names = append(names, tc.key)
		} else {
			names = append(names, tc.key+"/v"+strconv.Itoa(i))
		}
	}
	for i := 1; i < len(tc.tones); i++ {
		names = append(names, tc.key+"/a"+strconv.Itoa(i))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, b := httpGet(t, "http://"+g.httpAddr+"/api/streams")
		var all []struct {
			Name     string `json:"name"`
			Playback struct {
				HLS string `json:"hls"`
			} `json:"playback"`
			Ladder *struct {
				Name        string   `json:"name"`
				HLS         string   `json:"hls"`
				Renditions  []string `json:"renditions"`
				Aligned     bool     `json:"aligned"`
				MaxOffsetMs int64    `json:"max_offset_ms"`
				Compared    int      `json:"compared_segments"`
			} `json:"ladder"`
		}
		if code != http.StatusOK || json.Unmarshal(b, &all) != nil {
			t.Fatalf("API: %d %s", code, b)
		}
		ok := 0
		for _, s := range all {
			if !slices.Contains(names, s.Name) {
				continue
			}
			l := s.Ladder
			if s.Playback.HLS != "/live/"+s.Name+"/index.m3u8" || l == nil || l.Name != tc.key || l.HLS != "/live/"+tc.key+"/index.m3u8" || !slices.Equal(l.Renditions, names) {
				t.Fatalf("API %s: %s", s.Name, b)
			}
			if l.Compared > 0 {
				if !l.Aligned || l.MaxOffsetMs != 0 {
					t.Errorf("API %s: renditions not aligned: %+v", s.Name, *l)
				}
				ok++
			}
		}
		if ok == len(names) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("API: no alignment compared within 5 s: %s", b)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// audioRenditions are the EXT-X-MEDIA TYPE=AUDIO entries of a multivariant
// playlist, in order, as attribute maps.
func audioRenditions(body string) []map[string]string {
	var out []map[string]string
	for _, l := range strings.Split(body, "\n") {
		if a, ok := strings.CutPrefix(l, "#EXT-X-MEDIA:"); ok {
			if m := parseAttrs(a); m["TYPE"] == "AUDIO" {
				out = append(out, m)
			}
		}
	}
	return out
}

// TestBrowserSwitchesMultitrack plays the ladder of a multitrack publish
// (the H.264 fixture looped in real time, published to a low-latency gateway
// and to a classic one at once) as TestBrowserSwitchesLadder plays a ladder
// of keys: hls.js and dash.js, each in classic and in low-latency mode, left
// to choose while the network is throttled and lifted (playABR). Before that,
// hls.js is switched to the second audio track (audiotrack.mjs) and must
// fetch it from its own rendition and play its 660 Hz tone.
func TestBrowserSwitchesMultitrack(t *testing.T) {
	webDir := requireWeb(t)
	ll := startGateway(t)
	classic := startGateway(t, "-low-latency=false")
	c := enhancedClip(t, "multitrack-h264.flv")
	tags := clipTags(c, 0, true)
	for loop := uint32(1); loop < 20; loop++ {
		tags = append(tags, shiftAt(clipTags(c, loop*c.Period, false), time.Duration(loop*c.Period)*time.Millisecond)...)
	}
	// The publishers run until the test is done with them.
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	published := make(chan error, 2)
	for _, g := range []*gateway{ll, classic} {
		go func() { published <- publishTagsCtx(ctx, g.ingestURL("demo"), tags, 1) }()
	}
	defer func() {
		cancel()
		for range 2 {
			if err := <-published; err != nil && ctx.Err() == nil {
				t.Errorf("publish: %v", err)
			}
		}
	}()
	llOrigin, classicOrigin := "http://"+ll.httpAddr, "http://"+classic.httpAddr
	for _, o := range []string{llOrigin, classicOrigin} {
		waitLadder(t, o+"/live/demo/index.m3u8", []string{"v/index.m3u8", "v1/v/index.m3u8", "v2/v/index.m3u8"}, 20*time.Second)
	}
	waitJoinable(t, classicOrigin+"/live/demo/index.m3u8")
	mvURL := llOrigin + "/live/demo/index.m3u8"
	pickAudioTrack(t, webDir, llOrigin, mvURL)
	kbps, good, bws := throttleKbps(t, mvURL)
	t.Logf("BANDWIDTH %v: %d kbit/s throttled to %d kbit/s", bws, good, kbps)
	playABR(t, webDir, kbps, good, segmentSeconds(t, firstVariant(t, mvURL)), ladderHeights(t, mvURL), 2, abrCases(llOrigin, classicOrigin, "/live/demo/"))
	// The page's rendition picker lists the renditions, and a viewer's pick
	// is what plays: hls.js on the multivariant playlist, dash.js on the
	// stream's MPD, which is the ladder's.
	for _, src := range []string{"engine=hls&src=/live/demo/index.m3u8", "engine=dash&src=/live/demo/index.mpd"} {
		pickRendition(t, webDir, llOrigin+"/play.html?"+src)
	}
}

// pickAudioTrack plays the multitrack ladder mvURL (the H.264 fixture: audio
// tracks of 440 and 660 Hz) with hls.js through web/test/audiotrack.mjs and
// switches to the second audio track: hls.js must list both tracks, track 0
// the default, switch, load the new track's fragments from a1/, play on
// without a stall longer than a segment, and the page must hear 440 Hz
// before and 660 Hz after (the loudest bin of a Web Audio analyser, 3 Hz
// wide).
func pickAudioTrack(t *testing.T, webDir, origin, mvURL string) {
	t.Helper()
	start := time.Now()
	p := startProcess(t, "node", webDir+"/test/audiotrack.mjs", origin, mvURL)
	if err := p.wait(t, 90*time.Second); err != nil {
		t.Fatalf("audiotrack.mjs: %v\n%s", err, p.output)
	}
	var r struct {
		Tracks []struct {
			Name, Lang, URL string
			Default         bool
		} `json:"tracks"`
		Switched     bool     `json:"switched"`
		FragsAfter   []string `json:"fragsAfter"`
		ContextState string   `json:"contextState"`
		Before       struct {
			Track int     `json:"track"`
			Hz    float64 `json:"hz"`
		} `json:"before"`
		After struct {
			Track    int     `json:"track"`
			Hz       float64 `json:"hz"`
			Advanced float64 `json:"advanced"`
			WallMs   float64 `json:"wallMs"`
		} `json:"after"`
		Errors    []string `json:"errors"`
		StallMs   float64  `json:"stallMs"`
		PageError string   `json:"pageerror"`
	}
	if !p.lastJSON(t, &r) || r.PageError != "" {
		t.Fatalf("audiotrack.mjs: page error %q\n%s", r.PageError, p.output)
	}
	t.Logf("audio tracks %+v; switched %v, %d fragments or parts after (%v), heard %.0f Hz on track %d then %.0f Hz on track %d (audio context %s), advanced %.2f s in %.1f s, stalls %.0f ms after the switch, errors %v (%.1f s)",
		r.Tracks, r.Switched, len(r.FragsAfter), r.FragsAfter[:min(len(r.FragsAfter), 2)], r.Before.Hz, r.Before.Track, r.After.Hz, r.After.Track, r.ContextState, r.After.Advanced, r.After.WallMs/1000, r.StallMs, r.Errors, time.Since(start).Seconds())
	if len(r.Tracks) != 2 || !r.Tracks[0].Default || r.Tracks[1].Default || r.Tracks[0].Name == r.Tracks[1].Name || !strings.HasSuffix(r.Tracks[1].URL, "/live/demo/a1/a/index.m3u8") {
		t.Fatalf("hls.js audio tracks %+v, want track 0 the default and a1/ the second", r.Tracks)
	}
	from := 0 // audio fragments or parts loaded after the switch, all from a1/
	for _, f := range r.FragsAfter {
		if strings.HasPrefix(f, "a1/a/") {
			from++
		}
	}
	if !r.Switched || r.After.Track != 1 || from < 2 || from != len(r.FragsAfter) {
		t.Errorf("hls.js did not switch to a1/: switched %v, track %d, fragments %q", r.Switched, r.After.Track, r.FragsAfter)
	}
	// hls.js flushes the old track's audio at the switch and loads the new
	// one from the play position: one wait for the new playlist and a part is
	// expected, bounded here by a segment (2 s) and the playlist's load.
	if r.After.Advanced < 3 || r.StallMs > 3000 {
		t.Errorf("after the switch: advanced %.2f s in %.1f s, stalls %.0f ms", r.After.Advanced, r.After.WallMs/1000, r.StallMs)
	}
	if math.Abs(r.Before.Hz-440) > 6 || math.Abs(r.After.Hz-660) > 6 {
		t.Errorf("heard %.0f Hz before the switch and %.0f Hz after, want 440 and 660", r.Before.Hz, r.After.Hz)
	}
}

// pickRendition plays pageURL (a 720p/360p/180p ladder) in web/play.html and
// drives its Rendition menu (web/test/picker.mjs): it must list auto and the
// three renditions, show 180p and then 720p when picked, and go back to auto.
func pickRendition(t *testing.T, webDir, pageURL string) {
	t.Helper()
	pk := startProcess(t, "node", webDir+"/test/picker.mjs", pageURL)
	if err := pk.wait(t, 90*time.Second); err != nil {
		t.Fatalf("picker.mjs: %v\n%s", err, pk.output)
	}
	var pr struct {
		Options []struct{ Value, Text string } `json:"options"`
		Steps   []struct {
			Want, Got int
			Picked    string
			Ms        int
		} `json:"steps"`
		Auto *struct {
			Chosen int
			Select string
		} `json:"auto"`
		PageError string `json:"pageerror"`
	}
	if !pk.lastJSON(t, &pr) || pr.PageError != "" {
		t.Fatalf("picker.mjs: page error %q", pr.PageError)
	}
	t.Logf("%s: picker options %+v, picks %+v, auto %+v", pageURL, pr.Options, pr.Steps, pr.Auto)
	if len(pr.Options) != 4 || len(pr.Steps) != 2 || pr.Auto == nil {
		t.Fatalf("picker: %d options (want auto and 3), %d picks", len(pr.Options), len(pr.Steps))
	}
	for _, st := range pr.Steps {
		if st.Got != st.Want {
			t.Errorf("picked %dp, the video showed %dp", st.Want, st.Got)
		}
	}
	if pr.Auto.Chosen != -1 || pr.Auto.Select != "-1" {
		t.Errorf("after auto: player chose %d, picker says %q", pr.Auto.Chosen, pr.Auto.Select)
	}
}
