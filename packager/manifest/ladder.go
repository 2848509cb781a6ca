package manifest

import (
	"sort"
	"strconv"
)

// Rung is one rendition of a ladder of separately published streams: its
// View and the URI prefix of its files relative to the ladder's
// multivariant playlist ("demo_hi/").
type Rung struct {
	Prefix string
	View   *View
}

// Ladder appends the fMP4 multivariant playlist of a ladder: one variant per
// rung whose window has a CMAF segment with video, highest peak bandwidth
// first (ties by prefix, so the order is stable). Each variant refers to the
// rung's own media playlists. Each rung's audio is its own EXT-X-MEDIA group
// ("aac-<i>"), all named alike: the renditions come from separate publishers
// on separate timelines, so one rung's audio would not line up with another
// rung's video, and a player switching variants switches audio with it. It
// returns dst unchanged when no rung has video.
func Ladder(dst []byte, rungs []Rung) []byte {
	type entry struct {
		prefix string
		inits  [2]*Init
		rates  Rates
	}
	var es []entry
	for _, r := range rungs {
		if r.View == nil {
			continue
		}
		for i := len(r.View.Window) - 1; i >= 0; i-- {
			if seg := r.View.Window[i]; seg.HasCMAF() {
				if seg.Init[Video] != nil {
					es = append(es, entry{r.Prefix, seg.Init, r.View.Rates})
				}
				break
			}
		}
	}
	if len(es) == 0 {
		return dst
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].rates.Peak != es[j].rates.Peak {
			return es[i].rates.Peak > es[j].rates.Peak
		}
		return es[i].prefix < es[j].prefix
	})
	b := append(dst, "#EXTM3U\n#EXT-X-VERSION:6\n"...)
	for i, e := range es {
		if a := e.inits[Audio]; a != nil {
			b = append(b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac-`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="`...)
			b = strconv.AppendInt(b, int64(max(a.Track.Channels, 1)), 10)
			b = append(b, `",URI="`...)
			b = appendURI(b, e.prefix)
			b = append(b, AudioPlaylistPath...)
			b = append(b, "\"\n"...)
		}
		if e.rates.Captions {
			b = append(b, `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc-`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `",NAME="CC1",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"`+"\n"...)
		}
	}
	for i, e := range es {
		v, a := e.inits[Video], e.inits[Audio]
		b = append(b, "#EXT-X-STREAM-INF:BANDWIDTH="...)
		b = strconv.AppendInt(b, e.rates.Peak, 10)
		b = append(b, ",AVERAGE-BANDWIDTH="...)
		b = strconv.AppendInt(b, e.rates.Avg, 10)
		b = append(b, `,CODECS="`...)
		b = appendToken(b, v.Track.CodecString)
		if a != nil {
			b = append(b, ',')
			b = appendToken(b, a.Track.CodecString)
		}
		b = append(b, `",RESOLUTION=`...)
		b = strconv.AppendInt(b, int64(v.Track.Width), 10)
		b = append(b, 'x')
		b = strconv.AppendInt(b, int64(v.Track.Height), 10)
		if e.rates.FPS > 0 {
			b = append(b, ",FRAME-RATE="...)
			b = strconv.AppendFloat(b, e.rates.FPS, 'f', 3, 64)
		}
		if a != nil {
			b = append(b, `,AUDIO="aac-`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, '"')
		}
		if e.rates.Captions {
			b = append(b, `,CLOSED-CAPTIONS="cc-`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, '"')
		} else {
			b = append(b, ",CLOSED-CAPTIONS=NONE"...)
		}
		b = append(b, '\n')
		b = appendURI(b, e.prefix)
		b = append(b, VideoPlaylistPath...)
		b = append(b, '\n')
	}
	return b
}

// appendURI appends a rung's prefix keeping it one line and free of quotes:
// stream names are checked at publish, this only guards the playlist's syntax.
func appendURI(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > 0x20 && c != '"' && c < 0x7f {
			b = append(b, c)
		}
	}
	return b
}
