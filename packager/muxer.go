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

func newTSMuxer(video, audio *remux.Track) muxer {
	if tsUnavailable(video, audio) != "" {
		return noTS{}
	}
	return ts.NewMuxer(video, audio)
}

// noTS stands in for the TS writer when a codec of the track set has no MPEG-TS
// mapping in HLS (AV1, VP9, Opus): the CMAF outputs carry the stream alone, and
// the TS playlist is not offered.
type noTS struct{}

func (noTS) AppendSegmentStart(dst []byte) []byte { return dst[:0] }

func (noTS) AppendFrame(dst []byte, _ *remux.Frame) ([]byte, error) { return dst, nil }

// tsUnavailable says why a track set has no TS output, or "" when it has one.
func tsUnavailable(tracks ...*remux.Track) string {
	for _, t := range tracks {
		if t != nil && !ts.Carries(t.Codec) {
			return t.Codec.String() + " has no MPEG-TS mapping in HLS: play the CMAF playlist (index.m3u8) or the MPD"
		}
	}
	return ""
}
