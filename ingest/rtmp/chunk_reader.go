package rtmp

import (
	"encoding/binary"
	"fmt"
)

// Chunk stream facts of the protocol rather than configuration.
const (
	DefaultChunkSize  = 128        // until a peer says otherwise (spec 5.4.1)
	MaxChunkHeader    = 3 + 11 + 4 // basic header, fmt 0 message header, extended timestamp
	extendedTimestamp = 0xffffff
)

// chunkStream is the header-compression state of one chunk stream id plus the
// message being reassembled on it.
type chunkStream struct {
	id       uint32
	started  bool   // a fmt 0 header was seen: fmt 1..3 have something to refer to
	extended bool   // the last fmt 0..2 header used an extended timestamp
	inMsg    bool   // a message is partly read
	tsField  uint32 // the last timestamp or delta field as sent (extended value if extended)
	delta    uint32 // the delta applied to a message started by a fmt 3 header
	ts       uint32
	length   uint32
	typ      uint8
	streamID uint32
	buf      []byte // reused across messages; grows with data actually received
}

// ChunkReader reassembles RTMP messages from the chunk stream (spec 5.3). It does
// no I/O: Parse takes whatever bytes the connection has and says how many it
// used. Buffers grow only as payload bytes arrive and are reused afterwards, so a
// peer that declares a large message but sends little costs little.
type ChunkReader struct {
	chunkSize     uint32
	maxChunkSize  uint32
	maxMessage    uint32
	maxStreams    int
	streams       []*chunkStream
	cur           *chunkStream // mid-chunk: the stream whose payload bytes come next
	chunkLeft     uint32       // payload bytes left in the current chunk
	headerPending bool         // cur's header parsed, payload not all consumed
	msg           Message      // the last completed message, returned by pointer to avoid an allocation
}

// NewChunkReader bounds a message's declared length, the peer's chunk size and
// the number of chunk stream ids it may use.
func NewChunkReader(maxMessage, maxChunkSize uint32, maxStreams int) *ChunkReader {
	return &ChunkReader{
		chunkSize:    DefaultChunkSize,
		maxChunkSize: maxChunkSize,
		maxMessage:   maxMessage,
		maxStreams:   maxStreams,
	}
}

// SetChunkSize applies the peer's Set Chunk Size (spec 5.4.1): the top bit must be
// zero and the size 1..maxChunkSize.
func (r *ChunkReader) SetChunkSize(n uint32) error {
	if n&0x80000000 != 0 || n == 0 || n > r.maxChunkSize {
		return fmt.Errorf("rtmp: set chunk size %d: want 1..%d", n, r.maxChunkSize)
	}
	r.chunkSize = n
	return nil
}

// Abort drops the partly read message on csid (Abort Message, spec 5.4.2).
func (r *ChunkReader) Abort(csid uint32) {
	for _, cs := range r.streams {
		if cs.id == csid {
			cs.inMsg = false
			cs.buf = cs.buf[:0]
			if r.cur == cs {
				r.cur, r.headerPending, r.chunkLeft = nil, false, 0
			}
		}
	}
}

func (r *ChunkReader) stream(id uint32) (*chunkStream, error) {
	for _, cs := range r.streams {
		if cs.id == id {
			return cs, nil
		}
	}
	if len(r.streams) >= r.maxStreams {
		return nil, fmt.Errorf("rtmp: chunk stream %d: more than %d chunk streams", id, r.maxStreams)
	}
	cs := &chunkStream{id: id}
	r.streams = append(r.streams, cs)
	return cs, nil
}

// Parse consumes bytes from p. It returns the number of bytes used and, when one
// completed, a message, whose Payload is valid until the next call. n == 0 with
// a nil message means p holds less than a whole chunk header: call again with
// more bytes appended. Set Chunk Size and Abort are the caller's to apply, since
// it decides what a bad one means.
func (r *ChunkReader) Parse(p []byte) (n int, msg *Message, err error) {
	if !r.headerPending {
		hn, err := r.header(p)
		if err != nil || hn == 0 {
			return 0, nil, err
		}
		n = hn
		if r.cur.length == 0 {
			// A zero-length message completes at its header.
			r.headerPending = false
			r.cur.inMsg = false
			return n, r.complete(r.cur), nil
		}
	}
	cs := r.cur
	take := min(uint32(len(p)-n), r.chunkLeft)
	cs.buf = append(cs.buf, p[n:n+int(take)]...)
	n += int(take)
	r.chunkLeft -= take
	if r.chunkLeft > 0 {
		return n, nil, nil
	}
	r.headerPending = false
	if uint32(len(cs.buf)) < cs.length {
		return n, nil, nil
	}
	cs.inMsg = false
	return n, r.complete(cs), nil
}

func (r *ChunkReader) complete(cs *chunkStream) *Message {
	r.msg = Message{CSID: cs.id, Type: cs.typ, StreamID: cs.streamID, Timestamp: cs.ts, Payload: cs.buf}
	return &r.msg
}

// header parses one chunk header (basic, message and extended timestamp) and
// prepares r.cur and r.chunkLeft. It returns 0 when p is too short.
func (r *ChunkReader) header(p []byte) (int, error) {
	if len(p) < 1 {
		return 0, nil
	}
	format := p[0] >> 6
	id := uint32(p[0] & 0x3f)
	n := 1
	switch id {
	case 0:
		if len(p) < 2 {
			return 0, nil
		}
		id = 64 + uint32(p[1])
		n = 2
	case 1:
		if len(p) < 3 {
			return 0, nil
		}
		id = 64 + uint32(p[1]) + uint32(p[2])<<8
		n = 3
	}
	hlen := [4]int{11, 7, 3, 0}[format]
	if len(p) < n+hlen {
		return 0, nil
	}
	cs, err := r.stream(id)
	if err != nil {
		return 0, err
	}
	h := p[n : n+hlen]
	n += hlen
	if format != 0 && !cs.started {
		return 0, fmt.Errorf("rtmp: chunk stream %d: fmt %d header before any fmt 0", id, format)
	}
	if format < 3 && cs.inMsg {
		// A new header mid-message: the previous message was abandoned (spec has
		// Abort for this; some encoders just start over). Drop what was read.
		cs.inMsg = false
	}

	var field uint32
	if format < 3 {
		field = uint32(h[0])<<16 | uint32(h[1])<<8 | uint32(h[2])
	}
	ext := format < 3 && field == extendedTimestamp || format == 3 && cs.extended
	if ext {
		if len(p) < n+4 {
			return 0, nil
		}
		field = binary.BigEndian.Uint32(p[n:])
		n += 4
	}

	// Everything is in p: commit the header to the stream state.
	switch format {
	case 0:
		cs.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
		cs.typ = h[6]
		cs.streamID = binary.LittleEndian.Uint32(h[7:11])
		cs.started = true
	case 1:
		cs.length = uint32(h[3])<<16 | uint32(h[4])<<8 | uint32(h[5])
		cs.typ = h[6]
	}
	if format < 3 {
		cs.extended = ext
		cs.tsField = field
	}
	if !cs.inMsg {
		if cs.length > r.maxMessage {
			return 0, fmt.Errorf("rtmp: chunk stream %d: message length %d > limit %d", id, cs.length, r.maxMessage)
		}
		switch format {
		case 0:
			cs.ts = field
			cs.delta = 0
		case 1, 2:
			cs.ts += field
			cs.delta = field
		case 3:
			cs.ts += cs.delta
		}
		cs.inMsg = true
		cs.buf = cs.buf[:0]
	}
	// A continuation chunk's extended timestamp repeats the message's; it changes nothing.
	r.cur = cs
	r.chunkLeft = min(r.chunkSize, cs.length-uint32(len(cs.buf)))
	r.headerPending = true
	return n, nil
}

// String describes the reader's state for error context.
func (r *ChunkReader) String() string {
	return fmt.Sprintf("chunk size %d, %d chunk streams", r.chunkSize, len(r.streams))
}
