package packager

import (
	"sync"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
)

// renders is what one change of a stream renders for the CMAF outputs: the fMP4
// HLS playlists and the MPD, each nil while there is nothing to list.
type renders struct {
	multivariant []byte
	media        [2][]byte // indexed by vIdx, aIdx
	delta        [2][]byte // LL-HLS delta updates (EXT-X-SKIP), nil when nothing can be skipped
	mpd          []byte
}

// rates are bitrates measured over the window, bits/s, and the video frame rate.
type rates = manifest.Rates

// measure computes rates over segs. A segment's bitrate is its fragment bytes
// over its duration; segments without CMAF count their TS bytes.
func measure(segs []*segment) rates {
	var (
		r            rates
		bytes, ms    int64
		vFrames, vMs int64
	)
	for _, s := range segs {
		n := int64(0)
		if s.hasCMAF() {
			for i, f := range s.frag {
				if f == nil {
					continue
				}
				n += int64(len(f.data))
				if f.dur > 0 {
					r.Track[i] = max(r.Track[i], int64(len(f.data))*8000/f.dur)
				}
				if i == vIdx {
					r.Captions = r.Captions || f.captions
					vFrames += int64(f.frames)
					vMs += f.dur
				}
			}
		} else {
			n = int64(len(s.data))
		}
		if s.dur > 0 {
			r.Peak = max(r.Peak, n*8000/s.dur)
		}
		bytes += n
		ms += s.dur
	}
	if ms > 0 {
		r.Avg = bytes * 8000 / ms
	}
	r.Peak = max(r.Peak, r.Avg, 1)
	r.Avg = max(r.Avg, 1)
	for i := range r.Track {
		r.Track[i] = max(r.Track[i], 1)
	}
	if vMs > 0 {
		r.FPS = float64(vFrames) * 1000 / float64(vMs)
	}
	return r
}

// docCell holds the fMP4 HLS playlists and the MPD of one state of a stream,
// rendered on first use and at most once, so a change nobody reads costs no
// render and one many requests read costs one. The state is view, the
// snapshot's (immutable), so the renders run without the stream's lock. A full
// cell renders everything, as a window change needs; the others (a part added)
// render the media playlists and take the multivariant playlist and MPD of
// base, the last full cell.
type docCell struct {
	once sync.Once
	view *manifest.View
	full bool
	base *docCell
	src  *Stream // whose state it is: the ladder's rendition reports come from it
	r    renders
}

var noRenders renders

// get returns the documents, rendering them on the first call; a nil cell (no
// CMAF state yet, or an evicted stream) has none.
func (d *docCell) get() *renders {
	if d == nil {
		return &noRenders
	}
	d.once.Do(d.render)
	return &d.r
}

func (d *docCell) render() {
	v := d.view
	if d.src != nil && v.LowLatency && v.Live && !v.Ended {
		// The other renditions' last parts as published now: a report
		// never runs ahead of what its playlist lists, and the cached
		// document only falls behind it, which players tolerate.
		if rs := d.src.ladderReports(); len(rs) > 0 {
			withReports := *v
			withReports.Reports = rs
			v = &withReports
		}
	}
	if d.full {
		d.r = renderCMAF(v)
	} else {
		var base renders
		if d.base != nil {
			base = *d.base.get()
		}
		d.r = renderMedia(v, base)
	}
	d.base = nil
}

// renderCMAF renders the fMP4 HLS playlists and the MPD of the window; none
// while the window has no CMAF segment.
func renderCMAF(v *manifest.View) renders {
	var r renders
	mv := manifest.Multivariant(make([]byte, 0, 512), v)
	if len(mv) == 0 {
		return r
	}
	r.multivariant = mv
	r.mpd = manifest.MPD(make([]byte, 0, 2048+100*len(v.Window)), v)
	return renderMedia(v, r)
}

// renderMedia renders the fMP4 media playlists into r, which keeps its
// multivariant playlist and MPD: what changes when a part is added.
func renderMedia(v *manifest.View, r renders) renders {
	r.media, r.delta = [2][]byte{}, [2][]byte{}
	for i, ok := range manifest.Listed(v, false) {
		if !ok {
			continue // before the first segment nothing fixes EXT-X-TARGETDURATION
		}
		size := 256 + 180*len(v.Window)
		if v.LowLatency {
			size += 80*manifest.PartSegments*int(v.SegmentDuration/v.PartTarget) + 80*len(v.Reports)
		}
		r.media[i] = manifest.MediaPlaylist(make([]byte, 0, size), v, i)
		if v.LowLatency && manifest.Skippable(v) > 0 {
			r.delta[i] = manifest.DeltaPlaylist(make([]byte, 0, size), v, i)
		}
	}
	return r
}
