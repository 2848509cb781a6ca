package testkit

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"
)

// FLVTag is one tag of an FLV file: what RTMP carries as one message.
type FLVTag struct {
	Type byte   // 8 audio, 9 video, 18 script
	TS   uint32 // ms
	Body []byte // aliases the file's bytes
}

// FLVTags splits an FLV file into its tags (FLV 10.1, E.2-E.4). It reads test
// fixtures only, so it fails on anything unexpected, a PreviousTagSize that does
// not match included, rather than resynchronising as a server would.
func FLVTags(b []byte) ([]FLVTag, error) {
	if len(b) < 13 || string(b[:3]) != "FLV" {
		return nil, fmt.Errorf("flv file: bad header")
	}
	p := int(binary.BigEndian.Uint32(b[5:9])) + 4 // header, then PreviousTagSize0
	if p < 13 || p > len(b) {
		return nil, fmt.Errorf("flv file: header size %d of a %d-byte file", p-4, len(b))
	}
	var tags []FLVTag
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
		tags = append(tags, FLVTag{Type: h[0] & 0x1f, TS: ts, Body: b[p : p+size]})
		p += size
		if prev := int(binary.BigEndian.Uint32(b[p:])); prev != size+11 {
			return nil, fmt.Errorf("flv file: PreviousTagSize %d at %d, want %d", prev, p, size+11)
		}
		p += 4
	}
	return tags, nil
}

// ReadFLV reads an FLV file into its tags, failing the test on anything
// unexpected.
func ReadFLV(tb testing.TB, path string) []FLVTag {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	tags, err := FLVTags(b)
	if err != nil {
		tb.Fatalf("%s: %v", path, err)
	}
	return tags
}

// Box is one ISO BMFF box: its four-character type, the offset of its header
// within the bytes it was split from, and its body.
type Box struct {
	Type  string
	Start int
	Body  []byte
}

// Boxes splits b into boxes with plain 32-bit sizes that cover b exactly
// (ISO/IEC 14496-12 4.2); a stray byte or a size past the end is an error.
func Boxes(b []byte) ([]Box, error) {
	var out []Box
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return nil, fmt.Errorf("%d stray bytes at %d", len(b)-off, off)
		}
		size := int(binary.BigEndian.Uint32(b[off:]))
		if size < 8 || size > len(b)-off {
			return nil, fmt.Errorf("box %q at %d: size %d, %d bytes left", b[off+4:off+8], off, size, len(b)-off)
		}
		out = append(out, Box{Type: string(b[off+4 : off+8]), Start: off, Body: b[off+8 : off+size]})
		off += size
	}
	return out, nil
}
