package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func (g *gateway) streamURL(key, path string) string {
	return "http://" + g.httpAddr + "/live/" + key + "/" + path
}

// fetchTrack downloads a fMP4 media playlist's init segment and fragments; it returns
// the concatenation of init and all fragments, and each fragment with the init in
// front (a standalone file), written into dir.
func fetchTrack(t *testing.T, playlistURL string, dir, prefix string) (string, []string, mediaPlaylist) {
	t.Helper()
	code, body := httpGet(t, playlistURL)
	if code != 200 {
		t.Fatalf("%s: status %d", playlistURL, code)
	}
	pl := parseMediaPlaylist(t, string(body))
	m := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindAllStringSubmatch(string(body), -1)
	if len(m) != 1 {
		t.Fatalf("want one EXT-X-MAP in %s:\n%s", playlistURL, body)
	}
	get := func(ref string) []byte { return getRef(t, playlistURL, ref) }
	init := get(m[0][1])
	all := append([]byte(nil), init...)
	var singles []string
	for i, s := range pl.segments {
		frag := get(s.uri)
		all = append(all, frag...)
		p := filepath.Join(dir, fmt.Sprintf("%s%03d.mp4", prefix, i))
		if err := os.WriteFile(p, append(append([]byte(nil), init...), frag...), 0o644); err != nil {
			t.Fatal(err)
		}
		singles = append(singles, p)
	}
	whole := filepath.Join(dir, prefix+".mp4")
	if err := os.WriteFile(whole, all, 0o644); err != nil {
		t.Fatal(err)
	}
	return whole, singles, pl
}

// The CMAF outputs of a finished publish: the multivariant playlist describes the
// stream, the fMP4 tracks decode to every source frame with keyframes at fragment
// starts and the source's presentation times, audio and video start together in
// every segment, the three outputs cut at the same instants, and ffprobe reads the
// fMP4 HLS and DASH URLs.
func TestCMAFHLSAndDASH(t *testing.T) {
	g := startGateway(t, "-window-segments", "20")
	src := clip(t, "bframes")
	want := probe(t, src, false)
	pub := publishFFmpeg(t, src, g.ingestURL("cmaf"), false)
	if err := pub.wait(t, 30*time.Second); err != nil {
		t.Fatalf("publish: %v\n%s", err, pub.output)
	}
	vpl := waitPlaylist(t, g.streamURL("cmaf", "v/index.m3u8"), 2*time.Second, ended)

	code, mv := httpGet(t, g.streamURL("cmaf", "index.m3u8"))
	if code != 200 {
		t.Fatalf("multivariant playlist: %d", code)
	}
	for _, re := range []string{
		`#EXT-X-STREAM-INF:.*BANDWIDTH=[1-9][0-9]{5,}`, `AVERAGE-BANDWIDTH=[1-9][0-9]{5,}`,
		`CODECS="avc1\.64[0-9a-f]{4},mp4a\.40\.2"`, `RESOLUTION=640x360`, `FRAME-RATE=(29\.9|30\.0)`,
		`#EXT-X-MEDIA:TYPE=AUDIO,.*URI="a/index.m3u8"`, `(?m)^v/index.m3u8$`,
	} {
		if !regexp.MustCompile(re).Match(mv) {
			t.Errorf("multivariant playlist does not match %s:\n%s", re, mv)
		}
	}
	dir := t.TempDir()
	vFile, vFrags, _ := fetchTrack(t, g.streamURL("cmaf", "v/index.m3u8"), dir, "v")
	aFile, aFrags, apl := fetchTrack(t, g.streamURL("cmaf", "a/index.m3u8"), dir, "a")
	if vpl.version < 6 {
		t.Errorf("fMP4 media playlist version %d, EXT-X-MAP needs 6", vpl.version)
	}
	if len(vFrags) != len(aFrags) || len(vFrags) < 3 {
		t.Fatalf("%d video and %d audio fragments", len(vFrags), len(aFrags))
	}
	tspl := waitPlaylist(t, g.tsPlaylistURL("cmaf"), time.Second, ended)
	if len(tspl.segments) != len(vpl.segments) || tspl.mediaSequence != vpl.mediaSequence {
		t.Errorf("TS lists %d segments from %d, fMP4 %d from %d", len(tspl.segments), tspl.mediaSequence, len(vpl.segments), vpl.mediaSequence)
	}
	for i := range tspl.segments {
		if i < len(vpl.segments) && math.Abs(tspl.segments[i].duration-vpl.segments[i].duration) > 0.0015 {
			t.Errorf("segment %d: TS EXTINF %.3f, fMP4 %.3f: not the same cut", i, tspl.segments[i].duration, vpl.segments[i].duration)
		}
	}

	v, a := probe(t, vFile, true), probe(t, aFile, true)
	if v.videoFrames != len(want.video) || a.audioFrames != len(want.audio) {
		t.Errorf("decoded video %d audio %d frames, source %d and %d", v.videoFrames, a.audioFrames, len(want.video), len(want.audio))
	}
	if len(v.video) == len(want.video) {
		for i := range want.video {
			got, exp := v.video[i].pts-v.video[0].dts, want.video[i].pts-want.video[0].dts
			if math.Abs(got-exp) > 2 {
				t.Errorf("video frame %d: pts %.2f ms after start, source %.2f ms", i, got, exp)
				break
			}
		}
	}
	for i := 1; i < len(a.audio); i++ {
		if gap := a.audio[i].dts - a.audio[i-1].dts; gap < 15 || gap > 30 {
			t.Errorf("audio packet %d: %.2f ms after the previous one", i, gap)
			break
		}
	}
	var prevEnd float64
	for i := range vFrags {
		vf, af := probe(t, vFrags[i], false), probe(t, aFrags[i], false)
		if len(vf.video) == 0 || !vf.video[0].key {
			t.Errorf("video fragment %d does not start with a sync sample", i)
			continue
		}
		if len(af.audio) == 0 {
			t.Errorf("audio fragment %d is empty", i)
			continue
		}
		if off := math.Abs(af.audio[0].pts - vf.video[0].pts); off > 100 {
			t.Errorf("segment %d: audio starts %.1f ms from video", i, off)
		}
		if i > 0 && math.Abs(vf.video[0].dts-prevEnd) > 1 {
			t.Errorf("video fragment %d starts at %.2f ms, the previous one ended at %.2f ms", i, vf.video[0].dts, prevEnd)
		}
		prevEnd = vf.video[len(vf.video)-1].dts + frameDuration(want.video)
		if ext := vpl.segments[i].duration * 1000; math.Abs(ext-(prevEnd-vf.video[0].dts)) > frameDuration(want.video) {
			t.Errorf("video fragment %d: EXTINF %.3f s, media %.3f s", i, ext/1000, (prevEnd-vf.video[0].dts)/1000)
		}
	}
	if !apl.endList {
		t.Error("audio playlist has no ENDLIST")
	}

	// ffprobe reads the HLS and DASH URLs themselves.
	for _, path := range []string{"index.m3u8", "index.mpd"} {
		m := probe(t, g.streamURL("cmaf", path), false)
		if len(m.video) != len(want.video) || len(m.audio) != len(want.audio) {
			t.Errorf("%s: ffprobe read %d video and %d audio packets, source %d and %d", path, len(m.video), len(m.audio), len(want.video), len(want.audio))
		}
	}
	code, mpd := httpGet(t, g.streamURL("cmaf", "index.mpd"))
	if code != 200 || !strings.Contains(string(mpd), `type="static"`) || !strings.Contains(string(mpd), "mediaPresentationDuration") {
		t.Errorf("ended stream's MPD is not static with a duration:\n%s", mpd)
	}
}

// ffprobe opens the live fMP4 HLS and DASH URLs while the publisher is still on.
func TestLiveCMAFURLsProbe(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	publishFFmpeg(t, src, g.ingestURL("livecmaf"), true)
	waitPlaylist(t, g.streamURL("livecmaf", "v/index.m3u8"), 8*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 2 })
	for _, path := range []string{"index.m3u8", "index.mpd"} {
		out, err := runOutput(t, "ffprobe", "-v", "error", "-show_entries", "stream=codec_name,width,height,sample_rate", "-of", "csv=p=0", g.streamURL("livecmaf", path))
		if err != nil {
			t.Fatalf("ffprobe %s: %v\n%s", path, err, out)
		}
		if !strings.Contains(out, "h264,640,360") || !strings.Contains(out, "aac") || !strings.Contains(out, "48000") {
			t.Errorf("ffprobe %s found:\n%s", path, out)
		}
	}
	code, mpd := httpGet(t, g.streamURL("livecmaf", "index.mpd"))
	if code != 200 || !strings.Contains(string(mpd), `type="dynamic"`) {
		t.Errorf("live MPD:\n%s", mpd)
	}
}

// Audio-only and video-only publishes give CMAF outputs of just that track.
func TestCMAFSingleTrack(t *testing.T) {
	g := startGateway(t)
	for _, tc := range []struct {
		clip, codecs, missing string
	}{
		{"audio", `CODECS="mp4a.40.2"`, `contentType="video"`},
		{"video", `CODECS="avc1.4d401e"`, `contentType="audio"`},
	} {
		t.Run(tc.clip, func(t *testing.T) {
			src := clip(t, tc.clip)
			want := probe(t, src, false)
			key := "single" + tc.clip
			pub := publishFFmpeg(t, src, g.ingestURL(key), false)
			if err := pub.wait(t, 30*time.Second); err != nil {
				t.Fatalf("publish: %v\n%s", err, pub.output)
			}
			waitPlaylist(t, g.tsPlaylistURL(key), 2*time.Second, ended)
			_, mv := httpGet(t, g.streamURL(key, "index.m3u8"))
			if !strings.Contains(string(mv), tc.codecs) || strings.Contains(string(mv), "EXT-X-MEDIA") {
				t.Errorf("multivariant playlist for %s:\n%s", tc.clip, mv)
			}
			_, mpd := httpGet(t, g.streamURL(key, "index.mpd"))
			if strings.Contains(string(mpd), tc.missing) || strings.Count(string(mpd), "<AdaptationSet") != 1 {
				t.Errorf("MPD for %s:\n%s", tc.clip, mpd)
			}
			for _, path := range []string{"index.m3u8", "index.mpd"} {
				m := probe(t, g.streamURL(key, path), true)
				if len(m.video) != len(want.video) || len(m.audio) != len(want.audio) || m.videoFrames != len(want.video) || m.audioFrames != len(want.audio) {
					t.Errorf("%s: video %d/%d audio %d/%d packets/frames, source %d and %d", path, len(m.video), m.videoFrames, len(m.audio), m.audioFrames, len(want.video), len(want.audio))
				}
			}
		})
	}
}
