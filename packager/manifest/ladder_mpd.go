package manifest

import (
	"sort"
	"strconv"
	"strings"
	"time"
)

// LadderDoc is what a ladder's MPD is rendered from: its Periods, each
// presenting some members' own Periods from one instant on.
type LadderDoc struct {
	// AST is the MPD's availabilityStartTime: fixed for the ladder's life,
	// every Period's start counts from it.
	AST time.Time
	// Live makes the MPD dynamic: a member is published.
	Live bool
	// Aligned says the members cut their segments at the same wall-clock
	// instants: segmentAlignment="true".
	Aligned bool
	Periods []LadderPeriod
}

// LadderPeriod is one Period of a ladder's MPD: from Start to End (0 for the
// last Period, open) it presents, for each rung, the rung's own Period
// Member[i] (a rung whose window no longer holds it is left out).
type LadderPeriod struct {
	ID     string
	Start  int64 // ms from LadderDoc.AST
	End    int64 // ms from LadderDoc.AST, the next Period's start; 0 for the last
	Rungs  []Rung
	Member []*Period // per rung: the rung's own Period presented
}

// LadderTolerance is how far a member's segment may reach past the start of
// a ladder Period and still not be listed there: members cut within
// packager.LadderAlignTolerance of one another would otherwise list a sliver
// of a segment before the one all others start with, and the m-th segments of
// two Representations would no longer be the same instant's.
const LadderTolerance = 100 // ms

// ladderRep is one Representation of a ladder Period.
type ladderRep struct {
	rung   Rung
	p      *Period // the member's own Period
	i      int     // Video or Audio
	bw     int64
	offset int64 // the member's Period start on the ladder's timeline, ms
	family string
	// label is the audio track of a multitrack publish the rep is (Rung.Audio):
	// such reps each have an AdaptationSet of their own.
	label *AudioLabel
}

// setKey is what puts reps in one AdaptationSet: kind, codec family and,
// for a multitrack publish's audio tracks, the track.
func (r ladderRep) setKey() (int, string, int) {
	id := -1
	if r.label != nil && r.i == Audio {
		id = r.label.ID
	}
	return r.i, r.family, id
}

// LadderMPD appends the DASH MPD of a ladder of separately published streams
// (packager.Ladder): per Period, one video AdaptationSet per codec family
// with a Representation per member carrying that video, and likewise for
// audio, highest bandwidth first. Each member has its own timeline, segment
// numbers and Periods, so each Representation carries its own SegmentTemplate
// whose presentationTimeOffset maps the member's media time at the ladder
// Period's start: the same wall-clock instant in every Representation. Its
// files are under the member's prefix. It returns dst unchanged when no
// Period has a Representation.
func LadderMPD(dst []byte, d *LadderDoc) []byte {
	type period struct {
		lp   *LadderPeriod
		reps []ladderRep
		last bool
	}
	var (
		ps                  []period
		target, maxDur, tsb int64
		ll                  *View
		now                 time.Time
	)
	for k := range d.Periods {
		lp := &d.Periods[k]
		pe := period{lp: lp, last: k == len(d.Periods)-1}
		for j, r := range lp.Rungs {
			v := r.View
			if v == nil || j >= len(lp.Member) {
				continue
			}
			p := findPeriod(v, lp.Member[j])
			if p == nil {
				continue
			}
			if v.PublishTime.After(now) {
				now = v.PublishTime
			}
			target = max(target, v.Target*1000)
			var total int64
			for _, seg := range v.Window {
				total += seg.Dur
				maxDur = max(maxDur, seg.Dur)
				for _, f := range seg.Frag {
					if f != nil {
						maxDur = max(maxDur, f.Dur)
					}
				}
			}
			tsb = max(tsb, total)
			if ll == nil && d.Live && lowLatency(v) {
				ll = v
			}
			offset := v.AST.UnixMilli() - d.AST.UnixMilli() + p.Start
			for i := range p.Init {
				in := p.Init[i]
				if in == nil || in.Track == nil {
					continue
				}
				rep := ladderRep{rung: r, p: p, i: i, bw: v.Rates.Track[i], offset: offset, family: codecFamily(in.Track.CodecString), label: r.Audio}
				if !pe.last || !gridded(v, p) {
					if _, ok := listed(rep, lp); !ok {
						continue
					}
				}
				pe.reps = append(pe.reps, rep)
			}
		}
		if len(pe.reps) > 0 {
			sort.SliceStable(pe.reps, func(a, b int) bool {
				x, y := pe.reps[a], pe.reps[b]
				if x.i != y.i {
					return x.i < y.i
				}
				if x.family != y.family {
					return x.family < y.family
				}
				_, _, xa := x.setKey()
				_, _, ya := y.setKey()
				if xa != ya {
					return xa < ya
				}
				if x.bw != y.bw {
					return x.bw > y.bw
				}
				return x.rung.Prefix < y.rung.Prefix
			})
			ps = append(ps, pe)
		}
	}
	if len(ps) == 0 {
		return dst
	}
	b := appendMPDStart(dst, d.Live, d.AST, now)
	switch {
	case !d.Live:
		var end int64
		for _, pe := range ps {
			for _, rep := range pe.reps {
				if e, ok := listed(rep, pe.lp); ok {
					end = max(end, e)
				}
			}
		}
		b = appendDurAttr(b, "mediaPresentationDuration", end)
	case ll != nil:
		b = appendDurAttr(b, "minimumUpdatePeriod", min(target, max(2*ll.PartTarget.Milliseconds(), 500)))
		b = appendDurAttr(b, "timeShiftBufferDepth", tsb)
		b = appendDurAttr(b, "suggestedPresentationDelay", latencyTarget(ll))
	default:
		b = appendDurAttr(b, "minimumUpdatePeriod", target)
		b = appendDurAttr(b, "timeShiftBufferDepth", tsb)
		b = appendDurAttr(b, "suggestedPresentationDelay", 3*target)
	}
	b = appendDurAttr(b, "minBufferTime", target)
	b = appendDurAttr(b, "maxSegmentDuration", maxDur)
	b = append(b, ">\n"...)
	if ll != nil {
		b = appendServiceDescription(b, ll)
	}
	for _, pe := range ps {
		b = append(b, `  <Period id="`...)
		b = appendTemplatePath(b, pe.lp.ID)
		b = append(b, '"')
		b = appendDurAttr(b, "start", pe.lp.Start)
		b = append(b, ">\n"...)
		set := 0
		for j := 0; j < len(pe.reps); {
			k := j + 1
			for k < len(pe.reps) && sameSet(pe.reps[k], pe.reps[j]) {
				k++
			}
			b = appendLadderSet(b, d, pe.lp, pe.reps[j:k], set, pe.last, ll != nil)
			set++
			j = k
		}
		b = append(b, "  </Period>\n"...)
	}
	b = append(b, "  "+utcTiming+"\n"...)
	return append(b, "</MPD>\n"...)
}

func sameSet(a, b ladderRep) bool {
	ai, af, aid := a.setKey()
	bi, bf, bid := b.setKey()
	return ai == bi && af == bf && aid == bid
}

// findPeriod returns p when v's window holds a segment of it.
func findPeriod(v *View, p *Period) *Period {
	for _, seg := range v.Window {
		if p != nil && seg.Period == p {
			return p
		}
	}
	return nil
}

// codecFamily is a codecs string's sample entry ("avc1" of "avc1.64001f"):
// Representations of one family share an AdaptationSet.
func codecFamily(c string) string {
	f, _, _ := strings.Cut(c, ".")
	return f
}

// ladderPTO is rep's presentationTimeOffset, ms on the member's session
// timeline: the member's media time at the ladder Period's start.
func ladderPTO(rep ladderRep, lp *LadderPeriod) int64 {
	return rep.p.PTO + max(lp.Start-rep.offset, 0)
}

// listed reports whether rep has a fragment in lp (ending more than
// LadderTolerance after its start, starting before its end) and the end of
// the last one on the ladder's timeline, ms.
func listed(rep ladderRep, lp *LadderPeriod) (end int64, ok bool) {
	keep := keeper(rep, lp)
	ts := rep.p.Init[rep.i].Track.Timescale
	for _, seg := range rep.rung.View.Window {
		f := seg.Frag[rep.i]
		if seg.Period != rep.p || f == nil || !keep(f) {
			continue
		}
		ok = true
		if ts > 0 {
			end = max(end, rep.offset+int64((f.T+f.D)*1000/uint64(ts))-rep.p.PTO)
		}
	}
	return end, ok
}

// keeper selects rep's fragments that lp lists, in the track's ticks.
func keeper(rep ladderRep, lp *LadderPeriod) func(*Fragment) bool {
	ts := rep.p.Init[rep.i].Track.Timescale
	from := Ticks(ladderPTO(rep, lp)+LadderTolerance, ts)
	to := uint64(0)
	if lp.End > 0 {
		to = Ticks(rep.p.PTO+lp.End-rep.offset, ts)
		if lp.End <= rep.offset {
			to = 1 // the Period ends before the member's begins: nothing
		}
	}
	return func(f *Fragment) bool {
		return f.T+f.D > from && (to == 0 || f.T < to)
	}
}

// validRole reports whether r is a urn:mpeg:dash:role:2011 value an audio
// track may take (ISO/IEC 23009-1 5.8.5.5) other than main.
func validRole(r string) bool {
	switch r {
	case "alternate", "supplementary", "commentary", "dub", "description", "emergency", "enhanced-audio-intelligibility":
		return true
	}
	return false
}

// appendXMLText appends s escaped as XML character data.
func appendXMLText(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

func appendLadderSet(b []byte, d *LadderDoc, lp *LadderPeriod, reps []ladderRep, id int, last, ll bool) []byte {
	i := reps[0].i
	b = append(b, `    <AdaptationSet id="`...)
	b = strconv.AppendInt(b, int64(id), 10)
	if i == Video {
		b = append(b, `" contentType="video" mimeType="video/mp4"`...)
	} else {
		b = append(b, `" contentType="audio" mimeType="audio/mp4"`...)
	}
	if d.Aligned {
		b = append(b, ` segmentAlignment="true"`...)
	} else {
		b = append(b, ` segmentAlignment="false"`...)
	}
	b = append(b, ` startWithSAP="1"`...)
	if i == Video {
		var w, h int
		for _, rep := range reps {
			t := rep.p.Init[i].Track
			w, h = max(w, t.Width), max(h, t.Height)
		}
		b = appendIntAttr(b, "maxWidth", int64(w))
		b = appendIntAttr(b, "maxHeight", int64(h))
		b = append(b, ">\n"...)
	} else {
		b = append(b, ` lang="`...)
		if l := reps[0].label; l != nil && l.Language != "" && ValidLanguage(l.Language) {
			b = append(b, l.Language...)
		} else {
			b = append(b, "und"...)
		}
		b = append(b, "\">\n"...)
	}
	role := "main"
	if l := reps[0].label; l != nil && i == Audio {
		// A multitrack publish's audio track: named for a viewer's choice,
		// track 0 the main one (DASH-IF IOP 3.9.4.2), the others what
		// their metadata says or alternates.
		b = append(b, `      <Label>`...)
		if name := quotedText(l.Name); name != "" {
			b = appendXMLText(b, name)
		} else {
			b = append(b, "Audio "...)
			b = strconv.AppendInt(b, int64(l.ID+1), 10)
		}
		b = append(b, "</Label>\n"...)
		switch {
		case l.ID == 0:
		case validRole(l.Role):
			role = l.Role
		default:
			role = "alternate"
		}
	}
	b = append(b, `      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="`...)
	b = append(b, role...)
	b = append(b, `"/>`+"\n"...)
	for _, rep := range reps {
		in := rep.p.Init[i]
		t := in.Track
		v := rep.rung.View
		pto := Ticks(ladderPTO(rep, lp), t.Timescale)
		st := segTemplate{p: rep.p, i: i, prefix: rep.rung.Prefix, pto: pto}
		if last && gridded(v, rep.p) {
			// The member's own segment grid, numbered from the segment whose
			// nominal start is nearest the ladder Period's start: its media
			// at the Period's start is still the presentationTimeOffset, so
			// the segments sit within half a @duration of their nominal
			// places (the DASH-IF timing model's tolerance) and the picture
			// stays in sync with the other Representations.
			dur := max(rep.p.Dur, 1)
			n := max(lp.Start-rep.offset+dur/2, 0) / dur
			st.g = grid{ok: true, ato: max(rep.p.Dur-v.PartTarget.Milliseconds(), 0)}
			st.first = rep.p.First + uint64(n)
		} else {
			st.keep = keeper(rep, lp)
		}
		b = append(b, `      <Representation id="`...)
		b = appendTemplatePath(b, rep.rung.Prefix)
		b = append(b, TrackDir[i][:1]...)
		b = append(b, `" codecs="`...)
		b = appendToken(b, t.CodecString)
		b = append(b, '"')
		b = appendIntAttr(b, "bandwidth", rep.bw)
		if i == Video {
			b = appendIntAttr(b, "width", int64(t.Width))
			b = appendIntAttr(b, "height", int64(t.Height))
			if fps := v.Rates.FPS; fps > 0 {
				b = append(b, ` frameRate="`...)
				b = appendFrameRate(b, fps)
				b = append(b, '"')
			}
			b = append(b, ">\n"...)
		} else {
			b = appendIntAttr(b, "audioSamplingRate", int64(t.SampleRate))
			b = append(b, ">\n"...)
			b = append(b, `        <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="`...)
			b = strconv.AppendInt(b, int64(max(t.Channels, 1)), 10)
			b = append(b, `"/>`+"\n"...)
		}
		if ll && last {
			// DASH-IF low latency: the wall clock of the Representation's
			// presentationTimeOffset (the ladder Period's start), which the
			// prft box of every chunk repeats for its first sample.
			b = append(b, `        <ProducerReferenceTime id="0" type="encoder" inband="true"`...)
			b = appendTimeAttr(b, "wallClockTime", d.AST.Add(time.Duration(rep.offset+ladderPTO(rep, lp)-rep.p.PTO)*time.Millisecond))
			b = append(b, ` presentationTime="`...)
			b = strconv.AppendUint(b, st.pto, 10)
			b = append(b, `">`+"\n          "+utcTiming+"\n        </ProducerReferenceTime>\n"...)
		}
		b = appendSegmentTemplate(b, st, v.Window)
		b = append(b, "      </Representation>\n"...)
	}
	return append(b, "    </AdaptationSet>\n"...)
}
