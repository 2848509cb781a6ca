package main

import "encoding/binary"

// RTMP message type ids (RTMP spec 5.4, 7.1).
const (
	msgSetChunkSize  = 1
	msgAbort         = 2
	msgAck           = 3
	msgUserControl   = 4
	msgWindowAckSize = 5
	msgAudio         = 8
	msgVideo         = 9
	msgDataAMF0      = 18
	msgCommandAMF0   = 20
)

// Chunk stream ids we send on: 2 is reserved for protocol control; one each for
// commands, audio, data and video so every media stream's headers compress.
const (
	csidControl = 2
	csidCommand = 3
	csidAudio   = 4
	csidData    = 5
	csidVideo   = 6
	csidCount   = 7
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

// chunkWriter appends chunked messages to buf, which the caller writes and
// resets; buf is reused so steady-state sending allocates nothing.
type chunkWriter struct {
	chunkSize int
	buf       []byte
	streams   [csidCount]outStream
}

func newChunkWriter(chunkSize int) *chunkWriter {
	return &chunkWriter{chunkSize: chunkSize}
}

// appendMessage chunks one message into w.buf: a fmt 0 header the first time a
// chunk stream is used (or when time goes back or the message stream changes), a
// fmt 1 header with the timestamp delta after that, fmt 3 for continuation
// chunks. A timestamp or delta at or above 0xFFFFFF goes in the extended field,
// which continuation chunks repeat (as Flash and FFmpeg do).
func (w *chunkWriter) appendMessage(csid uint8, typ uint8, streamID, ts uint32, payload []byte) {
	st := &w.streams[csid%csidCount]
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
	w.buf = append(w.buf, format<<6|csid&0x3f, byte(f>>16), byte(f>>8), byte(f),
		byte(n>>16), byte(n>>8), byte(n), typ)
	if format == 0 {
		w.buf = binary.LittleEndian.AppendUint32(w.buf, streamID)
	}
	if ext {
		w.buf = binary.BigEndian.AppendUint32(w.buf, field)
	}
	for first := true; first || len(payload) > 0; first = false {
		if !first {
			w.buf = append(w.buf, 3<<6|csid&0x3f)
			if ext {
				w.buf = binary.BigEndian.AppendUint32(w.buf, field)
			}
		}
		k := min(len(payload), w.chunkSize)
		w.buf = append(w.buf, payload[:k]...)
		payload = payload[k:]
	}
}

// appendSetChunkSize announces our chunk size; the caller then sets w.chunkSize.
func (w *chunkWriter) appendSetChunkSize(size uint32) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], size)
	w.appendMessage(csidControl, msgSetChunkSize, 0, 0, p[:])
}

// appendCommand encodes an AMF0 command on the command chunk stream.
func (w *chunkWriter) appendCommand(streamID uint32, scratch []byte, values ...any) []byte {
	scratch = scratch[:0]
	for _, v := range values {
		scratch = appendAMF0(scratch, v)
	}
	w.appendMessage(csidCommand, msgCommandAMF0, streamID, 0, scratch)
	return scratch
}
