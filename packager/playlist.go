package packager

import (
	"strconv"
	"time"
)

// appendTSPlaylist renders an RFC 8216 media playlist.
//
// We write it ourselves rather than with grafov/m3u8: its writer formats EXTINF
// through float32 (durations are exact milliseconds here, printed as such), derives
// EXT-X-TARGETDURATION by ceiling the longest segment instead of keeping the value
// fixed for the stream's life, and models the window as a fixed-capacity ring whose
// removal semantics we would have to shadow anyway for EXT-X-DISCONTINUITY-SEQUENCE
// and for keeping removed segments served. The format needs a dozen lines of
// appends, renders without reflection once per change, and leaves room for LL-HLS
// tags later.
//
// Segment URIs are relative to the playlist, which httpserve serves at
// /{app}/{stream}/ts/index.m3u8.
func appendTSPlaylist(b []byte, target int64, discSeq uint64, segs []*segment, ended bool) []byte {
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:"...)
	b = strconv.AppendInt(b, target, 10)
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	var msn uint64
	if len(segs) > 0 {
		msn = segs[0].seq
	}
	b = strconv.AppendUint(b, msn, 10)
	b = append(b, "\n#EXT-X-DISCONTINUITY-SEQUENCE:"...)
	b = strconv.AppendUint(b, discSeq, 10)
	b = append(b, '\n')
	for _, s := range segs {
		if s.disc {
			b = append(b, "#EXT-X-DISCONTINUITY\n"...)
		}
		b = append(b, "#EXT-X-PROGRAM-DATE-TIME:"...)
		b = s.pdt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, "\n#EXTINF:"...)
		b = appendMillis(b, s.dur)
		b = append(b, ",\n"...)
		b = append(b, s.name...)
		b = append(b, '\n')
	}
	if ended {
		b = append(b, "#EXT-X-ENDLIST\n"...)
	}
	return b
}

// appendMillis writes ms as seconds with three decimals.
func appendMillis(b []byte, ms int64) []byte {
	if ms < 0 {
		ms = 0
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	frac := ms % 1000
	if frac < 100 {
		b = append(b, '0')
	}
	if frac < 10 {
		b = append(b, '0')
	}
	return strconv.AppendInt(b, frac, 10)
}

// roundSeconds rounds a duration in ms to the nearest second, halves up, as HLS
// clients compare EXTINF against EXT-X-TARGETDURATION.
func roundSeconds(ms int64) int64 { return (ms + 500) / 1000 }

// ceilSeconds is d rounded up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
