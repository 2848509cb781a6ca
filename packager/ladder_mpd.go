package packager

import (
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/mapcap"
	"github.com/rtmpgate/rtmpgate/packager/manifest"
)

// maxLadderPeriods bounds the Periods a ladder's MPD keeps: older ones go
// first, as the members' windows have long dropped their segments.
const maxLadderPeriods = 8

// ladderTimeline is a ladder's DASH presentation across changes of its
// members: the MPD's availabilityStartTime, fixed once chosen, and its
// Periods. A new Period starts whenever the set of live members or one of
// their own current Periods changes (a member left, came back, republished
// or changed track set): an MPD update may add a Period, never change the
// Representations of one it listed (ISO/IEC 23009-1 5.4, DASH-IF IOP 4.4.3).
type ladderTimeline struct {
	mu      sync.Mutex
	ast     time.Time
	periods []ladderPeriod
	n       int // Periods opened, for their ids

	// The last render and what it was rendered from.
	from    [][]byte
	aligned bool
	labels  string // the members' audio labels (ladderLabels)
	out     []byte
}

// ladderLabels renders the audio labels of l's members for comparison: they
// change no member's documents.
func ladderLabels(l *Ladder) string {
	var s string
	for _, m := range l.Members {
		if m.Audio != nil {
			s += fmt.Sprintf("%#v", *m.Audio)
		}
	}
	return s
}

type ladderPeriod struct {
	id         string
	start, end int64 // ms from ast; end 0 while it is the last
	members    []ladderRef
}

// ladderRef is one member presented in a Period: its name and own Period.
type ladderRef struct {
	name   string
	period *manifest.Period
}

// ladderTimelines holds each ladder's timeline, bounded like the playlists.
type ladderTimelines struct {
	mu sync.Mutex
	m  map[string]*ladderTimeline
}

func (c *ladderTimelines) get(key string) *ladderTimeline {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]*ladderTimeline)
	}
	tl := c.m[key]
	if tl == nil {
		if len(c.m) >= maxLadderDocs {
			mapcap.DropQuarter(c.m)
		}
		tl = &ladderTimeline{}
		c.m[key] = tl
	}
	return tl
}

// LadderMPD is ladder l's DASH MPD: one Period per stretch of the ladder's
// life with the same members live, each Representation a member's own track
// with its own SegmentTemplate (see manifest.LadderMPD and docs/DESIGN.md,
// "The ladder MPD"); nil while no listed member has a CMAF segment.
// Unchanged members give the same slice. The hub keeps each ladder's
// Periods across calls.
func (h *Hub) LadderMPD(l *Ladder) []byte {
	tl := h.ladderMPDs.get(streamKey(l.App, l.Name))
	tl.mu.Lock()
	defer tl.mu.Unlock()
	changed := tl.advance(l)
	from := make([][]byte, len(l.Members))
	for i, m := range l.Members {
		from[i] = m.Snapshot.docs.get().mpd
	}
	aligned := l.Alignment().Aligned
	if !changed && tl.out != nil && aligned == tl.aligned && sameDocs(tl.from, from) && ladderLabels(l) == tl.labels {
		return tl.out
	}
	d := &manifest.LadderDoc{AST: tl.ast, Aligned: aligned}
	byName := make(map[string]*Snapshot, len(l.Members))
	prefix := make(map[string]string, len(l.Members))
	audio := make(map[string]*manifest.AudioLabel, len(l.Members))
	labels := ladderLabels(l)
	for _, m := range l.Members {
		byName[m.Snapshot.Name] = m.Snapshot
		prefix[m.Snapshot.Name] = m.Prefix
		if m.Audio != nil {
			audio[m.Snapshot.Name] = m.Audio
		}
		d.Live = d.Live || m.Snapshot.Live
	}
	for _, p := range tl.periods {
		lp := manifest.LadderPeriod{ID: p.id, Start: p.start, End: p.end}
		for _, ref := range p.members {
			if snap := byName[ref.name]; snap != nil {
				lp.Rungs = append(lp.Rungs, manifest.Rung{Prefix: prefix[ref.name], View: &snap.view, Audio: audio[ref.name]})
				lp.Member = append(lp.Member, ref.period)
			}
		}
		d.Periods = append(d.Periods, lp)
	}
	out := manifest.LadderMPD(nil, d)
	if len(out) == 0 {
		out = nil
	}
	tl.from, tl.aligned, tl.out, tl.labels = from, aligned, out, labels
	return out
}

// advance opens a new Period when the listed members or their own current
// Periods differ from the last Period's, and reports whether it did. While
// no member is live the Periods stay as they were (the MPD turns static);
// a ladder seen first with none live gets one Period of the lingering ones.
func (tl *ladderTimeline) advance(l *Ladder) bool {
	var (
		cur  []ladderRef
		live bool
		ast  time.Time
	)
	for _, m := range l.Listed() {
		live = live || m.Snapshot.Live
		v := &m.Snapshot.view
		if m.Snapshot.Live && v.DiscNext {
			continue // back, but no segment of its new session yet
		}
		for i := len(v.Window) - 1; i >= 0; i-- {
			if p := v.Window[i].Period; p != nil {
				cur = append(cur, ladderRef{m.Snapshot.Name, p})
				if ast.IsZero() || v.AST.Before(ast) {
					ast = v.AST
				}
				break
			}
		}
	}
	if len(cur) == 0 || !live && len(tl.periods) > 0 {
		return false
	}
	if n := len(tl.periods); n > 0 && sameRefs(tl.periods[n-1].members, cur) {
		return false
	}
	if tl.ast.IsZero() {
		tl.ast = ast
	}
	views := make(map[string]*manifest.View, len(l.Members))
	for _, m := range l.Members {
		views[m.Snapshot.Name] = &m.Snapshot.view
	}
	// The new Period starts once every member it presents has begun its
	// own Period, and once each of the last one's has begun its last segment
	// there (closeAt).
	var start int64
	for _, ref := range cur {
		start = max(start, tl.offset(views[ref.name], ref.period))
	}
	if n := len(tl.periods); n > 0 {
		last := &tl.periods[n-1]
		start = max(start, last.start+1)
		for _, ref := range last.members {
			if v := views[ref.name]; v != nil {
				start = max(start, tl.closeAt(v, ref.period))
			}
		}
		last.end = start
	}
	tl.periods = append(tl.periods, ladderPeriod{id: "l" + strconv.Itoa(tl.n) + "-" + strconv.FormatInt(start, 10), start: start, members: cur})
	tl.n++
	if len(tl.periods) > maxLadderPeriods {
		tl.periods = append(tl.periods[:0], tl.periods[len(tl.periods)-maxLadderPeriods:]...)
	}
	return true
}

// offset is where member Period p starts on the ladder's timeline, ms.
func (tl *ladderTimeline) offset(v *manifest.View, p *manifest.Period) int64 {
	if v == nil {
		return 0
	}
	return v.AST.UnixMilli() - tl.ast.UnixMilli() + p.Start
}

// closeAt is the earliest instant on the ladder's timeline, ms, at which a
// Period presenting member Period p may end: 1 ms into the last segment v
// lists of it, or into the segment being produced while the low-latency MPD
// addresses p by number (it was promised by number there). That segment then
// overlaps the next Period, as a Period's edge segments may; every member's
// last segment reaching past the boundary means no Representation of the
// closing Period has a gap before its end, a member that left included, and
// the members still on start the next Period at the same segment.
func (tl *ladderTimeline) closeAt(v *manifest.View, p *manifest.Period) int64 {
	var start, end int64 = -1, -1
	for _, seg := range v.Window {
		if seg.Period != p {
			continue
		}
		s, e := seg.DTS, seg.DTS+seg.Dur
		for _, f := range seg.Frag {
			if f != nil {
				s, e = min(s, f.EPT), max(e, f.EPT+f.Dur)
			}
		}
		start, end = max(start, s), max(end, e)
	}
	if end < 0 {
		return 0
	}
	if v.LowLatency && v.Live && !v.Ended && !v.DiscNext {
		start = end
	}
	return tl.offset(v, p) + start - p.PTO + 1
}

func sameRefs(a, b []ladderRef) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
