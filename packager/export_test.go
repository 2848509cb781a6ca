package packager

import "github.com/rtmpgate/rtmpgate/remux"

// Muxer lets external tests replace the TS muxer with a fake whose output they
// can decode.
type Muxer = muxer

// SetMuxer replaces the muxer factory; call it before the first Publish.
func SetMuxer(h *Hub, f func(video, audio *remux.Track) Muxer) { h.newMuxer = f }
