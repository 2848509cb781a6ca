package rtmpclient

import "testing"

// A clip file is read from disk, but it may be anything: no input may panic.
func FuzzParseFLV(f *testing.F) {
	f.Add(buildFLV(flvTag{TagScript, 0, metaBody}, flvTag{TagVideo, 0, avcSeq}, flvTag{TagVideo, 0, avcKey}, flvTag{TagAudio, 10, aacRaw}))
	f.Add(buildFLV(flvTag{TagVideo, 0xffffffff, avcEnd}))
	f.Add(buildFLV(flvTag{TagVideo, 0, hvcModExSeq}, flvTag{TagVideo, 0, mtAVCSeq}, flvTag{TagAudio, 0, mtAACSeq}, flvTag{TagAudio, 0, opusSeq},
		flvTag{TagVideo, 0, command}, flvTag{TagVideo, 0, hvcFrame}, flvTag{TagVideo, 40, hvcEnd}))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseFLV(data)
		if err != nil {
			return
		}
		if len(c.Tags) == 0 || c.Period == 0 {
			t.Fatalf("clip with %d tags and period %d", len(c.Tags), c.Period)
		}
		for _, tg := range c.Tags {
			if len(tg.Body) == 0 || len(tg.Body) > c.MaxTag {
				t.Fatalf("tag body of %d bytes, max %d", len(tg.Body), c.MaxTag)
			}
		}
	})
}
