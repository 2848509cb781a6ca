package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigPrecedence(t *testing.T) {
	file := filepath.Join(t.TempDir(), "rtmpgate.yaml")
	if err := os.WriteFile(file, []byte("rtmp: \":1000\"\nhttp: \":2000\"\nlinger: 5s\nwindow_segments: 8\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		rtmp    string
		http    string
		linger  time.Duration
		window  int
		wantErr string
	}{
		{name: "defaults", rtmp: ":1935", http: ":8080", linger: 30 * time.Second, window: 6},
		{name: "file", args: []string{"-config", file}, rtmp: ":1000", http: ":2000", linger: 5 * time.Second, window: 8},
		{name: "env over file", args: []string{"-config", file}, env: map[string]string{"RTMPGATE_RTMP": ":1001"}, rtmp: ":1001", http: ":2000", linger: 5 * time.Second, window: 8},
		{name: "flag over env", args: []string{"-config", file, "-rtmp", ":1002"}, env: map[string]string{"RTMPGATE_RTMP": ":1001"}, rtmp: ":1002", http: ":2000", linger: 5 * time.Second, window: 8},
		{name: "config path from env", env: map[string]string{"RTMPGATE_CONFIG": file, "RTMPGATE_HTTP": ":3000"}, rtmp: ":1000", http: ":3000", linger: 5 * time.Second, window: 8},
		{name: "bad duration names the variable", env: map[string]string{"RTMPGATE_LINGER": "soon"}, wantErr: "RTMPGATE_LINGER"},
		{name: "out of range names the field", args: []string{"-window-segments", "1"}, wantErr: "window_segments"},
		{name: "unknown file field", args: []string{"-config", writeFile(t, "bogus: 1\n")}, wantErr: "bogus"},
		{name: "bad log format", args: []string{"-log-format", "xml"}, wantErr: "log_format"},
		{name: "read interval past its bound", args: []string{"-read-interval", "150ms"}, wantErr: "read_interval"},
		{name: "negative read interval", env: map[string]string{"RTMPGATE_READ_INTERVAL": "-1ms"}, wantErr: "read_interval"},
	}
	for _, tc := range tests {
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
			if cfg.RTMP != tc.rtmp || cfg.HTTP != tc.http || cfg.Linger != tc.linger || cfg.WindowSegments != tc.window {
				t.Errorf("got rtmp %q http %q linger %s window %d", cfg.RTMP, cfg.HTTP, cfg.Linger, cfg.WindowSegments)
			}
		})
	}
}

func writeFile(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
