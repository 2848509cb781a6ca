package packager

import (
	"math"
	"math/bits"

	"github.com/rtmpgate/rtmpgate/remux"
)

// Track indexes of the CMAF renditions: fragments, inits and playlists are kept
// per kind in arrays indexed by these.
const (
	vIdx = 0
	aIdx = 1
)

// trackDir is the path prefix of a rendition: "v/" or "a/".
var trackDir = [2]string{"v/", "a/"}

// initSeg is one track's CMAF header (ftyp + moov). gen is the stream's count of
// track sets, so its name never repeats and the bytes behind a name never change.
type initSeg struct {
	gen   uint64
	name  string // "init-<epoch>-<gen>.mp4", as a media playlist lists it
	path  string // "v/" or "a/" + name, as Stream.Object takes it
	track *remux.Track
	data  []byte // exact-size copy
}

// fragment is one track's CMAF fragment of a segment: the same bytes are listed by
// the fMP4 media playlist and the MPD.
type fragment struct {
	name   string // "<epoch>-<msn>.m4s"
	path   string // "v/" or "a/" + name
	data   []byte // styp + moof + mdat, the track's segment buffer handed over (cap-limited)
	alloc  int64  // bytes of the buffer behind data: its length plus the spare capacity it keeps
	t, d   uint64 // earliest presentation time and duration in the track timescale, as the SegmentTimeline lists them
	dur    int64  // decode-time duration, ms, for EXTINF
	start  int64  // first DTS on the session timeline, ms
	ept    int64  // earliest presentation time on the session timeline, ms (start + first CTS)
	eptEnd int64  // where the next fragment's earliest presentation begins, ms
	end    int64  // end of the fragment's media on the session timeline, ms
	frames int    // samples
	key    bool   // the first sample is a sync sample
	// captions: a video sample carried CEA-608/708 captions (remux.CarriesCaptions),
	// which the multivariant playlist declares.
	captions bool
}

// toTicks converts ms on the session timeline to ticks of timescale the way
// remux/cmaf does, round(ms*timescale/1000) half away from zero, so that t and d
// in the MPD equal the tfdt and sample durations in the fragments. Negative or
// overflowing values clamp (the fragmenter refuses such frames anyway).
func toTicks(ms int64, timescale uint32) uint64 {
	if ms <= 0 {
		return 0
	}
	hi, lo := bits.Mul64(uint64(ms), uint64(timescale))
	var carry uint64
	lo, carry = bits.Add64(lo, 500, 0)
	hi += carry
	if hi >= 1000 {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, 1000)
	return min(q, math.MaxInt64)
}

// ticksToMillis is the inverse, rounded to the nearest ms.
func ticksToMillis(ticks uint64, timescale uint32) int64 {
	if timescale == 0 {
		return 0
	}
	hi, lo := bits.Mul64(ticks, 1000)
	var carry uint64
	lo, carry = bits.Add64(lo, uint64(timescale/2), 0)
	hi += carry
	if hi >= uint64(timescale) {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, uint64(timescale))
	return int64(min(q, math.MaxInt64))
}
