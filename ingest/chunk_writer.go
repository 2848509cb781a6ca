package ingest

import "encoding/binary"

// RTMP message type ids (spec 5.4, 6.2, 7.1).
const (
	msgSetChunkSize     = 1
	msgAbort            = 2
	msgAck              = 3
	msgUserControl      = 4
	msgWindowAckSize    = 5
	msgSetPeerBandwidth = 6
	msgAudio            = 8
	msgVideo            = 9
	msgDataAMF3         = 15
	msgCommandAMF3      = 17
	msgDataAMF0         = 18
	msgCommandAMF0      = 20
	msgAggregate        = 22
)

// User control events (spec 7.1.7).
const (
	ucStreamBegin  = 0
	ucPingRequest  = 6
	ucPingResponse = 7
)

// Chunk stream ids for what we send: 2 is reserved for protocol control; commands
// go on 3 as Flash Media Server does.
const (
	csidControl = 2
	csidCommand = 3
)

// chunkWriter appends our outgoing messages, chunked, to a reusable buffer that
// the connection flushes. It always starts a message with a fmt 0 header: we send
// few messages, so header compression is not worth its state.
type chunkWriter struct {
	chunkSize int
	buf       []byte
}

// appendMessage chunks one message into w.buf.
func (w *chunkWriter) appendMessage(csid uint32, typ uint8, streamID, ts uint32, payload []byte) {
	basic := func(format byte) {
		switch {
		case csid < 64:
			w.buf = append(w.buf, format<<6|byte(csid))
		case csid < 320:
			w.buf = append(w.buf, format<<6, byte(csid-64))
		default:
			w.buf = append(w.buf, format<<6|1, byte(csid-64), byte((csid-64)>>8))
		}
	}
	ext := ts >= extendedTimestamp
	field := ts
	if ext {
		field = extendedTimestamp
	}
	basic(0)
	n := len(payload)
	w.buf = append(w.buf, byte(field>>16), byte(field>>8), byte(field),
		byte(n>>16), byte(n>>8), byte(n), typ)
	w.buf = binary.LittleEndian.AppendUint32(w.buf, streamID)
	if ext {
		w.buf = binary.BigEndian.AppendUint32(w.buf, ts)
	}
	for first := true; first || len(payload) > 0; first = false {
		if !first {
			basic(3)
			if ext {
				w.buf = binary.BigEndian.AppendUint32(w.buf, ts)
			}
		}
		k := min(len(payload), w.chunkSize)
		w.buf = append(w.buf, payload[:k]...)
		payload = payload[k:]
	}
}

func (w *chunkWriter) control(typ uint8, value uint32) {
	var p [4]byte
	binary.BigEndian.PutUint32(p[:], value)
	w.appendMessage(csidControl, typ, 0, 0, p[:])
}

func (w *chunkWriter) setPeerBandwidth(window uint32) {
	var p [5]byte
	binary.BigEndian.PutUint32(p[:], window)
	p[4] = 2 // dynamic
	w.appendMessage(csidControl, msgSetPeerBandwidth, 0, 0, p[:])
}

func (w *chunkWriter) userControl(event uint16, value uint32) {
	var p [6]byte
	binary.BigEndian.PutUint16(p[:], event)
	binary.BigEndian.PutUint32(p[2:], value)
	w.appendMessage(csidControl, msgUserControl, 0, 0, p[:])
}

// command appends an AMF0 command message built from values.
func (w *chunkWriter) command(streamID uint32, values ...any) {
	var body []byte
	for _, v := range values {
		body = appendAMF0(body, v)
	}
	w.appendMessage(csidCommand, msgCommandAMF0, streamID, 0, body)
}
