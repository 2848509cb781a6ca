package main

import (
	"strings"
	"testing"
)

// TestConfigVariants reads the variants list from each source and refuses
// suffixes that cannot end a stream name in a URL, and repeats.
func TestConfigVariants(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     map[string]string
		want    string
		wantErr string
	}{
		{name: "default none"},
		{name: "env", env: map[string]string{"RTMPGATE_VARIANTS": "_hi,_mid,_lo"}, want: "_hi _mid _lo"},
		{name: "flag", args: []string{"-variants", "-720p,-360p"}, want: "-720p -360p"},
		{name: "file", args: []string{"-config", writeFile(t, "variants: [_hi, _lo]\n")}, want: "_hi _lo"},
		{name: "slash", args: []string{"-variants", "_hi,/lo"}, wantErr: "variants"},
		{name: "space", args: []string{"-config", writeFile(t, "variants: [\"_h i\"]\n")}, wantErr: "variants"},
		{name: "repeat", args: []string{"-variants", "_hi,_hi"}, wantErr: "twice"},
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
			if got := strings.Join(cfg.Variants, " "); got != tc.want {
				t.Errorf("variants %q, want %q", got, tc.want)
			}
		})
	}
}
