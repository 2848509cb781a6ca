package rtmp

import (
	"encoding/binary"
	"fmt"
	"io"
)

// readerBufferSize is Reader's read buffer: a chunk header and what one read
// brings, since payload bytes are copied out as they arrive.
const readerBufferSize = 4096

// Reader reads messages from a blocking stream (a client's connection, a test's
// pipe) through a ChunkReader, and applies the peer's Set Chunk Size and Abort
// itself. A server that paces its reads drives ChunkReader.Parse directly.
type Reader struct {
	cr       *ChunkReader
	r        io.Reader
	buf      []byte
	pos, end int
	err      error // the read error to return once the bytes before it are parsed
}

// NewReader reads from r with cr's limits.
func NewReader(r io.Reader, cr *ChunkReader) *Reader {
	return &Reader{cr: cr, r: r, buf: make([]byte, readerBufferSize)}
}

// Next returns the next message; its Payload is valid until the next call. The
// stream's end is io.EOF, wherever it fell.
func (r *Reader) Next() (*Message, error) {
	for {
		for r.pos < r.end {
			n, msg, err := r.cr.Parse(r.buf[r.pos:r.end])
			if err != nil {
				return nil, err
			}
			r.pos += n
			if msg != nil {
				return msg, r.control(msg)
			}
			if n == 0 {
				break
			}
		}
		if r.err != nil {
			return nil, r.err
		}
		if r.pos == r.end {
			r.pos, r.end = 0, 0
		} else if len(r.buf)-r.end < MaxChunkHeader {
			r.end = copy(r.buf, r.buf[r.pos:r.end])
			r.pos = 0
		}
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		r.err = err
	}
}

// control applies Set Chunk Size and Abort, the messages that change how the
// chunk stream is read.
func (r *Reader) control(msg *Message) error {
	switch msg.Type {
	case MsgSetChunkSize, MsgAbort:
		if len(msg.Payload) < 4 {
			return fmt.Errorf("rtmp: message type %d: %d-byte payload", msg.Type, len(msg.Payload))
		}
		v := binary.BigEndian.Uint32(msg.Payload)
		if msg.Type == MsgAbort {
			r.cr.Abort(v)
			return nil
		}
		return r.cr.SetChunkSize(v)
	}
	return nil
}
