package rtmptest

import (
	"encoding/binary"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

// FLV writes an FLV file of tags, with correct previous-tag sizes; meta, when not
// nil, goes first as the onMetaData script tag's body. Tag.Config is ignored.
func FLV(meta []byte, tags ...rtmpclient.Tag) []byte {
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	add := func(typ uint8, ts uint32, body []byte) {
		n := len(body)
		b = append(b, typ, byte(n>>16), byte(n>>8), byte(n), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
		b = append(b, body...)
		b = binary.BigEndian.AppendUint32(b, uint32(11+n))
	}
	if meta != nil {
		add(rtmpclient.TagScript, 0, meta)
	}
	for _, t := range tags {
		add(t.Type, t.Timestamp, t.Body)
	}
	return b
}
