package packager

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
)

// LadderAlignTolerance is how far apart two renditions' segment boundaries
// may start in wall-clock time (EXT-X-PROGRAM-DATE-TIME) and still count as
// aligned: a few frames, since each publisher's start is taken on arrival.
const LadderAlignTolerance = 100 * time.Millisecond

// Ladder is the renditions served together at one name's multivariant
// playlist. Either the streams published under the name plus each of
// Config.Variants' suffixes (live/demo_hi, live/demo_mid...), in nginx-rtmp's
// hls_variant style; or, with Tracks set, the video tracks of a multitrack
// publish of the name itself: the stream (its track 0 and its audio) and a
// stream per other video track (TrackStreamName). It is a view of its
// members at one instant.
type Ladder struct {
	App, Name string
	// Tracks says the members are one publish's tracks, on one timeline,
	// sharing the stream's own audio.
	Tracks bool
	// Members are the member streams held, live or lingering, in the order of
	// Config.Variants; or the stream first and then its track renditions by
	// track id.
	Members []LadderMember
	doc     []byte
}

// LadderMember is one rendition of a ladder.
type LadderMember struct {
	// Suffix is the variant suffix ("_hi"), or "" for a multitrack stream
	// itself and "/v1" for its track 1.
	Suffix string
	// Prefix is where the member's files are relative to the ladder's
	// multivariant playlist: "demo_hi/", or "" and "v1/" for a multitrack
	// publish (URL-escaped, ending in "/" unless empty).
	Prefix   string
	Stream   *Stream
	Snapshot *Snapshot
	// Audio is set on a multitrack publish's audio renditions, the stream
	// itself (track 0) included, when it has more than one audio track:
	// which track the member's audio is and its label.
	Audio *manifest.AudioLabel
}

// AudioOnly reports whether m is an audio track's rendition of a
// multitrack publish (it has no video).
func (m *LadderMember) AudioOnly() bool { return m.Audio != nil && m.Audio.ID > 0 }

// TrackStreamName is the name of the stream serving video track id of a
// multitrack publish of name: "demo/v1". No publisher can take it (a stream
// name has no "/"), and httpserve serves it at /{app}/demo/v1/.
func TrackStreamName(name string, id uint8) string {
	return name + trackSuffix + strconv.Itoa(int(id))
}

// AudioTrackStreamName is the name of the stream serving audio track id of
// a multitrack publish of name: "demo/a1", served at /{app}/demo/a1/.
func AudioTrackStreamName(name string, id uint8) string {
	return name + audioTrackSuffix + strconv.Itoa(int(id))
}

const (
	trackSuffix      = "/v"
	audioTrackSuffix = "/a"
)

// TrackOf splits a TrackStreamName into the stream's name and the track id.
func TrackOf(name string) (base string, id uint8, ok bool) { return trackOf(name, trackSuffix) }

// AudioTrackOf splits an AudioTrackStreamName into the stream's name and the
// audio track id.
func AudioTrackOf(name string) (base string, id uint8, ok bool) {
	return trackOf(name, audioTrackSuffix)
}

// AnyTrackOf is TrackOf or AudioTrackOf, whichever applies.
func AnyTrackOf(name string) (base string, id uint8, audio, ok bool) {
	if base, id, ok = TrackOf(name); ok {
		return base, id, false, true
	}
	base, id, ok = AudioTrackOf(name)
	return base, id, ok, ok
}

func trackOf(name, suffix string) (base string, id uint8, ok bool) {
	i := strings.LastIndex(name, suffix)
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(name[i+len(suffix):], 10, 8)
	if err != nil || n == 0 || strconv.FormatUint(n, 10) != name[i+len(suffix):] {
		return "", 0, false
	}
	return name[:i], uint8(n), true
}

// ladderCache keeps each ladder's last multivariant playlist with what it was
// rendered from (the members' own multivariant playlists, which change exactly
// when a window's track set or rates do), so an unchanged ladder is served as
// the very same bytes and renders once per change.
type ladderCache struct {
	mu  sync.Mutex
	doc map[string]*ladderDoc
}

type ladderDoc struct {
	from   [][]byte
	out    []byte
	tracks bool
	labels string
}

// audioLabel is audio track id's label from the current publish's
// metadata; a label with the id alone when it said nothing.
func (st *Stream) audioLabel(id uint8) *manifest.AudioLabel {
	l := &manifest.AudioLabel{ID: int(id)}
	if p := st.labels.Load(); p != nil {
		for _, t := range *p {
			if t.ID == id {
				l.Name, l.Language, l.Role = t.Name, t.Language, t.Role
			}
		}
	}
	return l
}

// LadderOf returns the ladder name a stream name belongs to under the
// configured variants ("demo" for "demo_hi"), or false.
func (h *Hub) LadderOf(name string) (string, bool) {
	for _, suf := range h.cfg.Variants {
		if base, ok := strings.CutSuffix(name, suf); ok && base != "" {
			return base, true
		}
	}
	return "", false
}

// Ladder returns the ladder app/name. A stream of that very name is a
// ladder only with track renditions of its current publish (multitrack,
// Ladder.Tracks): a plain stream wins over a ladder of the same name.
// Otherwise it is the ladder of Config.Variants' suffixes. ErrNotFound when
// there is neither.
func (h *Hub) Ladder(app, name string) (*Ladder, error) {
	l := &Ladder{App: app, Name: name}
	h.mu.Lock()
	if st := h.streams[streamKey(app, name)]; st != nil {
		if len(st.trackIDs) > 0 {
			l.Tracks = true
			l.Members = append(l.Members, LadderMember{Stream: st})
			for _, id := range st.trackIDs {
				if m := h.streams[streamKey(app, TrackStreamName(name, id))]; m != nil {
					suf := trackSuffix + strconv.Itoa(int(id))
					l.Members = append(l.Members, LadderMember{Suffix: suf, Prefix: suf[1:] + "/", Stream: m})
				}
			}
		}
		if len(st.audioIDs) > 0 {
			if !l.Tracks {
				l.Tracks = true
				l.Members = append(l.Members, LadderMember{Stream: st})
			}
			l.Members[0].Audio = st.audioLabel(0)
			for _, id := range st.audioIDs {
				if m := h.streams[streamKey(app, AudioTrackStreamName(name, id))]; m != nil {
					suf := audioTrackSuffix + strconv.Itoa(int(id))
					l.Members = append(l.Members, LadderMember{Suffix: suf, Prefix: suf[1:] + "/", Stream: m, Audio: st.audioLabel(id)})
				}
			}
		}
	} else {
		for _, suf := range h.cfg.Variants {
			if st := h.streams[streamKey(app, name+suf)]; st != nil {
				l.Members = append(l.Members, LadderMember{Suffix: suf, Prefix: url.PathEscape(name+suf) + "/", Stream: st})
			}
		}
	}
	h.mu.Unlock()
	for i := range l.Members {
		l.Members[i].Snapshot = l.Members[i].Stream.Snapshot()
	}
	if l.Tracks && l.Members[0].Snapshot.Live {
		// Renditions left from an earlier publish of the stream are not
		// this publish's tracks.
		live := l.Members[:1]
		for _, m := range l.Members[1:] {
			if m.Snapshot.Live {
				live = append(live, m)
			}
		}
		l.Members = live
	}
	if l.Tracks {
		audio := 0
		for _, m := range l.Members[1:] {
			if m.AudioOnly() {
				audio++
			}
		}
		if audio == 0 {
			l.Members[0].Audio = nil // one audio track (the others left): named as a single one
		}
	}
	if len(l.Members) == 0 || l.Tracks && len(l.Members) < 2 {
		return nil, fmt.Errorf("packager: %s/%s: %w", app, name, ErrNotFound)
	}
	l.doc = h.ladders.render(streamKey(app, name), l.Listed(), l.Tracks)
	return l, nil
}

// Listed are the members the multivariant playlist lists: the live ones, or
// while none is live the lingering ones, so that a ladder whose publishers all
// left still ends in players as each stream does.
func (l *Ladder) Listed() []LadderMember {
	var live []LadderMember
	for _, m := range l.Members {
		if m.Snapshot.Live {
			live = append(live, m)
		}
	}
	if len(live) == 0 {
		return l.Members
	}
	return live
}

func (c *ladderCache) render(key string, ms []LadderMember, tracks bool) []byte {
	from := make([][]byte, len(ms))
	rungs := make([]manifest.Rung, len(ms))
	var labels string // the audio labels, which change no member's documents
	for i, m := range ms {
		if m.Audio != nil {
			labels += fmt.Sprintf("%#v", *m.Audio)
		}
		from[i] = m.Snapshot.docs.get().multivariant
		rungs[i] = manifest.Rung{Prefix: m.Prefix, View: &m.Snapshot.view, Audio: m.Audio}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.doc[key]; d != nil && d.tracks == tracks && d.labels == labels && sameDocs(d.from, from) {
		return d.out
	}
	var out []byte
	if tracks {
		// ms[0] is the stream itself whenever it is listed: its audio is
		// every variant's default, and the audio tracks' renditions the
		// alternatives.
		var audio []manifest.Rung
		for i, m := range ms {
			if i == 0 && m.Suffix == "" || m.AudioOnly() {
				audio = append(audio, rungs[i])
			}
		}
		out = manifest.TrackLadder(nil, rungs, audio...)
	} else {
		out = manifest.Ladder(nil, rungs)
	}
	if len(out) == 0 {
		out = nil
	}
	if c.doc == nil {
		c.doc = make(map[string]*ladderDoc)
	}
	if len(c.doc) >= maxLadderDocs {
		for k := range c.doc { // any one: a stale entry only costs a render
			delete(c.doc, k)
			break
		}
	}
	c.doc[key] = &ladderDoc{from: from, out: out, tracks: tracks, labels: labels}
	return out
}

// maxLadderDocs bounds the ladders' cached playlists.
const maxLadderDocs = 4096

func sameDocs(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) || len(a[i]) > 0 && &a[i][0] != &b[i][0] {
			return false
		}
	}
	return true
}

// Multivariant is the ladder's fMP4 multivariant playlist, nil while no
// listed member has a CMAF segment with video. Unchanged members give the
// same slice.
func (l *Ladder) Multivariant() []byte { return l.doc }

// Alignment says whether the live members' segment boundaries line up in
// wall-clock time.
type Alignment struct {
	// Compared counts the boundaries of the other members checked against
	// the first live member's (0: fewer than two live members with segments
	// over a common stretch of time).
	Compared int
	// MaxOffset is the largest distance from one of those boundaries to the
	// nearest boundary of the first live member.
	MaxOffset time.Duration
	// Aligned is Compared > 0 and MaxOffset within LadderAlignTolerance.
	Aligned bool
}

// Alignment compares the program date times of the live members' listed
// segments with the first live member's.
func (l *Ladder) Alignment() Alignment {
	var ref []time.Time // the reference's segment boundaries, start of each and end of the last
	var a Alignment
	for _, m := range l.Members {
		w := m.Snapshot.view.Window
		if !m.Snapshot.Live || len(w) == 0 || m.AudioOnly() {
			// An audio track's rendition starts its segments with the audio
			// frame nearest each cut, up to half a frame off: the switches
			// compared here are between video renditions.
			continue
		}
		if ref == nil {
			for _, s := range w {
				ref = append(ref, s.PDT)
			}
			last := w[len(w)-1]
			ref = append(ref, last.PDT.Add(time.Duration(last.Dur)*time.Millisecond))
			continue
		}
		for _, s := range w {
			if s.PDT.Before(ref[0].Add(-LadderAlignTolerance)) || s.PDT.After(ref[len(ref)-1].Add(LadderAlignTolerance)) {
				continue
			}
			best := time.Duration(-1)
			for _, r := range ref {
				d := s.PDT.Sub(r)
				if d < 0 {
					d = -d
				}
				if best < 0 || d < best {
					best = d
				}
			}
			a.Compared++
			a.MaxOffset = max(a.MaxOffset, best)
		}
	}
	a.Aligned = a.Compared > 0 && a.MaxOffset <= LadderAlignTolerance
	return a
}
