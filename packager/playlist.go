package packager

import (
	"strconv"
	"strings"
	"time"
)

// renditionTS selects the MPEG-TS media playlist in appendMediaPlaylist; vIdx
// and aIdx select the fMP4 ones.
const renditionTS = -1

// appendMediaPlaylist renders an RFC 8216 media playlist of the window: the TS
// one (rendition renditionTS) or a CMAF track's (vIdx, aIdx). All share the
// window, media sequence numbers, discontinuities and end; the fMP4 ones add
// EXT-X-MAP wherever the init segment changes and list each fragment's own
// duration. A segment without a fragment of the track (the track had no sample in
// it) is listed as an EXT-X-GAP so that sequence numbers stay aligned.
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
// /{app}/{stream}/ts/index.m3u8 (or v/, a/).
func appendMediaPlaylist(b []byte, rendition int, target int64, discSeq uint64, segs []*segment, ended bool) []byte {
	fmp4 := rendition != renditionTS
	if fmp4 {
		b = append(b, "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:"...) // EXT-X-MAP in a media playlist without I-frames needs 6
	} else {
		b = append(b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:"...)
	}
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
	if fmp4 {
		b = append(b, "#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	}
	var curInit *initSeg
	for _, s := range segs {
		if s.disc {
			b = append(b, "#EXT-X-DISCONTINUITY\n"...)
		}
		uri, dur, pdt := s.name, s.dur, s.pdt
		if fmp4 {
			if in := s.init[rendition]; in != nil && in != curInit {
				curInit = in
				b = append(b, "#EXT-X-MAP:URI=\""...)
				b = append(b, in.name...)
				b = append(b, "\"\n"...)
			}
			if f := s.frag[rendition]; f != nil {
				uri, dur = f.name, f.dur
				pdt = pdt.Add(time.Duration(f.start-s.dts) * time.Millisecond)
			} else {
				uri = strings.TrimSuffix(s.name, ".ts") + ".m4s"
				b = append(b, "#EXT-X-GAP\n"...)
			}
		}
		b = append(b, "#EXT-X-PROGRAM-DATE-TIME:"...)
		b = pdt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, "\n#EXTINF:"...)
		b = appendMillis(b, dur)
		b = append(b, ",\n"...)
		b = append(b, uri...)
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
