package packager

import "github.com/rtmpgate/rtmpgate/remux"

// Muxer lets external tests replace the TS muxer with a fake whose output they
// can decode.
type Muxer = muxer

// SetMuxer replaces the muxer factory; call it before the first Publish.
func SetMuxer(h *Hub, f func(video, audio *remux.Track) Muxer) { h.newMuxer = f }

// SpareBytes is the spare capacity the store counts beside the bytes of the
// segments st keeps: what their buffers hold past their data.
func SpareBytes(st *Stream) int64 {
	st.mu.Lock()
	defer st.mu.Unlock()
	var n int64
	for _, segs := range [][]*segment{st.window, st.retired} {
		for _, seg := range segs {
			n += max(seg.alloc-int64(len(seg.data)), 0)
			for _, f := range seg.frag {
				if f != nil {
					n += max(f.alloc-int64(len(f.data)), 0)
				}
			}
		}
	}
	return n
}
