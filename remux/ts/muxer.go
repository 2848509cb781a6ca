// Package ts writes MPEG-TS segments (ISO/IEC 13818-1) from remux frames. Each
// segment begins with PAT and PMT so it decodes on its own.
package ts

import "github.com/rtmpgate/rtmpgate/remux"

// Muxer appends TS packets for one publish session's tracks. It is not safe for
// concurrent use.
type Muxer struct{}

// NewMuxer returns a muxer for the given tracks; either may be nil, not both.
func NewMuxer(video, audio *remux.Track) *Muxer {
	panic("ts.NewMuxer: not implemented yet")
}

// AppendSegmentStart appends PAT and PMT; call it at the start of every segment.
func (m *Muxer) AppendSegmentStart(dst []byte) []byte {
	panic("ts.AppendSegmentStart: not implemented yet")
}

// AppendFrame appends the PES packets carrying f. f.Data is only read.
func (m *Muxer) AppendFrame(dst []byte, f *remux.Frame) ([]byte, error) {
	panic("ts.AppendFrame: not implemented yet")
}
