package ingest

import (
	"bytes"
	"crypto/hmac"
	"os"
	"testing"
	"time"
)

func FuzzHandshake(f *testing.F) {
	f.Add(append([]byte{3}, digestC1(11, 8)...))
	f.Add(append([]byte{3}, digestC1(12, 772)...))
	f.Add(append([]byte{3}, make([]byte, handshakeSize)...))
	f.Add([]byte{6, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		// Fixed-size input as the connection reads it: shorter input is zero-padded.
		c0c1 := make([]byte, 1+handshakeSize)
		copy(c0c1, data)
		reply, digest, err := handshakeReply(c0c1, 1, bytes.NewReader(make([]byte, 2*handshakeSize)))
		if c0c1[0] != 3 {
			if err == nil {
				t.Fatalf("version %d accepted", c0c1[0])
			}
			return
		}
		if err != nil || len(reply) != 1+2*handshakeSize {
			t.Fatalf("reply %d bytes, %v", len(reply), err)
		}
		c1 := c0c1[1:]
		if !digest {
			if !bytes.Equal(reply[1+handshakeSize:], c1) {
				t.Fatal("simple S2 does not echo C1")
			}
			return
		}
		off, _ := findDigest(c1)
		key := testHMAC(testServerKey, c1[off:off+32])
		s2 := reply[1+handshakeSize:]
		if !hmac.Equal(s2[1504:], testHMAC(key, s2[:1504])) {
			t.Fatal("S2 does not verify")
		}
	})
}

func FuzzChunkReader(f *testing.F) {
	p300 := payload(300, 1)
	f.Add(cat(hdr(0, 6, 0x01020304, 300, 9, 1), p300[:128], hdr(3, 6, 0, 0, 0, 0), []byte{1, 2, 3, 4}, p300[128:256]))
	f.Add(cat(hdr(0, 4, 1000, 2, 8, 1), []byte{1, 2}, hdr(1, 4, 20, 3, 8, 0), []byte{3, 4, 5}, hdr(2, 4, 21, 0, 0, 0), []byte{6, 7, 8}))
	f.Add(cat(hdr(0, 2, 0, 4, msgSetChunkSize, 0), []byte{0, 0, 0, 1}, hdr(0, 1000, 2, 3, 18, 1), []byte{6, 7, 8}))
	f.Add(cat(hdr(0, 2, 0, 4, msgAbort, 0), []byte{0, 0, 0, 6}))
	const maxMsg = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		step := 1
		if len(data) > 0 {
			step = int(data[0])%64 + 1
		}
		r := newChunkReader(maxMsg, 1<<24, 8)
		msgs, _ := feed(r, data, step)
		for _, m := range msgs {
			if len(m.Payload) > maxMsg {
				t.Fatalf("message of %d bytes over the %d limit", len(m.Payload), maxMsg)
			}
		}
		if len(r.streams) > 8 {
			t.Fatalf("%d chunk streams", len(r.streams))
		}
		total := 0
		for _, cs := range r.streams {
			total += cap(cs.buf)
		}
		// Buffers grow only with bytes received (append doubles at most).
		if total > 2*len(data)+8*64 {
			t.Fatalf("%d buffer bytes for %d input bytes", total, len(data))
		}
	})
}

func FuzzAMF0(f *testing.F) {
	f.Add(appendAMF0(appendAMF0(nil, "connect"), amfObject{{"app", "live"}, {"fourCcList", []any{"avc1"}}}))
	f.Add(appendAMF0(nil, amfECMAArray{{"duration", 0.0}, {"encoder", "Lavf"}}))
	f.Add(appendAMF0(nil, amfDate{Millis: 1, TZ: 2}))
	f.Add(nest(17))
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := decodeAMF0(data)
		if err != nil {
			return
		}
		var enc []byte
		for _, v := range vals {
			enc = appendAMF0(enc, v)
		}
		again, err := decodeAMF0(enc)
		if err != nil {
			t.Fatalf("re-encoded values do not decode: %v", err)
		}
		var enc2 []byte
		for _, v := range again {
			enc2 = appendAMF0(enc2, v)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encode(decode(encode(v))) differs from encode(v)")
		}
	})
}

// FuzzConn replays the capture's handshake and commands, then the fuzzer's bytes
// as the rest of the stream: no panic, no hang, the Writer closed exactly once.
func FuzzConn(f *testing.F) {
	data, err := os.ReadFile("testdata/publish.rtmp")
	if err != nil {
		f.Fatal(err)
	}
	cp, err := scanCapture(data)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data[cp.mediaStart:min(len(data), cp.mediaStart+3000)])
	f.Add(data[cp.framesStart:min(len(data), cp.framesStart+3000)])
	f.Fuzz(func(t *testing.T, tail []byte) {
		var panics int
		h := &newWriters{}
		s := &Server{Handler: h, MaxMessageSize: 1 << 16, OnPanic: func() { panics++ }}
		rc := &replayConn{prefix: cp.data[:cp.mediaStart], body: tail, loops: 1}
		done := make(chan struct{})
		go func() {
			defer close(done)
			newConn(s, rc).serve()
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("connection did not end")
		}
		if panics != 0 {
			t.Fatal("panic recovered")
		}
		if len(h.writers) == 0 {
			t.Fatal("the capture's publish did not reach the handler")
		}
		for i, w := range h.writers {
			if w.closes != 1 {
				t.Fatalf("writer %d: Close called %d times", i, w.closes)
			}
		}
	})
}
