package main

import (
	"bytes"
	"testing"
)

// The parsers that read what others wrote: the clip file, the server's chunk
// stream and AMF0 replies, and the gateway's playlists. None may panic or hang.

func FuzzParseFLV(f *testing.F) {
	f.Add(buildFLV(flvTag{tagScript, 0, metaBody}, flvTag{tagVideo, 0, avcSeq}, flvTag{tagVideo, 0, avcKey}, flvTag{tagAudio, 10, aacRaw}))
	f.Add(buildFLV(flvTag{tagVideo, 0xffffffff, avcEnd}))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := parseFLV(data)
		if err != nil {
			return
		}
		if len(c.tags) == 0 || c.period == 0 {
			t.Fatalf("clip with %d tags and period %d", len(c.tags), c.period)
		}
		for _, tg := range c.tags {
			if len(tg.body) == 0 || len(tg.body) > c.maxTag {
				t.Fatalf("tag body of %d bytes, max %d", len(tg.body), c.maxTag)
			}
		}
	})
}

func FuzzChunkReader(f *testing.F) {
	w := newChunkWriter(128)
	w.appendSetChunkSize(4096)
	w.chunkSize = 4096
	w.appendCommand(0, nil, "_result", 1, nil, []amfField{{"code", "NetConnection.Connect.Success"}})
	w.appendCommand(1, nil, "onStatus", 0, nil, []amfField{{"level", "error"}, {"code", "NetStream.Publish.BadName"}})
	w.appendMessage(csidVideo, msgVideo, 1, 0x1000000, payload(5000, 3))
	f.Add(w.buf)
	f.Add([]byte{0x02, 0, 0, 0, 0, 0, 4, msgSetChunkSize, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x00, 0x00, 0, 0, 0, 0, 0, 1, msgCommandAMF0, 0, 0, 0, 0, 0x05})
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := newChunkReader(bytes.NewReader(data))
		for range 1000 {
			msg, err := cr.next()
			if err != nil {
				return
			}
			if len(msg.payload) > maxInMessage {
				t.Fatalf("message of %d bytes", len(msg.payload))
			}
			if msg.typ == msgCommandAMF0 {
				if vals, err := decodeAMF0(msg.payload); err == nil {
					statusCode(pad(vals))
				}
			}
		}
	})
}

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
