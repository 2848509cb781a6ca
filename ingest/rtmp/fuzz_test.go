package rtmp

import (
	"bytes"
	"crypto/hmac"
	"testing"
)

// Every parser reads a peer's bytes: no input may panic, hang or grow past its
// bounds. Seeds: testdata/fuzz, partly cut from the ffmpeg capture
// (ingest's TestMakeCapture rewrites those).

func FuzzHandshake(f *testing.F) {
	f.Add(append([]byte{3}, digestC1(11, 8)...))
	f.Add(append([]byte{3}, digestC1(12, 772)...))
	f.Add(append([]byte{3}, make([]byte, HandshakeSize)...))
	f.Add([]byte{6, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		// The client's side reads S0+S1+S2 as the server sent it: any version but 3
		// is refused, else C2 echoes S1.
		s := make([]byte, 1+2*HandshakeSize)
		copy(s, data)
		c2, err := ClientAck(s)
		if (err == nil) != (s[0] == 3) || err == nil && !bytes.Equal(c2, s[1:1+HandshakeSize]) {
			t.Fatalf("S0 %d: C2 %d bytes, %v", s[0], len(c2), err)
		}

		// Fixed-size input as the connection reads it: shorter input is zero-padded.
		c0c1 := make([]byte, 1+HandshakeSize)
		copy(c0c1, data)
		reply, digest, err := HandshakeReply(c0c1, 1, bytes.NewReader(make([]byte, 2*HandshakeSize)))
		if c0c1[0] != 3 {
			if err == nil {
				t.Fatalf("version %d accepted", c0c1[0])
			}
			return
		}
		if err != nil || len(reply) != 1+2*HandshakeSize {
			t.Fatalf("reply %d bytes, %v", len(reply), err)
		}
		c1 := c0c1[1:]
		if !digest {
			if !bytes.Equal(reply[1+HandshakeSize:], c1) {
				t.Fatal("simple S2 does not echo C1")
			}
			return
		}
		off, _ := findDigest(c1)
		key := testHMAC(testServerKey, c1[off:off+32])
		s2 := reply[1+HandshakeSize:]
		if !hmac.Equal(s2[1504:], testHMAC(key, s2[:1504])) {
			t.Fatal("S2 does not verify")
		}
	})
}

func FuzzChunkReader(f *testing.F) {
	p300 := payload(300, 1)
	f.Add(cat(hdr(0, 6, 0x01020304, 300, 9, 1), p300[:128], hdr(3, 6, 0, 0, 0, 0), []byte{1, 2, 3, 4}, p300[128:256]))
	f.Add(cat(hdr(0, 4, 1000, 2, 8, 1), []byte{1, 2}, hdr(1, 4, 20, 3, 8, 0), []byte{3, 4, 5}, hdr(2, 4, 21, 0, 0, 0), []byte{6, 7, 8}))
	f.Add(cat(hdr(0, 2, 0, 4, MsgSetChunkSize, 0), []byte{0, 0, 0, 1}, hdr(0, 1000, 2, 3, 18, 1), []byte{6, 7, 8}))
	f.Add(cat(hdr(0, 2, 0, 4, MsgAbort, 0), []byte{0, 0, 0, 6}))
	w := ChunkWriter{Compress: true}
	w.AppendControl(MsgSetChunkSize, 4096)
	w.ChunkSize = 4096
	w.AppendCommand(0, "_result", 1, nil, Object{{"code", "NetConnection.Connect.Success"}})
	w.AppendMessage(CSIDVideo, MsgVideo, 1, 0x1000000, payload(5000, 3))
	f.Add(w.Buf)
	const maxMsg = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		step := 1
		if len(data) > 0 {
			step = int(data[0])%64 + 1
		}
		r := NewChunkReader(maxMsg, 1<<24, 8)
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

		// Reader, reading the same bytes as a client does, sees the same messages
		// (up to where either stops: Reader also refuses a short Set Chunk Size).
		rd := NewReader(bytes.NewReader(data), NewChunkReader(maxMsg, 1<<24, 8))
		for i := range msgs {
			m, err := rd.Next()
			if err != nil {
				break
			}
			g := gotMsg{m.CSID, m.Type, m.StreamID, m.Timestamp, m.Payload}
			if w := msgs[i]; g.CSID != w.CSID || g.Type != w.Type || g.StreamID != w.StreamID || g.TS != w.TS || !bytes.Equal(g.Payload, w.Payload) {
				t.Fatalf("message %d: Reader %v, Parse %v", i, g, w)
			}
		}
	})
}

func FuzzAMF0(f *testing.F) {
	f.Add(AppendAMF0(AppendAMF0(nil, "connect"), Object{{"app", "live"}, {"fourCcList", []any{"avc1"}}}))
	f.Add(AppendAMF0(nil, ECMAArray{{"duration", 0.0}, {"encoder", "Lavf"}}))
	f.Add(AppendAMF0(nil, Date{Millis: 1, TZ: 2}))
	f.Add(nest(17))
	f.Fuzz(func(t *testing.T, data []byte) {
		vals, err := DecodeAMF0(data)
		if err != nil {
			return
		}
		var enc []byte
		for _, v := range vals {
			enc = AppendAMF0(enc, v)
		}
		again, err := DecodeAMF0(enc)
		if err != nil {
			t.Fatalf("re-encoded values do not decode: %v", err)
		}
		var enc2 []byte
		for _, v := range again {
			enc2 = AppendAMF0(enc2, v)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatal("encode(decode(encode(v))) differs from encode(v)")
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
