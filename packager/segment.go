package packager

import "time"

// segment is one published MPEG-TS segment. It is immutable once a snapshot holds
// it, except expires, which only the stream's lock holder reads or writes.
type segment struct {
	seq     uint64    // media sequence number
	name    string    // "<epoch>-<seq>.ts", as listed in the playlist (relative to ts/)
	path    string    // "ts/" + name, as Stream.Object takes it
	data    []byte    // exact-size copy of the muxer output
	dur     int64     // media duration, ms: next segment's first DTS minus this one's
	pdt     time.Time // wall time of the first frame: publish time + media time
	disc    bool      // preceded by EXT-X-DISCONTINUITY
	modTime time.Time // when it was published
	expires time.Time // once out of the window: when it may be deleted
}
