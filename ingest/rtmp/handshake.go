package rtmp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"io"
)

// Handshake sizes (RTMP spec 5.2): C0/S0 is the version byte, C1/S1 and C2/S2 are
// HandshakeSize bytes each.
const (
	Version       = 3
	HandshakeSize = 1536
	digestSize    = sha256.Size
	digestSpan    = 728 // digest offsets are taken modulo this
)

// The "Genuine Adobe" keys of the Flash lineage digest handshake, as librtmp,
// ffmpeg and nginx-rtmp carry them. Clients prove themselves with the first 30
// bytes of the player key; servers sign S1 with the first 36 bytes of the server
// key and derive the S2 key from the whole server key.
var (
	genuineKeyTail = []byte{
		0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1,
		0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec, 0x5d, 0x2d, 0x29, 0x80, 0x6f, 0xab,
		0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
	}
	genuineFPKey  = append([]byte("Genuine Adobe Flash Player 001"), genuineKeyTail...)
	genuineFMSKey = append([]byte("Genuine Adobe Flash Media Server 001"), genuineKeyTail...)
)

// serverVersion is what S1 advertises in its version field; clients that see a
// non-zero value expect a digest in S1 (ffmpeg checks it when the value is >= 3).
var serverVersion = [4]byte{0x0d, 0x0e, 0x0a, 0x0d}

// digestOffset returns where the 32-byte digest sits in a 1536-byte C1/S1 for the
// schema whose digest block starts at base (8 or 772): the four bytes at base
// summed, modulo 728, past those four bytes.
func digestOffset(p []byte, base int) int {
	sum := int(p[base]) + int(p[base+1]) + int(p[base+2]) + int(p[base+3])
	return base + 4 + sum%digestSpan
}

// hmacSHA256 computes the handshake HMAC over p with the digest bytes at skip
// (or none when skip < 0) left out.
func hmacSHA256(key, p []byte, skip int) []byte {
	m := hmac.New(sha256.New, key)
	if skip < 0 {
		m.Write(p)
	} else {
		m.Write(p[:skip])
		m.Write(p[skip+digestSize:])
	}
	return m.Sum(nil)
}

// findDigest looks for a valid client digest in C1 with either schema. It returns
// the digest's offset and the schema's base, or -1.
func findDigest(c1 []byte) (offset, base int) {
	for _, base := range [...]int{8, 772} {
		off := digestOffset(c1, base)
		want := hmacSHA256(genuineFPKey[:30], c1, off)
		if hmac.Equal(want, c1[off:off+digestSize]) {
			return off, base
		}
	}
	return -1, 0
}

// HandshakeReply is the server's side: it answers C0+C1 (1537 bytes) with S0+S1+S2 (3073 bytes). A C1
// that carries a valid Genuine Flash Player digest gets the digest reply librtmp,
// ffmpeg and OBS verify; any other C1 gets the simple handshake, with S2 echoing
// C1. rnd fills the random parts. digest reports which was used.
func HandshakeReply(c0c1 []byte, epoch uint32, rnd io.Reader) (reply []byte, digest bool, err error) {
	if len(c0c1) != 1+HandshakeSize {
		return nil, false, fmt.Errorf("rtmp: handshake: C0+C1 is %d bytes, want %d", len(c0c1), 1+HandshakeSize)
	}
	if c0c1[0] != Version {
		return nil, false, fmt.Errorf("rtmp: handshake: version %d, want %d", c0c1[0], Version)
	}
	c1 := c0c1[1:]
	reply = make([]byte, 1+2*HandshakeSize)
	reply[0] = Version
	s1 := reply[1 : 1+HandshakeSize]
	s2 := reply[1+HandshakeSize:]
	if _, err := io.ReadFull(rnd, s1[8:]); err != nil {
		return nil, false, fmt.Errorf("rtmp: handshake random: %w", err)
	}
	binary.BigEndian.PutUint32(s1, epoch)

	// A zero version field in C1 means a client that only knows the simple handshake.
	off := -1
	var base int
	if !bytes.Equal(c1[4:8], []byte{0, 0, 0, 0}) {
		off, base = findDigest(c1)
	}
	if off < 0 {
		// Simple handshake: S1 has a zero version field, S2 echoes C1 (spec 5.2.4).
		copy(s2, c1)
		return reply, false, nil
	}

	copy(s1[4:8], serverVersion[:])
	sOff := digestOffset(s1, base)
	copy(s1[sOff:], hmacSHA256(genuineFMSKey[:36], s1, sOff))

	if _, err := io.ReadFull(rnd, s2[:HandshakeSize-digestSize]); err != nil {
		return nil, false, fmt.Errorf("rtmp: handshake random: %w", err)
	}
	key := hmacSHA256(genuineFMSKey, c1[off:off+digestSize], -1)
	copy(s2[HandshakeSize-digestSize:], hmacSHA256(key, s2[:HandshakeSize-digestSize], -1))
	return reply, true, nil
}

// ClientHello is a client's C0+C1 for the simple handshake: C1's time and version
// fields are zero, which tells a server not to expect a digest, and the rest is
// filler (the spec asks for nothing random here).
func ClientHello() []byte {
	c := make([]byte, 1+HandshakeSize)
	c[0] = Version
	for i := 9; i < len(c); i++ {
		c[i] = byte(i*7 + i>>8)
	}
	return c
}

// ClientAck is a client's answer to the server's S0+S1+S2: C2, which echoes S1.
func ClientAck(s0s1s2 []byte) ([]byte, error) {
	if len(s0s1s2) != 1+2*HandshakeSize {
		return nil, fmt.Errorf("rtmp: handshake: S0+S1+S2 is %d bytes, want %d", len(s0s1s2), 1+2*HandshakeSize)
	}
	if s0s1s2[0] != Version {
		return nil, fmt.Errorf("rtmp: handshake: server version %d, want %d", s0s1s2[0], Version)
	}
	return s0s1s2[1 : 1+HandshakeSize], nil
}
