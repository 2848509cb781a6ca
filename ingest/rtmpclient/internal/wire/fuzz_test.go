package wire

import (
	"bytes"
	"testing"
)

// The server's chunk stream and AMF0 replies are read from the network: no input
// may panic, hang or grow a message past the limit.
func FuzzChunkReader(f *testing.F) {
	w := NewChunkWriter(128)
	w.AppendSetChunkSize(4096)
	w.ChunkSize = 4096
	w.AppendCommand(0, nil, "_result", 1, nil, []Field{{"code", "NetConnection.Connect.Success"}})
	w.AppendCommand(1, nil, "onStatus", 0, nil, []Field{{"level", "error"}, {"code", "NetStream.Publish.BadName"}})
	w.AppendMessage(CSIDVideo, MsgVideo, 1, 0x1000000, payload(5000, 3))
	f.Add(w.Buf)
	f.Add([]byte{0x02, 0, 0, 0, 0, 0, 4, MsgSetChunkSize, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{0x00, 0x00, 0, 0, 0, 0, 0, 1, MsgCommandAMF0, 0, 0, 0, 0, 0x05})
	f.Fuzz(func(t *testing.T, data []byte) {
		cr := NewChunkReader(bytes.NewReader(data))
		for range 1000 {
			msg, err := cr.Next()
			if err != nil {
				return
			}
			if len(msg.Payload) > maxInMessage {
				t.Fatalf("message of %d bytes", len(msg.Payload))
			}
			if msg.Type == MsgCommandAMF0 {
				if vals, err := DecodeAMF0(msg.Payload); err == nil {
					StatusCode(vals)
				}
			}
		}
	})
}
