package main

import "testing"

// The gateway's playlists are read from the network: no input may panic or hang.
// (The clip parser is fuzzed in ingest/rtmpclient, the RTMP codec in ingest/rtmp.)

func FuzzParsePlaylist(f *testing.F) {
	f.Add([]byte("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:2.0,\na.ts\n#EXT-X-ENDLIST\n"))
	f.Add([]byte("#EXTM3U\r\n#EXT-X-TARGETDURATION:99999999999999999999\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pl, err := parsePlaylist(data)
		if err != nil {
			return
		}
		if pl.targetDuration <= 0 || pl.mediaSequence < 0 || len(pl.segments) > maxPlaylistSegs {
			t.Fatalf("accepted %+v", pl)
		}
	})
}
