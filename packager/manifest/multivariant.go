package manifest

import "strconv"

// Multivariant appends the fMP4 multivariant playlist for the track set of the
// newest CMAF segment in v's window: one variant, its audio as an EXT-X-MEDIA
// rendition when there is video. It returns dst unchanged while the window has
// no CMAF segment (nothing announces a track set yet).
func Multivariant(dst []byte, v *View) []byte {
	for i := len(v.Window) - 1; i >= 0; i-- {
		if seg := v.Window[i]; seg.HasCMAF() {
			return appendMultivariant(dst, seg.Init, v.Rates)
		}
	}
	return dst
}

func appendMultivariant(b []byte, inits [2]*Init, r Rates) []byte {
	// No EXT-X-INDEPENDENT-SEGMENTS here: it would bind every media playlist, and
	// each media playlist says it itself while it holds true.
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:6\n"...)
	v, a := inits[Video], inits[Audio]
	if v != nil && a != nil {
		b = append(b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="`...)
		b = strconv.AppendInt(b, int64(max(a.Track.Channels, 1)), 10)
		b = append(b, `",URI="`...)
		b = append(b, AudioPlaylistPath...)
		b = append(b, "\"\n"...)
	}
	if v != nil && r.Captions {
		b = append(b, `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"`+"\n"...)
	}
	b = append(b, "#EXT-X-STREAM-INF:BANDWIDTH="...)
	b = strconv.AppendInt(b, r.Peak, 10)
	b = append(b, ",AVERAGE-BANDWIDTH="...)
	b = strconv.AppendInt(b, r.Avg, 10)
	b = append(b, `,CODECS="`...)
	if v != nil {
		b = appendToken(b, v.Track.CodecString)
		if a != nil {
			b = append(b, ',')
		}
	}
	if a != nil {
		b = appendToken(b, a.Track.CodecString)
	}
	b = append(b, '"')
	uri := AudioPlaylistPath
	if v != nil {
		uri = VideoPlaylistPath
		b = append(b, ",RESOLUTION="...)
		b = strconv.AppendInt(b, int64(v.Track.Width), 10)
		b = append(b, 'x')
		b = strconv.AppendInt(b, int64(v.Track.Height), 10)
		if r.FPS > 0 {
			b = append(b, ",FRAME-RATE="...)
			b = strconv.AppendFloat(b, r.FPS, 'f', 3, 64)
		}
		if a != nil {
			b = append(b, `,AUDIO="aac"`...)
		}
		// Said either way (RFC 8216bis 4.4.6.2): a player not told probes the
		// segments for captions, and Shaka Player 5.2 probing a live LL-HLS
		// playlist picks the open segment, listed as parts only, and fails to load.
		if r.Captions {
			b = append(b, `,CLOSED-CAPTIONS="cc"`...)
		} else {
			b = append(b, ",CLOSED-CAPTIONS=NONE"...)
		}
	}
	b = append(b, '\n')
	b = append(b, uri...)
	return append(b, '\n')
}

// appendToken appends s keeping only characters that are safe inside a quoted
// attribute of a playlist or the MPD: codecs strings come from the publisher's
// sequence headers, so they are filtered rather than trusted.
func appendToken(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' || c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			b = append(b, c)
		}
	}
	return b
}
