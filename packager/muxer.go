package packager

import (
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

// muxer is what a session needs from the TS writer: an interface so that the
// session logic can be tested against a fake muxer. CMAF goes through
// remux/cmaf's Fragmenter (session_cmaf.go).
type muxer interface {
	AppendSegmentStart(dst []byte) []byte
	AppendFrame(dst []byte, f *remux.Frame) ([]byte, error)
}

func newTSMuxer(video, audio *remux.Track) muxer { return ts.NewMuxer(video, audio) }
