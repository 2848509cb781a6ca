package packager

import (
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
)

// LadderAlignTolerance is how far apart two renditions' segment boundaries
// may start in wall-clock time (EXT-X-PROGRAM-DATE-TIME) and still count as
// aligned: a few frames, since each publisher's start is taken on arrival.
const LadderAlignTolerance = 100 * time.Millisecond

// Ladder is the streams published under one name plus each of
// Config.Variants' suffixes (live/demo_hi, live/demo_mid...), served together
// at the name's multivariant playlist in nginx-rtmp's hls_variant style. It is
// a view of its members at one instant.
type Ladder struct {
	App, Name string
	// Members are the member streams held, live or lingering, in the order of
	// Config.Variants.
	Members []LadderMember
	doc     []byte
}

// LadderMember is one rendition of a ladder.
type LadderMember struct {
	Suffix   string
	Stream   *Stream
	Snapshot *Snapshot
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
	from [][]byte
	out  []byte
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

// Ladder returns the ladder app/name: ErrNotFound when no variants are
// configured, when a stream of that very name exists (a plain stream wins
// over a ladder of the same name) or when none of its members is held.
func (h *Hub) Ladder(app, name string) (*Ladder, error) {
	if len(h.cfg.Variants) == 0 {
		return nil, fmt.Errorf("packager: %s/%s: %w", app, name, ErrNotFound)
	}
	l := &Ladder{App: app, Name: name}
	h.mu.Lock()
	if h.streams[streamKey(app, name)] == nil {
		for _, suf := range h.cfg.Variants {
			if st := h.streams[streamKey(app, name+suf)]; st != nil {
				l.Members = append(l.Members, LadderMember{Suffix: suf, Stream: st})
			}
		}
	}
	h.mu.Unlock()
	if len(l.Members) == 0 {
		return nil, fmt.Errorf("packager: %s/%s: %w", app, name, ErrNotFound)
	}
	for i := range l.Members {
		l.Members[i].Snapshot = l.Members[i].Stream.Snapshot()
	}
	l.doc = h.ladders.render(streamKey(app, name), l.Listed())
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

func (c *ladderCache) render(key string, ms []LadderMember) []byte {
	from := make([][]byte, len(ms))
	rungs := make([]manifest.Rung, len(ms))
	for i, m := range ms {
		from[i] = m.Snapshot.docs.get().multivariant
		rungs[i] = manifest.Rung{Prefix: url.PathEscape(m.Snapshot.Name) + "/", View: &m.Snapshot.view}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.doc[key]; d != nil && sameDocs(d.from, from) {
		return d.out
	}
	out := manifest.Ladder(nil, rungs)
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
	c.doc[key] = &ladderDoc{from: from, out: out}
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
		if !m.Snapshot.Live || len(w) == 0 {
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
