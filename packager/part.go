package packager

import (
	"strconv"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

// part is one track's CMAF chunk (moof + mdat): an LL-HLS partial segment and a
// low-latency DASH chunk. Its bytes are a view into its segment's buffer, which
// the fragmenter writes the parts into one after the other and which becomes the
// fragment's bytes (styp + every part), so the store keeps each byte once. Its
// name is partName of its segment's media sequence number and its index there.
// The manifests list the same values the stream holds.
type part = manifest.Part

// openSeg is the segment being produced as the stream lists it: the parts cut so
// far, per track. The session builds a new value for each change; the stream
// names its parts and renders them after the window, with a preload hint for the
// next. It is immutable once handed to the stream.
type openSeg struct {
	disc  bool        // follows a discontinuity
	init  [2]*initSeg // the track set
	styp  [2][]byte   // the segment's first bytes per track, before its parts
	parts [2][]*part

	view manifest.Open // what the manifests list of it, filled in by the stream (setOpen)
}

// partName is the name of part n of segment msn.
func partName(epoch string, msn uint64, n int) string { return manifest.PartName(epoch, msn, n) }

// parsePartName splits "<epoch>-<msn>.<n>.m4s" (part) or "<epoch>-<msn>.m4s"
// (segment, n = -1).
func parsePartName(name, epoch string) (msn uint64, n int, ok bool) {
	if len(name) <= len(epoch)+1 || name[:len(epoch)] != epoch || name[len(epoch)] != '-' {
		return 0, 0, false
	}
	rest := name[len(epoch)+1:]
	if len(rest) < 5 || rest[len(rest)-4:] != ".m4s" {
		return 0, 0, false
	}
	rest = rest[:len(rest)-4]
	n = -1
	for i := 0; i < len(rest); i++ {
		if rest[i] == '.' {
			v, err := strconv.ParseUint(rest[i+1:], 10, 31)
			if err != nil || strconv.FormatUint(v, 10) != rest[i+1:] {
				return 0, 0, false // only the canonical name: one object, one URL
			}
			n, rest = int(v), rest[:i]
			break
		}
	}
	msn, err := strconv.ParseUint(rest, 10, 63)
	return msn, n, err == nil && strconv.FormatUint(msn, 10) == rest
}

// StypSize is the size of the styp box that opens every CMAF segment, before its
// first part.
const StypSize = cmaf.StypSize
