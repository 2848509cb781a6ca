package rtmp

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

type gotMsg struct {
	CSID     uint32
	Type     uint8
	StreamID uint32
	TS       uint32
	Payload  []byte
}

func (m gotMsg) String() string {
	return fmt.Sprintf("cs %d type %d sid %d ts %d len %d", m.CSID, m.Type, m.StreamID, m.TS, len(m.Payload))
}

// feed runs b through r step bytes at a time, as a connection with tiny reads
// would, handling Set Chunk Size and Abort like the connection does.
func feed(r *ChunkReader, b []byte, step int) ([]gotMsg, error) {
	var out []gotMsg
	var pending []byte
	for len(b) > 0 || len(pending) > 0 {
		k := min(step, len(b))
		pending = append(pending, b[:k]...)
		b = b[k:]
		for {
			n, msg, err := r.Parse(pending)
			if err != nil {
				return out, err
			}
			pending = pending[n:]
			if msg != nil {
				out = append(out, gotMsg{msg.CSID, msg.Type, msg.StreamID, msg.Timestamp, bytes.Clone(msg.Payload)})
				switch {
				case len(msg.Payload) < 4:
				case msg.Type == MsgSetChunkSize:
					if err := r.SetChunkSize(binary.BigEndian.Uint32(msg.Payload)); err != nil {
						return out, err
					}
				case msg.Type == MsgAbort:
					r.Abort(binary.BigEndian.Uint32(msg.Payload))
				}
				continue
			}
			if n == 0 {
				break
			}
		}
		if k == 0 {
			break
		}
	}
	return out, nil
}

func payload(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*13)
	}
	return b
}

// hdr builds a chunk header by hand: basic header, then the fmt's fields.
func hdr(format byte, csid uint32, ts uint32, length int, typ byte, sid uint32) []byte {
	var b []byte
	switch {
	case csid < 64:
		b = append(b, format<<6|byte(csid))
	case csid < 320:
		b = append(b, format<<6, byte(csid-64))
	default:
		b = append(b, format<<6|1, byte(csid-64), byte((csid-64)>>8))
	}
	field := ts
	if ts >= 0xffffff {
		field = 0xffffff
	}
	if format <= 2 {
		b = append(b, byte(field>>16), byte(field>>8), byte(field))
	}
	if format <= 1 {
		b = append(b, byte(length>>16), byte(length>>8), byte(length), typ)
	}
	if format == 0 {
		b = append(b, byte(sid), byte(sid>>8), byte(sid>>16), byte(sid>>24))
	}
	if field == 0xffffff {
		b = append(b, byte(ts>>24), byte(ts>>16), byte(ts>>8), byte(ts))
	}
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func TestChunkReader(t *testing.T) {
	p300 := payload(300, 1)
	q200 := payload(200, 7)
	ext := []byte{0x01, 0x02, 0x03, 0x04} // 0x01020304 repeated on type-3 chunks
	tests := []struct {
		name string
		in   []byte
		want []gotMsg
	}{
		{
			name: "fmt 0 single chunk",
			in:   cat(hdr(0, 3, 1000, 5, 20, 0), []byte("hello")),
			want: []gotMsg{{3, 20, 0, 1000, []byte("hello")}},
		},
		{
			name: "fmt 0 then fmt 3 continuations at 128 bytes",
			in:   cat(hdr(0, 6, 40, 300, 9, 1), p300[:128], hdr(3, 6, 0, 0, 0, 0), p300[128:256], hdr(3, 6, 0, 0, 0, 0), p300[256:]),
			want: []gotMsg{{6, 9, 1, 40, p300}},
		},
		{
			name: "fmt 1, fmt 2 and fmt 3 add deltas",
			in: cat(hdr(0, 4, 1000, 2, 8, 1), []byte{1, 2},
				hdr(1, 4, 20, 3, 8, 0), []byte{3, 4, 5},
				hdr(2, 4, 21, 0, 0, 0), []byte{6, 7, 8},
				hdr(3, 4, 0, 0, 0, 0), []byte{9, 10, 11}),
			want: []gotMsg{{4, 8, 1, 1000, []byte{1, 2}}, {4, 8, 1, 1020, []byte{3, 4, 5}}, {4, 8, 1, 1041, []byte{6, 7, 8}}, {4, 8, 1, 1062, []byte{9, 10, 11}}},
		},
		{
			name: "fmt 3 new message right after fmt 0 has delta 0",
			in:   cat(hdr(0, 4, 500, 1, 8, 1), []byte{1}, hdr(3, 4, 0, 0, 0, 0), []byte{2}),
			want: []gotMsg{{4, 8, 1, 500, []byte{1}}, {4, 8, 1, 500, []byte{2}}},
		},
		{
			name: "extended timestamp repeated on type-3 continuation chunks",
			in: cat(hdr(0, 6, 0x01020304, 300, 9, 1), p300[:128],
				hdr(3, 6, 0, 0, 0, 0), ext, p300[128:256],
				hdr(3, 6, 0, 0, 0, 0), ext, p300[256:]),
			want: []gotMsg{{6, 9, 1, 0x01020304, p300}},
		},
		{
			name: "extended delta on fmt 1, then fmt 3 new message repeats it",
			in: cat(hdr(0, 6, 10, 1, 9, 1), []byte{1},
				hdr(1, 6, 0x01000000, 1, 9, 0), []byte{2},
				hdr(3, 6, 0, 0, 0, 0), []byte{0x01, 0, 0, 0}, []byte{3}),
			want: []gotMsg{{6, 9, 1, 10, []byte{1}}, {6, 9, 1, 0x0100000a, []byte{2}}, {6, 9, 1, 0x0200000a, []byte{3}}},
		},
		{
			name: "timestamp wraps modulo 2^32",
			in:   cat(hdr(0, 4, 0xfffffff0, 1, 8, 1), []byte{1}, hdr(2, 4, 0x20, 0, 0, 0), []byte{2}),
			want: []gotMsg{{4, 8, 1, 0xfffffff0, []byte{1}}, {4, 8, 1, 0x10, []byte{2}}},
		},
		{
			name: "interleaved chunk streams",
			in: cat(hdr(0, 4, 0, 200, 8, 1), q200[:128], hdr(0, 6, 5, 300, 9, 1), p300[:128],
				hdr(3, 4, 0, 0, 0, 0), q200[128:], hdr(3, 6, 0, 0, 0, 0), p300[128:256],
				hdr(3, 6, 0, 0, 0, 0), p300[256:]),
			want: []gotMsg{{4, 8, 1, 0, q200}, {6, 9, 1, 5, p300}},
		},
		{
			name: "abort drops the partial message",
			in: cat(hdr(0, 6, 0, 300, 9, 1), p300[:128],
				hdr(0, 2, 0, 4, MsgAbort, 0), []byte{0, 0, 0, 6},
				hdr(0, 6, 99, 3, 9, 1), []byte{7, 8, 9}),
			want: []gotMsg{{2, MsgAbort, 0, 0, []byte{0, 0, 0, 6}}, {6, 9, 1, 99, []byte{7, 8, 9}}},
		},
		{
			name: "set chunk size applies to the next chunk",
			in:   cat(hdr(0, 2, 0, 4, MsgSetChunkSize, 0), []byte{0, 0, 1, 44}, hdr(0, 6, 0, 300, 9, 1), p300),
			want: []gotMsg{{2, MsgSetChunkSize, 0, 0, []byte{0, 0, 1, 44}}, {6, 9, 1, 0, p300}},
		},
		{
			name: "2-byte and 3-byte chunk stream ids",
			in:   cat(hdr(0, 100, 1, 1, 18, 1), []byte{5}, hdr(0, 1000, 2, 1, 18, 1), []byte{6}, hdr(0, 319, 3, 0, 18, 1)),
			want: []gotMsg{{100, 18, 1, 1, []byte{5}}, {1000, 18, 1, 2, []byte{6}}, {319, 18, 1, 3, []byte{}}},
		},
	}
	for _, tc := range tests {
		for _, step := range []int{1, 7, 1 << 20} {
			t.Run(fmt.Sprintf("%s/step %d", tc.name, step), func(t *testing.T) {
				got, err := feed(NewChunkReader(1<<20, 1<<24, 8), tc.in, step)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(tc.want) {
					t.Fatalf("got %d messages %v, want %d %v", len(got), got, len(tc.want), tc.want)
				}
				for i := range got {
					g, w := got[i], tc.want[i]
					if g.CSID != w.CSID || g.Type != w.Type || g.StreamID != w.StreamID || g.TS != w.TS || !bytes.Equal(g.Payload, w.Payload) {
						t.Fatalf("message %d: got %v, want %v", i, g, w)
					}
				}
			})
		}
	}
}

func TestChunkReaderErrors(t *testing.T) {
	var many []byte
	for i := 0; i < 9; i++ {
		many = append(many, hdr(0, uint32(10+i), 0, 1, 18, 0)...)
		many = append(many, 5)
	}
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"message over the limit", hdr(0, 6, 0, 1<<20+1, 9, 1), "chunk stream 6: message length 1048577 > limit 1048576"},
		{"fmt 1 first", hdr(1, 6, 0, 10, 9, 0), "fmt 1 header before any fmt 0"},
		{"fmt 3 first", hdr(3, 6, 0, 0, 0, 0), "fmt 3 header before any fmt 0"},
		{"too many chunk streams", many, "more than 8 chunk streams"},
		{"set chunk size 0", cat(hdr(0, 2, 0, 4, 1, 0), []byte{0, 0, 0, 0}), "set chunk size 0"},
		{"set chunk size over max", cat(hdr(0, 2, 0, 4, 1, 0), []byte{0x02, 0, 0, 0}), "set chunk size 33554432"},
		{"set chunk size top bit", cat(hdr(0, 2, 0, 4, 1, 0), []byte{0x80, 0, 0, 1}), "set chunk size 2147483649"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := feed(NewChunkReader(1<<20, 1<<24, 8), tc.in, 3)
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

// TestChunkReaderNoUpfrontAllocation: a declared 1 MiB message with 10 bytes sent
// must not cost 1 MiB.
func TestChunkReaderNoUpfrontAllocation(t *testing.T) {
	r := NewChunkReader(1<<20, 1<<24, 8)
	in := cat(hdr(0, 6, 0, 1<<20, 9, 1), payload(10, 0))
	if _, err := feed(r, in, 1<<10); err != nil {
		t.Fatal(err)
	}
	if c := cap(r.streams[0].buf); c > 4096 {
		t.Fatalf("buffer capacity %d after 10 payload bytes", c)
	}
}

func TestChunkWriterRoundTrip(t *testing.T) {
	for _, ts := range []uint32{0, 1000, 0xfffffe, 0xffffff, 0x12345678} {
		for _, csid := range []uint32{2, 63, 64, 319, 320, 65599} {
			w := ChunkWriter{ChunkSize: 100}
			p := payload(450, byte(ts))
			w.AppendMessage(csid, 9, 1, ts, p)
			r := NewChunkReader(1<<20, 1<<24, 8)
			r.chunkSize = 100
			got, err := feed(r, w.Buf, 1<<20)
			if err != nil || len(got) != 1 || got[0].TS != ts || got[0].CSID != csid || !bytes.Equal(got[0].Payload, p) {
				t.Fatalf("ts %d csid %d: %v %v", ts, csid, got, err)
			}
		}
	}
}
