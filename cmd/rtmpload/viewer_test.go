package main

import (
	"reflect"
	"strings"
	"testing"
)

func TestParsePlaylist(t *testing.T) {
	live := "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:7\n" +
		"#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00Z\n#EXTINF:2.000,\na-7.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:1.966,\na-8.ts\n"
	tests := []struct {
		name    string
		in      string
		want    mediaPlaylist
		wantErr string
	}{
		{"live", live, mediaPlaylist{targetDuration: 2, mediaSequence: 7, segments: []string{"a-7.ts", "a-8.ts"}}, ""},
		{"ended", live + "#EXT-X-ENDLIST\n", mediaPlaylist{targetDuration: 2, mediaSequence: 7, segments: []string{"a-7.ts", "a-8.ts"}, endList: true}, ""},
		{"CRLF", strings.ReplaceAll(live, "\n", "\r\n"), mediaPlaylist{targetDuration: 2, mediaSequence: 7, segments: []string{"a-7.ts", "a-8.ts"}}, ""},
		{"no segments yet", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n", mediaPlaylist{targetDuration: 2}, ""},
		{"not a playlist", "<html>", mediaPlaylist{}, "want #EXTM3U"},
		{"empty", "", mediaPlaylist{}, "empty"},
		{"no target duration", "#EXTM3U\n#EXTINF:2,\na.ts\n", mediaPlaylist{}, "no EXT-X-TARGETDURATION"},
		{"bad target duration", "#EXTM3U\n#EXT-X-TARGETDURATION:x\n", mediaPlaylist{}, "bad \"#EXT-X-TARGETDURATION:x\""},
		{"negative sequence", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:-1\n", mediaPlaylist{}, "MEDIA-SEQUENCE"},
		{"bad EXTINF", "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:abc,\na.ts\n", mediaPlaylist{}, "bad \"#EXTINF:abc,\""},
		{"segment without EXTINF", "#EXTM3U\n#EXT-X-TARGETDURATION:2\na.ts\n", mediaPlaylist{}, "without EXTINF"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parsePlaylist([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in      string
		want    target
		wantErr string
	}{
		{"rtmp://127.0.0.1:1935/live", target{"127.0.0.1:1935", "live", "rtmp://127.0.0.1:1935/live"}, ""},
		{"rtmp://example.com/app/", target{"example.com:1935", "app", "rtmp://example.com/app"}, ""},
		{"http://127.0.0.1/live", target{}, "scheme"},
		{"rtmp://127.0.0.1", target{}, "want rtmp://HOST[:PORT]/APP"},
		{"rtmp://127.0.0.1/a/b", target{}, "want rtmp://HOST[:PORT]/APP"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parseTarget(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v", got, err)
			}
		})
	}
}
