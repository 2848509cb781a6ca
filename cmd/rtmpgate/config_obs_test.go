package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestConfigOBS reads the OBS multitrack video settings from each source,
// derives the keyframe interval from segment_duration, turns the endpoint
// off on request and refuses ladders and URLs OBS could not use.
func TestConfigOBS(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    string // renditions as parsed, then keyframe interval, audio, URL, encoder
		wantErr string
	}{
		{name: "default", want: "1080p6000/0 720p3000/0 360p800/30 2s 160  auto"},
		{name: "env", env: map[string]string{"RTMPGATE_OBS_LADDER": "720p 2500k, 480p 30fps 1.2M", "RTMPGATE_OBS_AUDIO_BITRATE": "128"},
			want: "720p2500/0 480p1200/30 2s 128  auto"},
		{name: "flag", args: []string{"-obs-ladder", "1920x1080 60fps 8M hevc", "-obs-encoder", "obs_x264", "-obs-ingest-url", "rtmp://in.example:1936/show"},
			want: "1080p8000/60 2s 160 rtmp://in.example:1936/show obs_x264"},
		{name: "file", args: []string{"-config", writeFile(t, "obs_ladder:\n  - 1080p 6000k\n  - 540p 2000k\nobs_keyframe_interval: 4s\n")},
			want: "1080p6000/0 540p2000/0 4s 160  auto"},
		{name: "segment duration", args: []string{"-segment-duration", "1500ms"}, want: "1080p6000/0 720p3000/0 360p800/30 2s 160  auto"},
		{name: "off by env", env: map[string]string{"RTMPGATE_OBS_LADDER": "off"}, want: "off"},
		{name: "off by file", args: []string{"-config", writeFile(t, "obs_ladder: []\n")}, want: "off"},
		{name: "off by flag", args: []string{"-obs-ladder", ""}, want: "off"},
		{name: "no bitrate", args: []string{"-obs-ladder", "1080p"}, wantErr: "obs_ladder"},
		{name: "odd height", args: []string{"-obs-ladder", "1079p 5000k"}, wantErr: "obs_ladder"},
		{name: "eleven", args: []string{"-obs-ladder", strings.Repeat("360p 800k,", 10) + "360p 800k"}, wantErr: "at most 10"},
		{name: "fractional keyframe interval", args: []string{"-obs-keyframe-interval", "1500ms"}, wantErr: "obs_keyframe_interval"},
		{name: "audio", args: []string{"-obs-audio-bitrate", "8"}, wantErr: "obs_audio_bitrate"},
		{name: "http url", args: []string{"-obs-ingest-url", "http://in.example/live"}, wantErr: "obs_ingest_url"},
		{name: "url without app", args: []string{"-obs-ingest-url", "rtmp://in.example"}, wantErr: "obs_ingest_url"},
		{name: "encoder", args: []string{"-obs-encoder", "a b"}, wantErr: "obs_encoder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(tc.args, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			obs, err := cfg.obsConfig(1935)
			if err != nil {
				t.Fatal(err)
			}
			got := "off"
			if obs != nil {
				var parts []string
				for _, r := range obs.Renditions {
					parts = append(parts, fmt.Sprintf("%dp%d/%d", r.Height, r.Bitrate, r.FPS))
				}
				parts = append(parts, obs.KeyframeInterval.String(), strconv.Itoa(obs.AudioBitrate), obs.IngestURL, obs.Encoder)
				got = strings.Join(parts, " ")
				if obs.RTMPPort != 1935 || obs.KeyframeInterval%time.Second != 0 {
					t.Errorf("port %d, keyframe interval %s", obs.RTMPPort, obs.KeyframeInterval)
				}
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
