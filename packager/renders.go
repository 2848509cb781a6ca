package packager

import (
	"strconv"
	"sync"
	"time"
)

// renders is what one change of a stream renders for the CMAF outputs: the fMP4
// HLS playlists and the MPD, each nil while there is nothing to list.
type renders struct {
	multivariant []byte
	media        [2][]byte // indexed by vIdx, aIdx
	delta        [2][]byte // LL-HLS delta updates (EXT-X-SKIP), nil when nothing can be skipped
	mpd          []byte
	rates        rates
}

// rates are bitrates measured over the window, bits/s, and the video frame rate.
type rates struct {
	peak, avg int64    // per segment, all tracks' fragments together
	track     [2]int64 // per track, the peak fragment bitrate
	fps       float64  // video frames per second; 0 when unknown
	captions  bool     // a video fragment carries closed captions
}

// measure computes rates over segs. A segment's bitrate is its fragment bytes
// over its duration; segments without CMAF count their TS bytes.
func measure(segs []*segment) rates {
	var (
		r            rates
		bytes, ms    int64
		vFrames, vMs int64
	)
	for _, s := range segs {
		n := int64(0)
		if s.hasCMAF() {
			for i, f := range s.frag {
				if f == nil {
					continue
				}
				n += int64(len(f.data))
				if f.dur > 0 {
					r.track[i] = max(r.track[i], int64(len(f.data))*8000/f.dur)
				}
				if i == vIdx {
					r.captions = r.captions || f.captions
					vFrames += int64(f.frames)
					vMs += f.dur
				}
			}
		} else {
			n = int64(len(s.data))
		}
		if s.dur > 0 {
			r.peak = max(r.peak, n*8000/s.dur)
		}
		bytes += n
		ms += s.dur
	}
	if ms > 0 {
		r.avg = bytes * 8000 / ms
	}
	r.peak = max(r.peak, r.avg, 1)
	r.avg = max(r.avg, 1)
	for i := range r.track {
		r.track[i] = max(r.track[i], 1)
	}
	if vMs > 0 {
		r.fps = float64(vFrames) * 1000 / float64(vMs)
	}
	return r
}

// docCell holds the fMP4 HLS playlists and the MPD of one state of a stream,
// rendered on first use and at most once, so a change nobody reads costs no
// render and one many requests read costs one. The state is snap, the snapshot
// the cell was made in: its copies of what the renders read (see thaw) are
// immutable, so the renders run without the stream's lock. A full cell renders
// everything, as a window change needs; the others (a part added) render the
// media playlists and take the multivariant playlist and MPD of base, the last
// full cell.
type docCell struct {
	once sync.Once
	snap *Snapshot
	full bool
	base *docCell
	r    renders
}

var noRenders renders

// get returns the documents, rendering them on the first call; a nil cell (no
// CMAF state yet, or an evicted stream) has none.
func (d *docCell) get() *renders {
	if d == nil {
		return &noRenders
	}
	d.once.Do(d.render)
	return &d.r
}

func (d *docCell) render() {
	var in Stream
	d.snap.thaw(&in)
	if d.full {
		d.r = in.renderCMAFLocked(in.plTime, in.rates)
	} else {
		var base renders
		if d.base != nil {
			base = *d.base.get()
		}
		d.r = in.renderPartsLocked(base)
	}
	d.base = nil
}

// frozenOwner stands for the live session in a thawed state: the renders only
// ask whether there is one.
var frozenOwner = new(session)

// thaw fills in, a Stream nobody else sees, with the state the renders read as
// the snapshot has it, so that the renders (methods of Stream, written for the
// locked stream) run on a snapshot. A field a render starts reading must be
// copied into the snapshot and here. Everything is immutable once a snapshot
// holds it (segments, init segments, the open segment) or a value; the window
// is the snapshot's own copy. One field is not: a period's end grows with its
// segments, and the MPD reads it only for an ended stream, whose last Period
// takes no more segments.
func (snap *Snapshot) thaw(in *Stream) {
	in.hub, in.app, in.name, in.since, in.epoch = snap.hub, snap.App, snap.Name, snap.Since, snap.epoch
	if snap.Live {
		in.owner = frozenOwner
	}
	in.remote, in.tracks, in.bytes = snap.Remote, snap.Tracks, snap.Bytes
	in.window, in.retired = snap.objects[:snap.Segments:snap.Segments], snap.objects[snap.Segments:]
	in.nextSeq, in.discSeq, in.target = snap.nextMSN, snap.discSeq, snap.target
	in.ended, in.discNext = snap.ended, snap.discNext
	in.playlist, in.plTime = snap.TSPlaylist, snap.modTime
	in.inits, in.ast, in.rates, in.listed = snap.inits, snap.ast, snap.rates, snap.listed
	in.open = snap.open // set only with a publisher on, as the renders read it
}

// listedLocked reports which fMP4 media playlists the current state has: none
// before the target duration is fixed, and for a full render none while the
// window has no CMAF segment (nothing announces a track set yet).
func (s *Stream) listedLocked(full bool) (l [2]bool) {
	if s.target == 0 {
		return l
	}
	if full {
		cmaf := false
		for _, seg := range s.window {
			cmaf = cmaf || seg.hasCMAF()
		}
		if !cmaf {
			return l
		}
	}
	for i := range l {
		l[i] = hasTrack(s.window, i) || s.open != nil && s.open.init[i] != nil
	}
	return l
}

// renderCMAFLocked renders the fMP4 HLS playlists and the MPD of the window.
func (s *Stream) renderCMAFLocked(now time.Time, rt rates) renders {
	r := renders{rates: rt}
	var last *segment // the newest segment with CMAF: its track set is announced
	for i := len(s.window) - 1; i >= 0 && last == nil; i-- {
		if s.window[i].hasCMAF() {
			last = s.window[i]
		}
	}
	if last == nil {
		return r
	}
	r.multivariant = appendMultivariant(make([]byte, 0, 512), last.init, r.rates)
	r.mpd = s.appendMPDLocked(make([]byte, 0, 2048+100*len(s.window)), now, r.rates)
	return s.renderPartsLocked(r)
}

// renderPartsLocked renders the fMP4 media playlists into r, which keeps its
// multivariant playlist and MPD: what changes when a part is added.
func (s *Stream) renderPartsLocked(r renders) renders {
	r.media, r.delta = [2][]byte{}, [2][]byte{}
	for i, ok := range s.listedLocked(false) {
		if !ok {
			continue // before the first segment nothing fixes EXT-X-TARGETDURATION
		}
		size := 256 + 180*len(s.window)
		if s.hub.cfg.DisableLowLatency {
			r.media[i] = appendMediaPlaylist(make([]byte, 0, size), i, s.target, s.discSeq, s.window, s.ended)
			continue
		}
		ll := s.llOptionsLocked(i)
		size += 80 * partSegments * int(s.hub.cfg.SegmentDuration/s.hub.cfg.PartTarget)
		r.media[i] = appendLLPlaylist(make([]byte, 0, size), i, s.target, s.discSeq, s.window, s.ended, ll)
		if ll.skip = s.skippableLocked(); ll.skip > 0 {
			r.delta[i] = appendLLPlaylist(make([]byte, 0, size), i, s.target, s.discSeq, s.window, s.ended, ll)
		}
	}
	return r
}

// llOptionsLocked gathers the LL-HLS state of rendition i.
func (s *Stream) llOptionsLocked(i int) *llOptions {
	ll := &llOptions{
		partTarget: s.hub.cfg.PartTarget.Milliseconds(),
		epoch:      s.epoch,
		nextMSN:    s.nextSeq,
		open:       s.open,
		live:       s.owner != nil && !s.ended,
		report:     -1,
	}
	if s.owner == nil {
		ll.open = nil
	}
	j := 1 - i
	if !hasTrack(s.window, j) && (ll.open == nil || ll.open.init[j] == nil) {
		return ll
	}
	ll.report = j
	if o := ll.open; o != nil && len(o.parts[j]) > 0 {
		ll.reportMSN, ll.reportPart, ll.reportOK = s.nextSeq, len(o.parts[j])-1, true
	} else if n := len(s.window); n > 0 {
		seg := s.window[n-1]
		ll.reportMSN, ll.reportPart, ll.reportOK = seg.seq, len(seg.parts[j])-1, len(seg.parts[j]) > 0
	}
	return ll
}

// skippableLocked is how many of the window's oldest segments a delta update
// may skip: those that end at least CAN-SKIP-UNTIL (six target durations) before
// the end of the playlist (RFC 8216bis 6.2.5.1).
func (s *Stream) skippableLocked() int {
	until := 6 * s.target * 1000
	var after int64
	for _, seg := range s.window {
		after += seg.dur
	}
	n := 0
	for _, seg := range s.window {
		after -= seg.dur
		if after < until {
			break
		}
		n++
	}
	return n
}

func hasTrack(segs []*segment, i int) bool {
	for _, seg := range segs {
		if seg.init[i] != nil {
			return true
		}
	}
	return false
}

// appendMultivariant renders the fMP4 multivariant playlist for the track set
// inits: one variant, its audio as an EXT-X-MEDIA rendition when there is video.
func appendMultivariant(b []byte, inits [2]*initSeg, r rates) []byte {
	// No EXT-X-INDEPENDENT-SEGMENTS here: it would bind every media playlist, and
	// each media playlist says it itself while it holds true.
	b = append(b, "#EXTM3U\n#EXT-X-VERSION:6\n"...)
	v, a := inits[vIdx], inits[aIdx]
	if v != nil && a != nil {
		b = append(b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="`...)
		b = strconv.AppendInt(b, int64(max(a.track.Channels, 1)), 10)
		b = append(b, `",URI="`...)
		b = append(b, AudioPlaylistPath...)
		b = append(b, "\"\n"...)
	}
	if v != nil && r.captions {
		b = append(b, `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc",NAME="CC1",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"`+"\n"...)
	}
	b = append(b, "#EXT-X-STREAM-INF:BANDWIDTH="...)
	b = strconv.AppendInt(b, r.peak, 10)
	b = append(b, ",AVERAGE-BANDWIDTH="...)
	b = strconv.AppendInt(b, r.avg, 10)
	b = append(b, `,CODECS="`...)
	if v != nil {
		b = appendToken(b, v.track.CodecString)
		if a != nil {
			b = append(b, ',')
		}
	}
	if a != nil {
		b = appendToken(b, a.track.CodecString)
	}
	b = append(b, '"')
	uri := AudioPlaylistPath
	if v != nil {
		uri = VideoPlaylistPath
		b = append(b, ",RESOLUTION="...)
		b = strconv.AppendInt(b, int64(v.track.Width), 10)
		b = append(b, 'x')
		b = strconv.AppendInt(b, int64(v.track.Height), 10)
		if r.fps > 0 {
			b = append(b, ",FRAME-RATE="...)
			b = strconv.AppendFloat(b, r.fps, 'f', 3, 64)
		}
		if a != nil {
			b = append(b, `,AUDIO="aac"`...)
		}
		// Said either way (RFC 8216bis 4.4.6.2): a player not told probes the
		// segments for captions, and Shaka Player 5.2 probing a live LL-HLS
		// playlist picks the open segment, listed as parts only, and fails to load.
		if r.captions {
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
