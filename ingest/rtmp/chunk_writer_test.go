package rtmp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"testing/iotest"
)

// handMessage is a Message as the hand decoder below reassembles it.
type handMessage struct {
	csid     uint32
	format   byte // of the message's first chunk
	typ      uint8
	streamID uint32
	ts       uint32
	payload  []byte
}

// handDecode is an independent, spec-by-hand reading of the chunk formats the
// writer produces (fmt 0, 1 and 3, one-byte basic headers, extended timestamps
// repeated in continuation chunks). It fails the test on anything else.
func handDecode(t *testing.T, b []byte, chunkSize int) []handMessage {
	t.Helper()
	type state struct {
		ts, length, streamID uint32
		typ                  uint8
		ext                  bool
	}
	streams := map[uint32]*state{}
	var out []handMessage
	take := func(n int) []byte {
		if len(b) < n {
			t.Fatalf("hand decoder: want %d bytes, %d left", n, len(b))
		}
		p := b[:n]
		b = b[n:]
		return p
	}
	for len(b) > 0 {
		h := take(1)[0]
		format, csid := h>>6, uint32(h&0x3f)
		if csid < 2 {
			t.Fatalf("hand decoder: multi-byte basic header for csid %d", csid)
		}
		st := streams[csid]
		if st == nil {
			if format != 0 {
				t.Fatalf("csid %d: first chunk fmt %d", csid, format)
			}
			st = &state{}
			streams[csid] = st
		}
		var field uint32
		switch format {
		case 0:
			m := take(11)
			field = uint32(m[0])<<16 | uint32(m[1])<<8 | uint32(m[2])
			st.length = uint32(m[3])<<16 | uint32(m[4])<<8 | uint32(m[5])
			st.typ = m[6]
			st.streamID = binary.LittleEndian.Uint32(m[7:])
		case 1:
			m := take(7)
			field = uint32(m[0])<<16 | uint32(m[1])<<8 | uint32(m[2])
			st.length = uint32(m[3])<<16 | uint32(m[4])<<8 | uint32(m[5])
			st.typ = m[6]
		default:
			t.Fatalf("csid %d: a Message starts with fmt %d", csid, format)
		}
		st.ext = field == 0xffffff
		if st.ext {
			field = binary.BigEndian.Uint32(take(4))
		}
		if format == 0 {
			st.ts = field
		} else {
			st.ts += field
		}
		msg := handMessage{csid: csid, format: format, typ: st.typ, streamID: st.streamID, ts: st.ts}
		for first := true; first || len(msg.payload) < int(st.length); first = false {
			if !first {
				if h := take(1)[0]; h != 3<<6|byte(csid) {
					t.Fatalf("csid %d: continuation header 0x%02x", csid, h)
				}
				if st.ext {
					if v := binary.BigEndian.Uint32(take(4)); v != field {
						t.Fatalf("csid %d: continuation extended timestamp %d, want %d", csid, v, field)
					}
				}
			}
			n := min(int(st.length)-len(msg.payload), chunkSize)
			msg.payload = append(msg.payload, take(n)...)
		}
		out = append(out, msg)
	}
	return out
}

// A publisher's writer compresses headers: fmt 1 with the delta after a chunk
// stream's first message, fmt 0 again when time goes back or the message stream
// changes.
func TestChunkWriterCompressed(t *testing.T) {
	type send struct {
		csid     uint32
		typ      uint8
		streamID uint32
		ts       uint32
		n        int
	}
	tests := []struct {
		name       string
		chunkSize  int
		sends      []send
		wantFormat []byte
	}{
		{"small messages", 128, []send{{CSIDCommand, MsgCommandAMF0, 0, 0, 20}, {CSIDCommand, MsgCommandAMF0, 0, 0, 30}}, []byte{0, 1}},
		{"one Message over many chunks", 128, []send{{CSIDVideo, MsgVideo, 1, 0, 1000}}, []byte{0}},
		{"exact chunk multiple", 128, []send{{CSIDVideo, MsgVideo, 1, 0, 256}, {CSIDVideo, MsgVideo, 1, 33, 128}}, []byte{0, 1}},
		{"empty message", 4096, []send{{CSIDData, MsgDataAMF0, 1, 0, 0}, {CSIDData, MsgDataAMF0, 1, 5, 3}}, []byte{0, 1}},
		{"audio and video interleaved", 4096, []send{
			{CSIDVideo, MsgVideo, 1, 0, 9000}, {CSIDAudio, MsgAudio, 1, 0, 300}, {CSIDAudio, MsgAudio, 1, 21, 300},
			{CSIDVideo, MsgVideo, 1, 33, 5000}, {CSIDAudio, MsgAudio, 1, 42, 300},
		}, []byte{0, 0, 1, 1, 1}},
		{"time going back restarts with fmt 0", 4096, []send{{CSIDVideo, MsgVideo, 1, 100, 10}, {CSIDVideo, MsgVideo, 1, 50, 10}}, []byte{0, 0}},
		{"new Message stream restarts with fmt 0", 4096, []send{{CSIDCommand, MsgCommandAMF0, 0, 0, 10}, {CSIDCommand, MsgCommandAMF0, 1, 0, 10}}, []byte{0, 0}},
		{"extended absolute timestamp", 128, []send{{CSIDVideo, MsgVideo, 1, 0x1000000, 300}, {CSIDVideo, MsgVideo, 1, 0x1000021, 300}}, []byte{0, 1}},
		{"timestamp exactly 0xFFFFFF", 128, []send{{CSIDAudio, MsgAudio, 1, 0xffffff, 200}}, []byte{0}},
		{"extended delta", 128, []send{{CSIDAudio, MsgAudio, 1, 5, 10}, {CSIDAudio, MsgAudio, 1, 5 + 0x1234567, 200}}, []byte{0, 1}},
		{"wrapping 32-bit clock goes back", 4096, []send{{CSIDVideo, MsgVideo, 1, 0xffffffe0, 10}, {CSIDVideo, MsgVideo, 1, 0x10, 10}}, []byte{0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &ChunkWriter{ChunkSize: tc.chunkSize, Compress: true}
			var want []handMessage
			for i, s := range tc.sends {
				p := payload(s.n, byte(i))
				w.AppendMessage(s.csid, s.typ, s.streamID, s.ts, p)
				want = append(want, handMessage{csid: s.csid, format: tc.wantFormat[i], typ: s.typ, streamID: s.streamID, ts: s.ts, payload: p})
			}
			got := handDecode(t, w.Buf, tc.chunkSize)
			if len(got) != len(want) {
				t.Fatalf("decoded %d messages, sent %d", len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.csid != w.csid || g.format != w.format || g.typ != w.typ || g.streamID != w.streamID || g.ts != w.ts || !bytes.Equal(g.payload, w.payload) {
					t.Errorf("Message %d: got csid %d fmt %d type %d stream %d ts %d len %d; want csid %d fmt %d type %d stream %d ts %d len %d",
						i, g.csid, g.format, g.typ, g.streamID, g.ts, len(g.payload), w.csid, w.format, w.typ, w.streamID, w.ts, len(w.payload))
				}
			}
			// Our own reader (the one that reads servers) agrees too.
			cr := NewChunkReader(1<<20, 1<<24, 8)
			cr.chunkSize = uint32(tc.chunkSize)
			rd := NewReader(bytes.NewReader(w.Buf), cr)
			for i := range want {
				m, err := rd.Next()
				if err != nil {
					t.Fatalf("chunk reader, Message %d: %v", i, err)
				}
				if m.Type != want[i].typ || m.Timestamp != want[i].ts || m.StreamID != want[i].streamID || !bytes.Equal(m.Payload, want[i].payload) {
					t.Errorf("chunk reader, Message %d: type %d ts %d stream %d len %d", i, m.Type, m.Timestamp, m.StreamID, len(m.Payload))
				}
			}
		})
	}
}

// Steady-state sending reuses the buffer: no allocation per tag.
func TestChunkWriterDoesNotAllocate(t *testing.T) {
	w := &ChunkWriter{ChunkSize: 4096, Compress: true}
	p := payload(20000, 1)
	w.Buf = make([]byte, 0, 64<<10)
	ts := uint32(0)
	allocs := testing.AllocsPerRun(100, func() {
		w.Buf = w.Buf[:0]
		ts += 33
		w.AppendMessage(CSIDVideo, MsgVideo, 1, ts, p)
		w.AppendMessage(CSIDAudio, MsgAudio, 1, ts, p[:300])
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per tag pair, want 0", allocs)
	}
}

// A client's Reader, with the limits rtmpclient gives it, refuses what no server
// reply needs.
func TestReaderLimits(t *testing.T) {
	setChunk := func(size uint32) []byte {
		var w ChunkWriter
		w.AppendControl(MsgSetChunkSize, size)
		return w.Buf
	}
	big := []byte{0x03, 0, 0, 0, 0x20, 0, 0, MsgCommandAMF0, 0, 0, 0, 0} // length 2 MiB
	var many []byte
	for csid := range 20 {
		many = append(many, byte(2+csid), 0, 0, 0, 0, 0, 1, MsgCommandAMF0, 0, 0, 0, 0, 0x05)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"chunk size 0", setChunk(0), "set chunk size 0: want 1..16777216"},
		{"chunk size huge", setChunk(1 << 30), "set chunk size 1073741824"},
		{"chunk size top bit", setChunk(1<<31 | 4096), "set chunk size 2147487744"},
		{"short set chunk size", []byte{0x02, 0, 0, 0, 0, 0, 2, MsgSetChunkSize, 0, 0, 0, 0, 0, 1}, "2-byte payload"},
		{"message too long", big, "message length 2097152 > limit"},
		{"too many chunk streams", many, "more than 16 chunk streams"},
		{"fmt 3 first", []byte{0xc3, 1, 2}, "fmt 3 header before any fmt 0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rd := NewReader(bytes.NewReader(tc.in), NewChunkReader(1<<20, 1<<24, 16))
			var err error
			for range 100 {
				if _, err = rd.Next(); err != nil {
					break
				}
			}
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReaderAppliesSetChunkSize(t *testing.T) {
	w := ChunkWriter{ChunkSize: 128, Compress: true}
	w.AppendControl(MsgSetChunkSize, 4096)
	w.ChunkSize = 4096
	body := payload(3000, 7)
	w.AppendMessage(CSIDCommand, MsgCommandAMF0, 0, 0, body)
	// One byte per read: messages straddle every read boundary.
	rd := NewReader(iotest.OneByteReader(bytes.NewReader(w.Buf)), NewChunkReader(1<<20, 1<<24, 16))
	if m, err := rd.Next(); err != nil || m.Type != MsgSetChunkSize {
		t.Fatalf("first message: %v %v", m, err)
	}
	m, err := rd.Next()
	if err != nil || !bytes.Equal(m.Payload, body) {
		t.Fatalf("second message: %v, %v", m, err)
	}
	if _, err := rd.Next(); err != io.EOF {
		t.Fatalf("after the last message: %v, want EOF", err)
	}
}

func TestChunkWriterBytes(t *testing.T) {
	w := ChunkWriter{ChunkSize: 128, Compress: true}
	w.AppendMessage(CSIDAudio, MsgAudio, 1, 0, []byte{0xaf, 1, 2})
	w.AppendMessage(CSIDAudio, MsgAudio, 1, 21, []byte{0xaf, 1, 3})
	// fmt 0 on chunk stream 4, then fmt 1 (0x44) carrying the 21 ms delta.
	want := "04 00 00 00 00 00 03 08 01 00 00 00 af 01 02 44 00 00 15 00 00 03 08 af 01 03"
	if got := fmt.Sprintf("% x", w.Buf); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	// Without Compress (the server's replies) every message has a fmt 0 header.
	w = ChunkWriter{ChunkSize: 128}
	w.AppendMessage(CSIDAudio, MsgAudio, 1, 0, []byte{0xaf, 1, 2})
	w.AppendMessage(CSIDAudio, MsgAudio, 1, 21, []byte{0xaf, 1, 3})
	want = "04 00 00 00 00 00 03 08 01 00 00 00 af 01 02 04 00 00 15 00 00 03 08 01 00 00 00 af 01 03"
	if got := fmt.Sprintf("% x", w.Buf); got != want {
		t.Errorf("uncompressed: got  %s\nwant %s", got, want)
	}
}
