package packager

import (
	"math"
	"math/bits"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
	"github.com/rtmpgate/rtmpgate/remux"
)

// Track indexes of the CMAF renditions: fragments, inits and playlists are kept
// per kind in arrays indexed by these.
const (
	vIdx = manifest.Video
	aIdx = manifest.Audio
)

// trackDir is the path prefix of a rendition: "v/" or "a/".
var trackDir = manifest.TrackDir

// initSeg is one track's CMAF header (ftyp + moov). gen is the stream's count of
// track sets, so its name never repeats and the bytes behind a name never change.
type initSeg struct {
	gen   uint64
	name  string // "init-<epoch>-<gen>.mp4", as a media playlist lists it
	path  string // "v/" or "a/" + name, as Stream.Object takes it
	track *remux.Track
	data  []byte        // exact-size copy
	view  manifest.Init // what the manifests list of it, filled in when the stream names it
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

	view manifest.Fragment // what the manifests list of it (segment.freeze)
}

// toTicks converts ms on the session timeline to ticks of timescale, as the
// fragments and the MPD count them.
func toTicks(ms int64, timescale uint32) uint64 { return manifest.Ticks(ms, timescale) }

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
