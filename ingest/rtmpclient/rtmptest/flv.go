package rtmptest

import (
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

// FLV writes an FLV file of tags, with correct previous-tag sizes; meta, when not
// nil, goes first as the onMetaData script tag's body. Tag.Config is ignored.
func FLV(meta []byte, tags ...rtmpclient.Tag) []byte { return rtmpclient.FLVFile(meta, tags) }
