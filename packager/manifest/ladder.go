package manifest

import (
	"sort"
	"strconv"
)

// Rung is one rendition of a ladder: its View and the URI prefix of its
// files relative to the ladder's multivariant playlist ("demo_hi/" for a
// separately published key, "v1/" for a track of a multitrack publish, ""
// for the publish's own track 0).
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
func Ladder(dst []byte, rungs []Rung) []byte { return ladder(dst, rungs, nil) }

// TrackLadder appends the fMP4 multivariant playlist of a ladder made of one
// publish's video tracks (Enhanced RTMP multitrack): one variant per video
// rung with a CMAF video track, ordered as Ladder orders them, all of them
// referring to one audio rendition group ("aac"), the audio rung's audio
// playlist. The tracks come over one connection on one timeline, so the one
// audio track lines up with every video track and a variant switch keeps the
// audio playing. A rung without audio of its own (a track rendition) is
// announced with the shared audio's peak bitrate added to its own rates and
// the audio's codec in CODECS. It returns dst unchanged when no rung has video.
func TrackLadder(dst []byte, video []Rung, audio Rung) []byte {
	return ladder(dst, video, &audio)
}

func lastCMAF(v *View) *Segment {
	if v == nil {
		return nil
	}
	for i := len(v.Window) - 1; i >= 0; i-- {
		if seg := v.Window[i]; seg.HasCMAF() {
			return seg
		}
	}
	return nil
}

// ladder renders Ladder (shared nil) or TrackLadder.
func ladder(dst []byte, rungs []Rung, shared *Rung) []byte {
	type entry struct {
		prefix string
		inits  [2]*Init
		rates  Rates
	}
	var sharedAudio *Init
	var sharedRate int64
	if shared != nil {
		if seg := lastCMAF(shared.View); seg != nil && seg.Init[Audio] != nil {
			sharedAudio, sharedRate = seg.Init[Audio], shared.View.Rates.Track[Audio]
		}
	}
	var es []entry
	for _, r := range rungs {
		if seg := lastCMAF(r.View); seg != nil && seg.Init[Video] != nil {
			e := entry{r.Prefix, seg.Init, r.View.Rates}
			if shared != nil {
				if e.inits[Audio] == nil && sharedAudio != nil {
					e.rates.Peak += sharedRate
					e.rates.Avg += sharedRate
				}
				e.inits[Audio] = sharedAudio
			}
			es = append(es, e)
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
	if sharedAudio != nil {
		b = append(b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="`...)
		b = strconv.AppendInt(b, int64(max(sharedAudio.Track.Channels, 1)), 10)
		b = append(b, `",URI="`...)
		b = appendURI(b, shared.Prefix)
		b = append(b, AudioPlaylistPath...)
		b = append(b, "\"\n"...)
	}
	for i, e := range es {
		if a := e.inits[Audio]; a != nil && shared == nil {
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
			if shared != nil {
				b = append(b, `,AUDIO="aac"`...)
			} else {
				b = append(b, `,AUDIO="aac-`...)
				b = strconv.AppendInt(b, int64(i), 10)
				b = append(b, '"')
			}
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
