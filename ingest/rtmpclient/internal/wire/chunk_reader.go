package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// Bounds on what the server may send us: it answers commands and acknowledges
// bytes, nothing big.
const (
	maxInMessage   = 1 << 20
	maxInStreams   = 16
	maxInChunkSize = 1 << 24
)

// Message is one reassembled RTMP message. Payload is valid until the next call
// to ChunkReader.next.
type Message struct {
	Type      uint8
	StreamID  uint32
	Timestamp uint32
	Payload   []byte
}

// inStream is one incoming chunk stream's header state and partial message.
type inStream struct {
	ts       uint32
	delta    uint32
	length   uint32
	typ      uint8
	streamID uint32
	ext      bool
	buf      []byte
}

// ChunkReader reassembles the server's chunked messages, bounded in message size,
// chunk size and chunk-stream count. It applies Set Chunk Size itself.
type ChunkReader struct {
	// MaxMessage bounds a message's declared length: 1 MiB from NewChunkReader,
	// enough for a server's replies; a test server reading media raises it.
	MaxMessage uint32
	r          *bufio.Reader
	chunkSize  uint32
	streams    map[uint32]*inStream
	hdr        [11]byte
}

func NewChunkReader(r io.Reader) *ChunkReader {
	return &ChunkReader{MaxMessage: maxInMessage, r: bufio.NewReaderSize(r, 4096), chunkSize: 128, streams: map[uint32]*inStream{}}
}

// Next returns the next complete message.
func (c *ChunkReader) Next() (Message, error) {
	for {
		msg, done, err := c.chunk()
		if err != nil || done {
			return msg, err
		}
	}
}

func (c *ChunkReader) read(n int) ([]byte, error) {
	if _, err := io.ReadFull(c.r, c.hdr[:n]); err != nil {
		return nil, err
	}
	return c.hdr[:n], nil
}

// chunk reads one chunk; done reports that it completed a message.
func (c *ChunkReader) chunk() (Message, bool, error) {
	b, err := c.read(1)
	if err != nil {
		return Message{}, false, err
	}
	format := b[0] >> 6
	csid := uint32(b[0] & 0x3f)
	switch csid {
	case 0:
		if b, err = c.read(1); err != nil {
			return Message{}, false, err
		}
		csid = 64 + uint32(b[0])
	case 1:
		if b, err = c.read(2); err != nil {
			return Message{}, false, err
		}
		csid = 64 + uint32(b[0]) + uint32(b[1])<<8
	}
	cs := c.streams[csid]
	if cs == nil {
		if len(c.streams) >= maxInStreams {
			return Message{}, false, fmt.Errorf("rtmp: chunk stream %d: more than %d chunk streams", csid, maxInStreams)
		}
		if format != 0 {
			return Message{}, false, fmt.Errorf("rtmp: chunk stream %d: first chunk has fmt %d, want 0", csid, format)
		}
		cs = &inStream{}
		c.streams[csid] = cs
	}
	size := [4]int{11, 7, 3, 0}[format]
	if size > 0 {
		if b, err = c.read(size); err != nil {
			return Message{}, false, err
		}
		field := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
		if len(cs.buf) > 0 {
			return Message{}, false, fmt.Errorf("rtmp: chunk stream %d: fmt %d header inside a message", csid, format)
		}
		if format <= 1 {
			cs.length = uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
			cs.typ = b[6]
			if cs.length > c.MaxMessage {
				return Message{}, false, fmt.Errorf("rtmp: chunk stream %d: message length %d > limit %d", csid, cs.length, c.MaxMessage)
			}
		}
		if format == 0 {
			cs.streamID = binary.LittleEndian.Uint32(b[7:11])
		}
		cs.ext = field == extendedTimestamp
		if cs.ext {
			if b, err = c.read(4); err != nil {
				return Message{}, false, err
			}
			field = binary.BigEndian.Uint32(b)
		}
		if format == 0 {
			cs.ts, cs.delta = field, 0
		} else {
			cs.delta = field
			cs.ts += field
		}
	} else {
		if cs.ext {
			if _, err = c.read(4); err != nil {
				return Message{}, false, err
			}
		}
		if len(cs.buf) == 0 {
			cs.ts += cs.delta // a new message with the previous header
		}
	}
	k := min(cs.length-uint32(len(cs.buf)), c.chunkSize)
	if cs.buf == nil || cap(cs.buf) < int(cs.length) {
		cs.buf = make([]byte, 0, cs.length)
	}
	start := len(cs.buf)
	cs.buf = cs.buf[:start+int(k)]
	if _, err := io.ReadFull(c.r, cs.buf[start:]); err != nil {
		return Message{}, false, err
	}
	if uint32(len(cs.buf)) < cs.length {
		return Message{}, false, nil
	}
	msg := Message{Type: cs.typ, StreamID: cs.streamID, Timestamp: cs.ts, Payload: cs.buf}
	cs.buf = cs.buf[:0]
	if msg.Type == MsgSetChunkSize {
		if len(msg.Payload) < 4 {
			return Message{}, false, fmt.Errorf("rtmp: set chunk size: %d-byte payload", len(msg.Payload))
		}
		size := binary.BigEndian.Uint32(msg.Payload) & 0x7fffffff
		if size == 0 || size > maxInChunkSize {
			return Message{}, false, fmt.Errorf("rtmp: set chunk size %d out of range 1..%d", size, maxInChunkSize)
		}
		c.chunkSize = size
	}
	return msg, true, nil
}
