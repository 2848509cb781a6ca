package rtmp

import "encoding/binary"

// compressedStreams is how many chunk stream ids (0..7, which covers every id we
// send on) keep the state header compression needs.
const compressedStreams = 8

// sentStream is what the peer remembers of the last message on a chunk stream,
// which decides how small the next header can be.
type sentStream struct {
	started  bool
	ts       uint32
	streamID uint32
}

// ChunkWriter appends chunked messages to Buf, which the caller writes and
// resets; Buf is reused, so steady-state sending allocates nothing.
type ChunkWriter struct {
	ChunkSize int // the size announced to the peer (DefaultChunkSize until then)
	Buf       []byte
	// Compress sends a chunk stream's later messages with fmt 1 headers (the
	// timestamp delta) on chunk stream ids below 8, as a publisher sending a
	// frame at a time wants. Off, every message starts with a fmt 0 header: a
	// server sends few messages, so compression is not worth its state.
	Compress bool
	streams  [compressedStreams]sentStream
	body     []byte // AppendCommand's scratch
}

// AppendMessage chunks one message into w.Buf: a fmt 0 header, or with Compress
// a fmt 1 header carrying the timestamp delta when the chunk stream was used
// before by the same message stream at an earlier or equal time; fmt 3 for
// continuation chunks. A timestamp or delta at or above 0xFFFFFF goes in the
// extended field, which continuation chunks repeat (as Flash and FFmpeg do).
func (w *ChunkWriter) AppendMessage(csid uint32, typ uint8, streamID, ts uint32, payload []byte) {
	format := byte(0)
	field := ts
	if w.Compress && csid < compressedStreams {
		st := &w.streams[csid]
		if st.started && ts >= st.ts && streamID == st.streamID {
			format, field = 1, ts-st.ts
		}
		*st = sentStream{started: true, ts: ts, streamID: streamID}
	}
	ext := field >= extendedTimestamp
	f := field
	if ext {
		f = extendedTimestamp
	}
	w.basicHeader(format, csid)
	n := len(payload)
	w.Buf = append(w.Buf, byte(f>>16), byte(f>>8), byte(f), byte(n>>16), byte(n>>8), byte(n), typ)
	if format == 0 {
		w.Buf = binary.LittleEndian.AppendUint32(w.Buf, streamID)
	}
	if ext {
		w.Buf = binary.BigEndian.AppendUint32(w.Buf, field)
	}
	for first := true; first || len(payload) > 0; first = false {
		if !first {
			w.basicHeader(3, csid)
			if ext {
				w.Buf = binary.BigEndian.AppendUint32(w.Buf, field)
			}
		}
		k := min(len(payload), w.chunkSize())
		w.Buf = append(w.Buf, payload[:k]...)
		payload = payload[k:]
	}
}

func (w *ChunkWriter) chunkSize() int {
	if w.ChunkSize <= 0 {
		return DefaultChunkSize
	}
	return w.ChunkSize
}

// basicHeader appends the 1, 2 or 3 byte basic header (spec 5.3.1.1).
func (w *ChunkWriter) basicHeader(format byte, csid uint32) {
	switch {
	case csid < 64:
		w.Buf = append(w.Buf, format<<6|byte(csid))
	case csid < 320:
		w.Buf = append(w.Buf, format<<6, byte(csid-64))
	default:
		w.Buf = append(w.Buf, format<<6|1, byte(csid-64), byte((csid-64)>>8))
	}
}

// AppendControl appends a protocol control message with one 32-bit value: Set
// Chunk Size, Acknowledgement or Window Acknowledgement Size. After a Set Chunk
// Size the caller sets w.ChunkSize.
func (w *ChunkWriter) AppendControl(typ uint8, value uint32) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], value)
	w.AppendMessage(CSIDControl, typ, 0, 0, p[:])
}

// AppendSetPeerBandwidth appends Set Peer Bandwidth with the dynamic limit type.
func (w *ChunkWriter) AppendSetPeerBandwidth(window uint32) {
	var p [5]byte
	binary.BigEndian.PutUint32(p[:], window)
	p[4] = 2 // dynamic
	w.AppendMessage(CSIDControl, MsgSetPeerBandwidth, 0, 0, p[:])
}

// AppendUserControl appends a user control event with one 32-bit value.
func (w *ChunkWriter) AppendUserControl(event uint16, value uint32) {
	var p [6]byte
	binary.BigEndian.PutUint16(p[:], event)
	binary.BigEndian.PutUint32(p[2:], value)
	w.AppendMessage(CSIDControl, MsgUserControl, 0, 0, p[:])
}

// AppendCommand appends an AMF0 command message of values on the command chunk
// stream.
func (w *ChunkWriter) AppendCommand(streamID uint32, values ...any) {
	w.body = w.body[:0]
	for _, v := range values {
		w.body = AppendAMF0(w.body, v)
	}
	w.AppendMessage(CSIDCommand, MsgCommandAMF0, streamID, 0, w.body)
}
