package main

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

// message is one reassembled RTMP message. payload is valid until the next call
// to chunkReader.next.
type message struct {
	typ      uint8
	streamID uint32
	ts       uint32
	payload  []byte
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

// chunkReader reassembles the server's chunked messages, bounded in message size,
// chunk size and chunk-stream count. It applies Set Chunk Size itself.
type chunkReader struct {
	r         *bufio.Reader
	chunkSize uint32
	streams   map[uint32]*inStream
	hdr       [11]byte
}

func newChunkReader(r io.Reader) *chunkReader {
	return &chunkReader{r: bufio.NewReaderSize(r, 4096), chunkSize: 128, streams: map[uint32]*inStream{}}
}

// next returns the next complete message.
func (c *chunkReader) next() (message, error) {
	for {
		msg, done, err := c.chunk()
		if err != nil || done {
			return msg, err
		}
	}
}

func (c *chunkReader) read(n int) ([]byte, error) {
	if _, err := io.ReadFull(c.r, c.hdr[:n]); err != nil {
		return nil, err
	}
	return c.hdr[:n], nil
}

// chunk reads one chunk; done reports that it completed a message.
func (c *chunkReader) chunk() (message, bool, error) {
	b, err := c.read(1)
	if err != nil {
		return message{}, false, err
	}
	format := b[0] >> 6
	csid := uint32(b[0] & 0x3f)
	switch csid {
	case 0:
		if b, err = c.read(1); err != nil {
			return message{}, false, err
		}
		csid = 64 + uint32(b[0])
	case 1:
		if b, err = c.read(2); err != nil {
			return message{}, false, err
		}
		csid = 64 + uint32(b[0]) + uint32(b[1])<<8
	}
	cs := c.streams[csid]
	if cs == nil {
		if len(c.streams) >= maxInStreams {
			return message{}, false, fmt.Errorf("rtmp: chunk stream %d: more than %d chunk streams", csid, maxInStreams)
		}
		if format != 0 {
			return message{}, false, fmt.Errorf("rtmp: chunk stream %d: first chunk has fmt %d, want 0", csid, format)
		}
		cs = &inStream{}
		c.streams[csid] = cs
	}
	size := [4]int{11, 7, 3, 0}[format]
	if size > 0 {
		if b, err = c.read(size); err != nil {
			return message{}, false, err
		}
		field := uint32(b[0])<<16 | uint32(b[1])<<8 | uint32(b[2])
		if len(cs.buf) > 0 {
			return message{}, false, fmt.Errorf("rtmp: chunk stream %d: fmt %d header inside a message", csid, format)
		}
		if format <= 1 {
			cs.length = uint32(b[3])<<16 | uint32(b[4])<<8 | uint32(b[5])
			cs.typ = b[6]
			if cs.length > maxInMessage {
				return message{}, false, fmt.Errorf("rtmp: chunk stream %d: message length %d > limit %d", csid, cs.length, maxInMessage)
			}
		}
		if format == 0 {
			cs.streamID = binary.LittleEndian.Uint32(b[7:11])
		}
		cs.ext = field == extendedTimestamp
		if cs.ext {
			if b, err = c.read(4); err != nil {
				return message{}, false, err
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
				return message{}, false, err
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
		return message{}, false, err
	}
	if uint32(len(cs.buf)) < cs.length {
		return message{}, false, nil
	}
	msg := message{typ: cs.typ, streamID: cs.streamID, ts: cs.ts, payload: cs.buf}
	cs.buf = cs.buf[:0]
	if msg.typ == msgSetChunkSize {
		if len(msg.payload) < 4 {
			return message{}, false, fmt.Errorf("rtmp: set chunk size: %d-byte payload", len(msg.payload))
		}
		size := binary.BigEndian.Uint32(msg.payload) & 0x7fffffff
		if size == 0 || size > maxInChunkSize {
			return message{}, false, fmt.Errorf("rtmp: set chunk size %d out of range 1..%d", size, maxInChunkSize)
		}
		c.chunkSize = size
	}
	return msg, true, nil
}
