package packager

import (
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

// muxer is what a session needs from a container writer. It exists so that the
// session logic can be tested against a fake while remux/ts evolves, and so that
// a CMAF writer can slot in later.
type muxer interface {
	AppendSegmentStart(dst []byte) []byte
	AppendFrame(dst []byte, f *remux.Frame) ([]byte, error)
}

func newTSMuxer(video, audio *remux.Track) muxer { return ts.NewMuxer(video, audio) }
