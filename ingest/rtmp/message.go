// Package rtmp is the RTMP wire codec without I/O, shared by the server (ingest),
// the publishing client (ingest/rtmpclient) and the tools built on them: the
// handshake (spec 5.2), the chunk stream reader and writer (5.3), the message
// and user control ids (5.4, 6.2, 7.1) and AMF0 (the AMF0 spec). Callers own the
// connection: they hand bytes in and write the bytes it appends. Reader adapts a
// blocking io.Reader for clients and tests.
package rtmp

// Message type ids (spec 5.4, 6.2, 7.1).
const (
	MsgSetChunkSize     = 1
	MsgAbort            = 2
	MsgAck              = 3
	MsgUserControl      = 4
	MsgWindowAckSize    = 5
	MsgSetPeerBandwidth = 6
	MsgAudio            = 8
	MsgVideo            = 9
	MsgDataAMF3         = 15
	MsgCommandAMF3      = 17
	MsgDataAMF0         = 18
	MsgCommandAMF0      = 20
	MsgAggregate        = 22
)

// User control events (spec 7.1.7).
const (
	EventStreamBegin  = 0
	EventPingRequest  = 6
	EventPingResponse = 7
)

// Chunk stream ids we send on: 2 is reserved for protocol control, commands go on
// 3 as Flash Media Server does; a publisher gives audio, data and video one each
// so that every media stream's headers compress.
const (
	CSIDControl = 2
	CSIDCommand = 3
	CSIDAudio   = 4
	CSIDData    = 5
	CSIDVideo   = 6
)

// Message is one reassembled RTMP message.
type Message struct {
	CSID      uint32
	Type      uint8
	StreamID  uint32
	Timestamp uint32 // absolute, modulo 2^32 as RTMP keeps it
	Payload   []byte
}
