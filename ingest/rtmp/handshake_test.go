package rtmp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
)

// The keys again, typed in from librtmp's handshake.h, so that the test does not
// check the code against itself.
var (
	testTail = []byte{
		0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
		0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
		0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
	}
	testPlayerKey = []byte("Genuine Adobe Flash Player 001")
	testServerKey = append([]byte("Genuine Adobe Flash Media Server 001"), testTail...)
)

func testHMAC(key []byte, parts ...[]byte) []byte {
	m := hmac.New(sha256.New, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// testOffset: librtmp's GetDigestOffset1 (base 8) and GetDigestOffset2 (base 772).
func testOffset(b []byte, base int) int {
	return (int(b[base])+int(b[base+1])+int(b[base+2])+int(b[base+3]))%728 + base + 4
}

// digestC1 builds a C1 as librtmp does for the given schema base.
func digestC1(seed uint64, base int) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	c1 := make([]byte, HandshakeSize)
	for i := range c1 {
		c1[i] = byte(rng.Uint32())
	}
	copy(c1[4:8], []byte{0x80, 0x00, 0x07, 0x02})
	off := testOffset(c1, base)
	copy(c1[off:], testHMAC(testPlayerKey, c1[:off], c1[off+32:]))
	return c1
}

func TestHandshakeDigest(t *testing.T) {
	capture, err := os.ReadFile("../testdata/publish.rtmp")
	must(t, err)
	cases := []struct {
		name string
		c1   []byte
		base int
	}{
		{"schema 0 (digest at 8)", digestC1(1, 8), 8},
		{"schema 1 (digest at 772)", digestC1(2, 772), 772},
		{"schema 0 again", digestC1(3, 8), 8},
		{"ffmpeg's C1 from the capture", capture[1 : 1+HandshakeSize], -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c0c1 := append([]byte{3}, tc.c1...)
			reply, digest, err := HandshakeReply(c0c1, 1234, bytes.NewReader(bytes.Repeat([]byte{0x5a, 0xa5, 0x33}, 2000)))
			must(t, err)
			if !digest || len(reply) != 3073 || reply[0] != 3 {
				t.Fatalf("digest %v, reply %d bytes, S0 %d", digest, len(reply), reply[0])
			}
			base := tc.base
			cOff := -1
			for _, b := range []int{8, 772} {
				if o := testOffset(tc.c1, b); hmac.Equal(tc.c1[o:o+32], testHMAC(testPlayerKey, tc.c1[:o], tc.c1[o+32:])) {
					cOff, base = o, b
					break
				}
			}
			if cOff < 0 {
				t.Fatal("test C1 carries no valid digest")
			}
			s1 := reply[1:1537]
			s2 := reply[1537:]
			if bytes.Equal(s1[4:8], []byte{0, 0, 0, 0}) {
				t.Fatal("S1 version field is zero: clients will not look for a digest")
			}
			sOff := testOffset(s1, base)
			if !hmac.Equal(s1[sOff:sOff+32], testHMAC(testServerKey[:36], s1[:sOff], s1[sOff+32:])) {
				t.Fatal("S1 digest does not verify")
			}
			key := testHMAC(testServerKey, tc.c1[cOff:cOff+32])
			if !hmac.Equal(s2[1504:], testHMAC(key, s2[:1504])) {
				t.Fatal("S2 signature does not verify against C1's digest")
			}
		})
	}
}

func TestHandshakeSimple(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	cases := []struct {
		name    string
		version [4]byte
	}{
		{"zero version field", [4]byte{}},
		{"version field but no valid digest", [4]byte{9, 0, 124, 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c0c1 := make([]byte, 1+HandshakeSize)
			for i := range c0c1 {
				c0c1[i] = byte(rng.Uint32())
			}
			c0c1[0] = 3
			copy(c0c1[5:9], tc.version[:])
			reply, digest, err := HandshakeReply(c0c1, 99, bytes.NewReader(make([]byte, 4000)))
			must(t, err)
			if digest {
				t.Fatal("took a C1 without a valid digest for a digest handshake")
			}
			if reply[0] != 3 || !bytes.Equal(reply[1537:], c0c1[1:]) {
				t.Fatal("S2 does not echo C1")
			}
			if !bytes.Equal(reply[1:5], []byte{0, 0, 0, 99}) || !bytes.Equal(reply[5:9], []byte{0, 0, 0, 0}) {
				t.Fatalf("S1 time/zero fields % x", reply[1:9])
			}
		})
	}
}

func TestHandshakeErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"version 6", append([]byte{6}, make([]byte, HandshakeSize)...)},
		{"version 0", make([]byte, 1+HandshakeSize)},
		{"short", []byte{3, 0, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := HandshakeReply(tc.in, 0, bytes.NewReader(make([]byte, 4000)))
			if err == nil || !strings.Contains(err.Error(), "rtmp: handshake: ") {
				t.Fatalf("got %v, want a handshake error", err)
			}
		})
	}
}
