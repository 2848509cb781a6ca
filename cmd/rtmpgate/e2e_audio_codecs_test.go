package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// withAudio is the video tags of the HEVC fixture (6 s) with an audio
// elementary stream wrapped per Enhanced RTMP v2 in place of its AAC, in
// timestamp order as an encoder interleaves them.
func withAudio(t *testing.T, es testkit.AudioES) *rtmpclient.Clip {
	t.Helper()
	src := enhancedClip(t, "hevc-aac.flv")
	var tags []rtmpclient.Tag
	for _, tg := range src.Tags {
		if tg.Type == rtmpclient.TagVideo {
			tags = append(tags, tg)
		}
	}
	tags = append(tags, rtmpclient.ExAudioTags(es.FourCC, es.Config, es.Frames, es.SamplesPerFrame, es.Rate)...)
	sort.SliceStable(tags, func(i, j int) bool {
		if tags[i].Config != tags[j].Config {
			return tags[i].Config
		}
		return tags[i].Timestamp < tags[j].Timestamp
	})
	return &rtmpclient.Clip{Tags: tags}
}

// FLAC, AC-3 and E-AC-3 from Debian's ffmpeg, published over real RTMP beside
// HEVC video by the Go test publisher, come out of the CMAF HLS and DASH
// outputs with every frame decoding as the codec it is, named in the playlist
// and MPD; AC-3 and E-AC-3 come out of the TS output too, FLAC (which HLS
// defines no TS carriage for) is not offered there and the API says why.
func TestEnhancedAudioCodecsOut(t *testing.T) {
	g := startGateway(t, "-window-segments", "20")
	for _, tc := range []struct {
		codec, name, codecs string
		ts                  bool
	}{
		{"flac", "flac", "fLaC", false},
		{"ac3", "ac3", "ac-3", true},
		{"eac3", "eac3", "ec-3", true},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			es := testkit.EncodeAudio(t, tc.codec, 6)
			key := "audio-" + tc.codec
			publishOdd(t, g.ingestURL(key), clipTags(withAudio(t, es), 0, true), 0)
			waitPlaylist(t, g.streamURL(key, "a/index.m3u8"), 5*time.Second, ended)

			_, mv := httpGet(t, g.streamURL(key, "index.m3u8"))
			if want := `CODECS="hvc1.1.6.L63.90,` + tc.codecs + `"`; !strings.Contains(string(mv), want) {
				t.Errorf("multivariant playlist lacks %s:\n%s", want, mv)
			}
			_, mpd := httpGet(t, g.streamURL(key, "index.mpd"))
			if want := `codecs="` + tc.codecs + `"`; !strings.Contains(string(mpd), want) {
				t.Errorf("MPD lacks %s:\n%s", want, mpd)
			}

			dir := t.TempDir()
			aFile, _, _ := fetchTrack(t, g.streamURL(key, "a/index.m3u8"), dir, "a")
			if _, a := codecNames(t, aFile); a != tc.name {
				t.Errorf("CMAF audio track is %q, want %q", a, tc.name)
			}
			if a := probe(t, aFile, true); a.audioFrames != len(es.Frames) || len(a.audio) != len(es.Frames) {
				t.Errorf("CMAF audio: %d packets, %d decoded frames, want %d", len(a.audio), a.audioFrames, len(es.Frames))
			} else {
				t.Logf("%s: CMAF audio track decodes to %d frames", tc.codec, a.audioFrames)
			}
			// ffprobe reads the playlist and the MPD whole. Through the MPD its
			// DASH reader hands on three video packets fewer (147) when the audio
			// starts at 0 ms, before the video's first presentation (80 ms, two
			// B-frames), though the same CMAF video track read through HLS has
			// all 150 and the timelines are gapless; with the audio starting at
			// 80 ms it reads 150. Video is therefore counted exactly through HLS.
			for _, path := range []string{"index.m3u8", "index.mpd"} {
				m := probe(t, g.streamURL(key, path), true)
				minVideo := 150
				if path == "index.mpd" {
					minVideo = 147
				}
				if len(m.video) < minVideo || m.videoFrames < minVideo || m.audioFrames != len(es.Frames) {
					t.Errorf("%s: %d video packets (%d decoded) and %d audio frames decoded, want %d and %d", path, len(m.video), m.videoFrames, m.audioFrames, minVideo, len(es.Frames))
				} else {
					t.Logf("%s: %s: %d video packets (%d decoded), %d audio frames decoded", tc.codec, path, len(m.video), m.videoFrames, m.audioFrames)
				}
			}

			code, body := httpGet(t, g.tsPlaylistURL(key))
			var api struct {
				Playback struct {
					TS            string `json:"ts"`
					TSUnavailable string `json:"ts_unavailable"`
				} `json:"playback"`
			}
			_, js := httpGet(t, "http://"+g.httpAddr+"/api/streams/live/"+key)
			if err := json.Unmarshal(js, &api); err != nil {
				t.Fatalf("API: %v: %s", err, js)
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
			var whole []byte
			for _, s := range parseMediaPlaylist(t, string(body)).segments {
				whole = append(whole, getRef(t, g.tsPlaylistURL(key), s.uri)...)
			}
			tsFile := filepath.Join(t.TempDir(), "all.ts")
			if err := os.WriteFile(tsFile, whole, 0o644); err != nil {
				t.Fatal(err)
			}
			if v, a := codecNames(t, tsFile); v != "hevc" || a != tc.name {
				t.Errorf("TS carries %q and %q, want hevc and %q", v, a, tc.name)
			}
			if m := probe(t, tsFile, true); m.videoFrames != 150 || m.audioFrames != len(es.Frames) {
				t.Errorf("TS decodes to %d video and %d audio frames, want 150 and %d", m.videoFrames, m.audioFrames, len(es.Frames))
			} else {
				t.Logf("%s: TS decodes to %d video and %d audio frames", tc.codec, m.videoFrames, m.audioFrames)
			}
		})
	}
}
