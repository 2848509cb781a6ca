package manifest

import (
	"strconv"
	"strings"
	"time"
)

// MediaPlaylist appends the RFC 8216 media playlist of rendition (TS, Video
// or Audio) of v's window. All renditions share the window, media sequence
// numbers, discontinuities and end; the fMP4 ones add EXT-X-MAP wherever the
// init segment changes and list each fragment's own duration. A segment without
// a fragment of the track (the track had no sample in it) is listed as an
// EXT-X-GAP so that sequence numbers stay aligned. With v.LowLatency the fMP4
// playlists are LL-HLS ones (RFC 8216bis): see DeltaPlaylist. The TS playlist is
// always the classic one.
//
// We write it ourselves rather than with grafov/m3u8: its writer formats EXTINF
// through float32 (durations are exact milliseconds here, printed as such), derives
// EXT-X-TARGETDURATION by ceiling the longest segment instead of keeping the value
// fixed for the stream's life, and models the window as a fixed-capacity ring whose
// removal semantics we would have to shadow anyway for EXT-X-DISCONTINUITY-SEQUENCE
// and for keeping removed segments served. The format needs a dozen lines of
// appends and renders without reflection once per change.
//
// Segment URIs are relative to the playlist, which httpserve serves at
// /{app}/{stream}/ts/index.m3u8 (or v/, a/).
func MediaPlaylist(dst []byte, v *View, rendition int) []byte {
	if rendition == TS || !v.LowLatency {
		return appendLLPlaylist(dst, rendition, v.Target, v.DiscSeq, v.Window, v.Ended, nil)
	}
	ll := llOptionsOf(v, rendition)
	return appendLLPlaylist(dst, rendition, v.Target, v.DiscSeq, v.Window, v.Ended, &ll)
}

// DeltaPlaylist appends the LL-HLS delta update (EXT-X-SKIP, RFC 8216bis
// 6.2.5.1) of the fMP4 media playlist of rendition, and returns dst unchanged
// when the playlist is not a low-latency one or nothing can be skipped.
func DeltaPlaylist(dst []byte, v *View, rendition int) []byte {
	if rendition == TS || !v.LowLatency {
		return dst
	}
	ll := llOptionsOf(v, rendition)
	if ll.skip = Skippable(v); ll.skip == 0 {
		return dst
	}
	return appendLLPlaylist(dst, rendition, v.Target, v.DiscSeq, v.Window, v.Ended, &ll)
}

// PartSegments is how many of the newest segments list their parts (RFC 8216bis
// 6.2.2: parts older than three target durations from the end are removed).
const PartSegments = partSegments

// partSegments is how many of the newest segments list their parts (RFC 8216bis
// 6.2.2: parts older than three target durations from the end are removed).
const partSegments = 3

// llOptions adds the LL-HLS tags (RFC 8216bis) to an fMP4 media playlist: server
// control, the parts of the newest segments and of the segment being produced,
// a preload hint for the next part, and a rendition report for the other track.
type llOptions struct {
	partTarget int64  // ms
	epoch      string // part names
	nextMSN    uint64 // the segment being produced
	open       *Open  // its parts; nil when there is none or no publisher
	live       bool   // a publisher is on: hint the next part
	skip       int    // leading segments replaced by EXT-X-SKIP (delta update)
	report     int    // the other rendition (Video, Audio) to report, or -1
	reportMSN  uint64 // its last segment with parts, and the last part's index
	reportPart int
	reportOK   bool
	reports    []Report // the ladder's other streams' media playlists
}

func appendLLPlaylist(b []byte, rendition int, target int64, discSeq uint64, segs []*Segment, ended bool, ll *llOptions) []byte {
	fmp4 := rendition != TS
	switch {
	case ll != nil:
		b = append(b, "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:"...) // EXT-X-SKIP needs 9
	case fmp4:
		b = append(b, "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:"...) // EXT-X-MAP in a media playlist without I-frames needs 6
	default:
		b = append(b, "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:"...)
	}
	b = strconv.AppendInt(b, target, 10)
	if ll != nil {
		// PART-HOLD-BACK of three part targets is the spec's minimum and what lets
		// players sit under a second behind; CAN-SKIP-UNTIL of six target
		// durations is its minimum too.
		b = append(b, "\n#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL="...)
		b = appendMillis(b, 6*target*1000)
		b = append(b, ",PART-HOLD-BACK="...)
		b = appendMillis(b, 3*ll.partTarget)
		b = append(b, "\n#EXT-X-PART-INF:PART-TARGET="...)
		b = appendMillis(b, ll.partTarget)
	}
	b = append(b, "\n#EXT-X-MEDIA-SEQUENCE:"...)
	var msn uint64
	if len(segs) > 0 {
		msn = segs[0].Seq
	} else if ll != nil {
		msn = ll.nextMSN
	}
	b = strconv.AppendUint(b, msn, 10)
	b = append(b, "\n#EXT-X-DISCONTINUITY-SEQUENCE:"...)
	b = strconv.AppendUint(b, discSeq, 10)
	b = append(b, '\n')
	if fmp4 && independent(rendition, segs) {
		b = append(b, "#EXT-X-INDEPENDENT-SEGMENTS\n"...)
	}
	skip := 0
	if ll != nil && ll.skip > 0 && ll.skip < len(segs) {
		skip = ll.skip
		b = append(b, "#EXT-X-SKIP:SKIPPED-SEGMENTS="...)
		b = strconv.AppendInt(b, int64(skip), 10)
		b = append(b, '\n')
	}
	var curInit *Init
	for k, s := range segs[skip:] {
		if s.Disc {
			b = append(b, "#EXT-X-DISCONTINUITY\n"...)
		}
		uri, dur, pdt := s.Name, s.Dur, s.PDT
		if fmp4 {
			if in := s.Init[rendition]; in != nil && in != curInit {
				curInit = in
				b = appendMap(b, in)
			}
			if f := s.Frag[rendition]; f != nil {
				// The date labels the fragment's first presented sample
				// (RFC 8216bis 4.4.4.6), on the clock audio and video share:
				// with B-frames a video fragment's first DTS comes before it.
				uri, dur = f.Name, f.Dur
				pdt = pdt.Add(time.Duration(f.EPT-s.DTS) * time.Millisecond)
			} else {
				uri = strings.TrimSuffix(s.Name, ".ts") + ".m4s"
				b = append(b, "#EXT-X-GAP\n"...)
			}
		}
		b = append(b, "#EXT-X-PROGRAM-DATE-TIME:"...)
		b = pdt.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
		b = append(b, '\n')
		if ll != nil && skip+k >= len(segs)-partSegments {
			b = appendParts(b, s.Parts[rendition], ll.epoch, s.Seq)
		}
		b = append(b, "#EXTINF:"...)
		b = appendMillis(b, dur)
		b = append(b, ",\n"...)
		b = append(b, uri...)
		b = append(b, '\n')
	}
	if ll != nil && !ended {
		b = appendOpen(b, rendition, curInit, ll)
	}
	if ended {
		b = append(b, "#EXT-X-ENDLIST\n"...)
	}
	return b
}

func appendMap(b []byte, in *Init) []byte {
	b = append(b, "#EXT-X-MAP:URI=\""...)
	b = append(b, in.Name...)
	return append(b, "\"\n"...)
}

// appendParts lists the parts of segment msn.
func appendParts(b []byte, parts []*Part, epoch string, msn uint64) []byte {
	for n, p := range parts {
		b = append(b, "#EXT-X-PART:DURATION="...)
		b = appendMillis(b, p.Dur)
		b = append(b, ",URI=\""...)
		b = AppendPartName(b, epoch, msn, n)
		b = append(b, '"')
		if p.Indep {
			b = append(b, ",INDEPENDENT=YES"...)
		}
		b = append(b, '\n')
	}
	return b
}

// appendOpen lists the segment being produced: its parts so far and a preload
// hint for the next, then the rendition report.
func appendOpen(b []byte, rendition int, curInit *Init, ll *llOptions) []byte {
	n := 0
	if o := ll.open; o != nil && len(o.Parts[rendition]) > 0 {
		if o.Disc {
			b = append(b, "#EXT-X-DISCONTINUITY\n"...)
		}
		if in := o.Init[rendition]; in != nil && in != curInit {
			b = appendMap(b, in)
		}
		b = appendParts(b, o.Parts[rendition], ll.epoch, ll.nextMSN)
		n = len(o.Parts[rendition])
	}
	if ll.live && (ll.open == nil || ll.open.Init[rendition] != nil) {
		b = append(b, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\""...)
		b = AppendPartName(b, ll.epoch, ll.nextMSN, n)
		b = append(b, "\"\n"...)
	}
	if ll.report >= 0 && ll.reportOK {
		b = append(b, "#EXT-X-RENDITION-REPORT:URI=\"../"...)
		b = append(b, TrackDir[ll.report]...)
		b = append(b, "index.m3u8\",LAST-MSN="...)
		b = strconv.AppendUint(b, ll.reportMSN, 10)
		b = append(b, ",LAST-PART="...)
		b = strconv.AppendInt(b, int64(ll.reportPart), 10)
		b = append(b, '\n')
	}
	for _, r := range ll.reports {
		b = append(b, "#EXT-X-RENDITION-REPORT:URI=\""...)
		b = append(b, r.URI...)
		b = append(b, "\",LAST-MSN="...)
		b = strconv.AppendUint(b, r.MSN, 10)
		b = append(b, ",LAST-PART="...)
		b = strconv.AppendInt(b, int64(r.Part), 10)
		b = append(b, '\n')
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

// independent reports whether every listed segment of the rendition starts with a
// sync sample, which EXT-X-INDEPENDENT-SEGMENTS promises: a publisher whose GOP
// outruns the segment cap gets segments cut mid-GOP, and then the tag is left out.
func independent(rendition int, segs []*Segment) bool {
	if rendition != Video {
		return true // every AAC sample is a sync sample; the CMAF writer marks them so
	}
	for _, seg := range segs {
		if f := seg.Frag[rendition]; f != nil && !f.Key {
			return false
		}
	}
	return true
}

// llOptionsOf gathers the LL-HLS state of rendition i.
func llOptionsOf(v *View, i int) llOptions {
	ll := llOptions{
		partTarget: v.PartTarget.Milliseconds(),
		epoch:      v.Epoch,
		nextMSN:    v.NextMSN,
		open:       v.Open,
		live:       v.Live && !v.Ended,
		report:     -1,
		reports:    v.Reports,
	}
	if !v.Live {
		ll.open = nil
	}
	j := 1 - i
	if !hasTrack(v.Window, j) && (ll.open == nil || ll.open.Init[j] == nil) {
		return ll
	}
	ll.report = j
	ll.reportMSN, ll.reportPart, ll.reportOK = LastPart(v, j)
	return ll
}

// LastPart is the last part rendition i of v lists in its LL-HLS playlist:
// the segment's media sequence number and the part's index, the values of
// a rendition report of it. ok is false when it lists none.
func LastPart(v *View, i int) (msn uint64, part int, ok bool) {
	if o := v.Open; v.Live && o != nil && len(o.Parts[i]) > 0 {
		return v.NextMSN, len(o.Parts[i]) - 1, true
	}
	if n := len(v.Window); n > 0 {
		seg := v.Window[n-1]
		return seg.Seq, len(seg.Parts[i]) - 1, len(seg.Parts[i]) > 0
	}
	return 0, 0, false
}

// Skippable is how many of the window's oldest segments a delta update may
// skip: those that end at least CAN-SKIP-UNTIL (six target durations) before
// the end of the playlist (RFC 8216bis 6.2.5.1).
func Skippable(v *View) int {
	until := 6 * v.Target * 1000
	var after int64
	for _, seg := range v.Window {
		after += seg.Dur
	}
	n := 0
	for _, seg := range v.Window {
		after -= seg.Dur
		if after < until {
			break
		}
		n++
	}
	return n
}

func hasTrack(segs []*Segment, i int) bool {
	for _, seg := range segs {
		if seg.Init[i] != nil {
			return true
		}
	}
	return false
}

// Listed reports which fMP4 media playlists v has: none before the target
// duration is fixed, and with full none while the window has no CMAF segment
// (nothing announces a track set yet); else a track's when the window or the
// open segment has it.
func Listed(v *View, full bool) (l [2]bool) {
	if v.Target == 0 {
		return l
	}
	if full {
		cmaf := false
		for _, seg := range v.Window {
			cmaf = cmaf || seg.HasCMAF()
		}
		if !cmaf {
			return l
		}
	}
	for i := range l {
		l[i] = hasTrack(v.Window, i) || v.Open != nil && v.Open.Init[i] != nil
	}
	return l
}
