package wire

import "encoding/binary"

// RTMP message type ids (RTMP spec 5.4, 7.1).
const (
	MsgSetChunkSize  = 1
	MsgAbort         = 2
	MsgAck           = 3
	MsgUserControl   = 4
	MsgWindowAckSize = 5
	MsgAudio         = 8
	MsgVideo         = 9
	MsgDataAMF0      = 18
	MsgCommandAMF0   = 20
)

// Chunk stream ids we send on: 2 is reserved for protocol control; one each for
// commands, audio, data and video so every media stream's headers compress.
const (
	CSIDControl = 2
	CSIDCommand = 3
	CSIDAudio   = 4
	CSIDData    = 5
	CSIDVideo   = 6
	CSIDCount   = 7
)

// extendedTimestamp in a timestamp field means the real value follows in 4 bytes.
const extendedTimestamp = 0xffffff

// outStream is what the peer remembers of the last message on a chunk stream,
// which decides how small the next header can be.
type outStream struct {
	started  bool
	ts       uint32
	streamID uint32
}

// ChunkWriter appends chunked messages to Buf, which the caller writes and
// resets; buf is reused so steady-state sending allocates nothing.
type ChunkWriter struct {
	ChunkSize int
	Buf       []byte
	streams   [CSIDCount]outStream
}

func NewChunkWriter(chunkSize int) *ChunkWriter {
	return &ChunkWriter{ChunkSize: chunkSize}
}

// AppendMessage chunks one message into w.Buf: a fmt 0 header the first time a
// chunk stream is used (or when time goes back or the message stream changes), a
// fmt 1 header with the timestamp delta after that, fmt 3 for continuation
// chunks. A timestamp or delta at or above 0xFFFFFF goes in the extended field,
// which continuation chunks repeat (as Flash and FFmpeg do).
func (w *ChunkWriter) AppendMessage(csid uint8, typ uint8, streamID, ts uint32, payload []byte) {
	st := &w.streams[csid%CSIDCount]
	format := byte(1)
	field := ts - st.ts
	if !st.started || ts < st.ts || streamID != st.streamID {
		format, field = 0, ts
	}
	*st = outStream{started: true, ts: ts, streamID: streamID}
	ext := field >= extendedTimestamp
	f := field
	if ext {
		f = extendedTimestamp
	}
	n := len(payload)
	w.Buf = append(w.Buf, format<<6|csid&0x3f, byte(f>>16), byte(f>>8), byte(f),
		byte(n>>16), byte(n>>8), byte(n), typ)
	if format == 0 {
		w.Buf = binary.LittleEndian.AppendUint32(w.Buf, streamID)
	}
	if ext {
		w.Buf = binary.BigEndian.AppendUint32(w.Buf, field)
	}
	for first := true; first || len(payload) > 0; first = false {
		if !first {
			w.Buf = append(w.Buf, 3<<6|csid&0x3f)
			if ext {
				w.Buf = binary.BigEndian.AppendUint32(w.Buf, field)
			}
		}
		k := min(len(payload), w.ChunkSize)
		w.Buf = append(w.Buf, payload[:k]...)
		payload = payload[k:]
	}
}

// AppendSetChunkSize announces our chunk size; the caller then sets w.ChunkSize.
func (w *ChunkWriter) AppendSetChunkSize(size uint32) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], size)
	w.AppendMessage(CSIDControl, MsgSetChunkSize, 0, 0, p[:])
}

// AppendCommand encodes an AMF0 command on the command chunk stream.
func (w *ChunkWriter) AppendCommand(streamID uint32, scratch []byte, values ...any) []byte {
	scratch = scratch[:0]
	for _, v := range values {
		scratch = AppendAMF0(scratch, v)
	}
	w.AppendMessage(CSIDCommand, MsgCommandAMF0, streamID, 0, scratch)
	return scratch
}
