package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// enhancedCase is one Enhanced RTMP fixture (bytes FFmpeg 8's FLV muxer wrote)
// and what the outputs must say about it. Each fixture is 6 s at 25 fps with a
// keyframe every 2 s; codecs strings and names are ffprobe's for the source.
type enhancedCase struct {
	file, key          string
	vName, vCodecs     string
	aName, aCodecs     string
	ts                 bool // MPEG-TS and HLS define a mapping for both codecs
	minAudio, maxAudio int  // decoded audio frames over the 6 s
}

var enhancedCases = []enhancedCase{
	{"hevc-aac.flv", "hevc", "hevc", "hvc1.1.6.L63.90", "aac", "mp4a.40.2", true, 270, 284},
	{"av1-opus.flv", "av1", "av1", "av01.0.01M.08", "opus", "opus", false, 290, 301},
	{"vp9-opus.flv", "vp9", "vp9", "vp09.00.21.08", "opus", "opus", false, 290, 301},
}

func enhancedClip(t *testing.T, name string) *rtmpclient.Clip {
	t.Helper()
	dir := fixture.Dir()
	if dir == "" {
		t.Fatal("no ../shared/fixtures/enhanced-rtmp beside the checkout")
	}
	c, err := rtmpclient.ReadFLV(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// codecNames lists the codec_name of each stream of a file, video then audio.
func codecNames(t *testing.T, path string) (video, audio string) {
	t.Helper()
	var doc struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
		} `json:"streams"`
	}
	testkit.Probe(t, &doc, path, "-show_entries", "stream=codec_type,codec_name")
	for _, s := range doc.Streams {
		switch s.CodecType {
		case "video":
			video = s.CodecName
		case "audio":
			audio = s.CodecName
		}
	}
	return video, audio
}

// Each Enhanced RTMP fixture, published unchanged through a real RTMP
// connection, comes out of every output that can carry its codecs: the CMAF
// tracks decode to all 150 frames with a sync sample at every fragment start,
// the multivariant playlist and the MPD name the codecs, ffprobe reads the HLS
// and DASH URLs, and the TS output is HEVC for the codec TS defines and is
// refused, with the reason in the API, for AV1, VP9 and Opus.
func TestEnhancedCodecs(t *testing.T) {
	g := startGateway(t, "-window-segments", "20")
	for _, tc := range enhancedCases {
		t.Run(tc.key, func(t *testing.T) {
			c := enhancedClip(t, tc.file)
			publishOdd(t, g.ingestURL(tc.key), clipTags(c, 0, true), 0)
			waitPlaylist(t, g.streamURL(tc.key, "v/index.m3u8"), 5*time.Second, ended)

			code, mv := httpGet(t, g.streamURL(tc.key, "index.m3u8"))
			if code != 200 {
				t.Fatalf("multivariant playlist: %d", code)
			}
			if want := `CODECS="` + tc.vCodecs + `,` + tc.aCodecs + `"`; !strings.Contains(string(mv), want) {
				t.Errorf("multivariant playlist lacks %s:\n%s", want, mv)
			}
			if !strings.Contains(string(mv), "RESOLUTION=640x360") {
				t.Errorf("multivariant playlist lacks RESOLUTION=640x360:\n%s", mv)
			}
			_, mpd := httpGet(t, g.streamURL(tc.key, "index.mpd"))
			for _, want := range []string{`codecs="` + tc.vCodecs + `"`, `codecs="` + tc.aCodecs + `"`} {
				if !strings.Contains(string(mpd), want) {
					t.Errorf("MPD lacks %s:\n%s", want, mpd)
				}
			}

			dir := t.TempDir()
			vFile, vFrags, _ := fetchTrack(t, g.streamURL(tc.key, "v/index.m3u8"), dir, "v")
			aFile, _, _ := fetchTrack(t, g.streamURL(tc.key, "a/index.m3u8"), dir, "a")
			if v, _ := codecNames(t, vFile); v != tc.vName {
				t.Errorf("video track is %q, want %q", v, tc.vName)
			}
			if _, a := codecNames(t, aFile); a != tc.aName {
				t.Errorf("audio track is %q, want %q", a, tc.aName)
			}
			v, a := probe(t, vFile, true), probe(t, aFile, true)
			if v.videoFrames != 150 || len(v.video) != 150 {
				t.Errorf("video: %d packets, %d decoded frames, want 150", len(v.video), v.videoFrames)
			}
			if a.audioFrames < tc.minAudio || a.audioFrames > tc.maxAudio {
				t.Errorf("audio: %d decoded frames, want %d to %d", a.audioFrames, tc.minAudio, tc.maxAudio)
			}
			for i := 1; i < len(v.video); i++ {
				if gap := v.video[i].dts - v.video[i-1].dts; gap < 39 || gap > 41 {
					t.Errorf("video packet %d: %.2f ms after the previous one, want 40", i, gap)
					break
				}
			}
			if len(vFrags) != 3 {
				t.Errorf("%d fragments, want 3 (a keyframe every 2 s)", len(vFrags))
			}
			for i, f := range vFrags {
				if m := probe(t, f, false); len(m.video) == 0 || !m.video[0].key {
					t.Errorf("video fragment %d does not start with a sync sample", i)
				}
			}
			for _, path := range []string{"index.m3u8", "index.mpd"} {
				m := probe(t, g.streamURL(tc.key, path), false)
				if len(m.video) != 150 || len(m.audio) == 0 {
					t.Errorf("%s: ffprobe read %d video and %d audio packets", path, len(m.video), len(m.audio))
				}
			}

			code, body := httpGet(t, g.tsPlaylistURL(tc.key))
			var api struct {
				Playback struct {
					TS            string `json:"ts"`
					TSUnavailable string `json:"ts_unavailable"`
				} `json:"playback"`
				Tracks []struct {
					Codec, Codecs, Profile, Level string
					BitDepth                      int `json:"bit_depth"`
				} `json:"tracks"`
			}
			_, js := httpGet(t, "http://"+g.httpAddr+"/api/streams/live/"+tc.key)
			if err := json.Unmarshal(js, &api); err != nil {
				t.Fatalf("API: %v: %s", err, js)
			}
			if len(api.Tracks) != 2 || api.Tracks[0].Codecs != tc.vCodecs || api.Tracks[0].Profile == "" || api.Tracks[0].Level == "" || api.Tracks[0].BitDepth != 8 {
				t.Errorf("API tracks %+v", api.Tracks)
			}
			if !tc.ts {
				if code != 404 || api.Playback.TS != "" || api.Playback.TSUnavailable == "" {
					t.Errorf("TS playlist %d, API ts %q, ts_unavailable %q: want 404 and a reason", code, api.Playback.TS, api.Playback.TSUnavailable)
				}
				return
			}
			if code != 200 || api.Playback.TS == "" {
				t.Fatalf("TS playlist: %d %s (API ts %q)", code, body, api.Playback.TS)
			}
			pl := parseMediaPlaylist(t, string(body))
			var whole []byte
			for _, s := range pl.segments {
				seg := getRef(t, g.tsPlaylistURL(tc.key), s.uri)
				whole = append(whole, seg...)
			}
			tsFile := filepath.Join(t.TempDir(), "all.ts")
			if err := os.WriteFile(tsFile, whole, 0o644); err != nil {
				t.Fatal(err)
			}
			if vn, an := codecNames(t, tsFile); vn != tc.vName || an != tc.aName {
				t.Errorf("TS carries %q and %q, want %q and %q", vn, an, tc.vName, tc.aName)
			}
			if m := probe(t, tsFile, true); m.videoFrames != 150 || m.audioFrames < tc.minAudio {
				t.Errorf("TS decodes to %d video and %d audio frames, want 150 and at least %d", m.videoFrames, m.audioFrames, tc.minAudio)
			}
		})
	}
}

// Chromium decodes AV1, VP9 and Opus: the page's hls.js, dash.js and Shaka
// play a live AV1+Opus and VP9+Opus publish (the fixture looped at real time).
func TestBrowserPlaysEnhancedCodecs(t *testing.T) {
	requireWeb(t)
	g := startGateway(t)
	for _, tc := range enhancedCases[1:] {
		t.Run(tc.key, func(t *testing.T) {
			c := enhancedClip(t, tc.file)
			tags := clipTags(c, 0, true)
			for loop := uint32(1); loop < 6; loop++ {
				tags = append(tags, shiftAt(clipTags(c, loop*c.Period, false), time.Duration(loop*c.Period)*time.Millisecond)...)
			}
			published := make(chan error, 1)
			go func() { published <- publishTags(g.ingestURL(tc.key), tags, 1) }()
			defer func() {
				if err := <-published; err != nil {
					t.Errorf("publish: %v", err)
				}
			}()
			waitPlaylist(t, g.streamURL(tc.key, "v/index.m3u8"), 8*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
			for _, p := range []struct{ engine, path string }{{"shaka", "index.mpd"}, {"hls", "index.m3u8"}, {"dash", "index.mpd"}} {
				stats := playInBrowser(t, "http://"+g.httpAddr+"/play.html?engine="+p.engine+"&src=/live/"+tc.key+"/"+p.path, 8)
				checkPlayback(t, stats, 5)
			}
		})
	}
}
