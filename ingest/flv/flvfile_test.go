package flv_test

import (
	"encoding/binary"
	"fmt"
)

// FLV tag types (FLV 10.1, E.4.1).
const (
	tagAudio  = 8
	tagVideo  = 9
	tagScript = 18
)

// flvTag is one tag of an FLV file: what RTMP carries as one message.
type flvTag struct {
	Type byte
	TS   uint32 // ms
	Body []byte
}

// readFLVTags splits an FLV file into its tags. It is for test fixtures only, so
// it fails on anything unexpected rather than resynchronising.
func readFLVTags(b []byte) ([]flvTag, error) {
	if len(b) < 13 || string(b[:3]) != "FLV" {
		return nil, fmt.Errorf("flv file: bad header")
	}
	p := int(binary.BigEndian.Uint32(b[5:9])) + 4 // header, then PreviousTagSize0
	var tags []flvTag
	for p < len(b) {
		if len(b)-p < 11 {
			return nil, fmt.Errorf("flv file: tag header at %d truncated", p)
		}
		h := b[p : p+11]
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		p += 11
		if len(b)-p < size+4 {
			return nil, fmt.Errorf("flv file: tag body at %d truncated", p)
		}
		tags = append(tags, flvTag{Type: h[0] & 0x1f, TS: ts, Body: b[p : p+size]})
		p += size
		if prev := int(binary.BigEndian.Uint32(b[p:])); prev != size+11 {
			return nil, fmt.Errorf("flv file: PreviousTagSize %d at %d, want %d", prev, p, size+11)
		}
		p += 4
	}
	return tags, nil
}
