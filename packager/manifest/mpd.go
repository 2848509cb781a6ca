package manifest

import (
	"strconv"
	"time"
)

// MPD appends the DASH MPD (ISO/IEC 23009-1, DASH-IF live profile
// with CMAF) of the window: one Period per publish session and track set, one
// AdaptationSet and Representation per track, a SegmentTemplate with a
// SegmentTimeline addressing fragments by their media sequence number. While a
// publisher is on it the MPD is dynamic; after unpublish it is static until a
// republish makes it dynamic again.
//
// It is written with appends like the playlists: every value is ours (numbers,
// names, filtered codecs strings), so nothing needs XML escaping, and it renders
// once per change without reflection.
func MPD(b []byte, v *View) []byte {
	now, r := v.PublishTime, v.Rates
	var (
		total, maxDur int64
		periods       []*Period
	)
	for _, seg := range v.Window {
		total += seg.Dur
		maxDur = max(maxDur, seg.Dur)
		for _, f := range seg.Frag {
			if f != nil {
				maxDur = max(maxDur, f.Dur)
			}
		}
		if p := seg.Period; p != nil && (len(periods) == 0 || periods[len(periods)-1] != p) {
			periods = append(periods, p)
		}
	}
	target := v.Target * 1000
	b = appendMPDStart(b, !v.Ended, v.AST, now)
	if v.Ended {
		var end int64
		if n := len(periods); n > 0 {
			p := periods[n-1]
			end = p.Start + p.End - p.PTO
		}
		b = appendDurAttr(b, "mediaPresentationDuration", end)
	} else if lowLatency(v) {
		// Low latency: segments are addressed by number and need no update,
		// but a Period that ends (the publisher left, a discontinuity) must
		// reach players before they ask for numbers it will not have.
		b = appendDurAttr(b, "minimumUpdatePeriod", min(target, max(2*v.PartTarget.Milliseconds(), 500)))
		b = appendDurAttr(b, "timeShiftBufferDepth", total)
		b = appendDurAttr(b, "suggestedPresentationDelay", latencyTarget(v))
	} else {
		b = appendDurAttr(b, "minimumUpdatePeriod", target)
		b = appendDurAttr(b, "timeShiftBufferDepth", total)
		b = appendDurAttr(b, "suggestedPresentationDelay", 3*target)
	}
	b = appendDurAttr(b, "minBufferTime", target)
	b = appendDurAttr(b, "maxSegmentDuration", maxDur)
	b = append(b, ">\n"...)
	if lowLatency(v) {
		b = appendServiceDescription(b, v)
	}
	for _, p := range periods {
		g := grid{ok: gridded(v, p)}
		if g.ok {
			g.ato = max(p.Dur-v.PartTarget.Milliseconds(), 0)
		}
		// DASH-IF low latency: every AdaptationSet maps a presentation time to
		// the wall clock (the Period's start: media arriving in real time is
		// available as it is published), which the prft box of every chunk
		// repeats for the chunk's first sample as received.
		var prt time.Time
		if lowLatency(v) {
			prt = v.AST.Add(time.Duration(p.Start) * time.Millisecond)
		}
		b = append(b, `  <Period id="`...)
		b = append(b, p.ID...)
		b = append(b, '"')
		b = appendDurAttr(b, "start", p.Start)
		b = append(b, ">\n"...)
		for i := range p.Init {
			if p.Init[i] != nil {
				b = appendAdaptationSet(b, p, i, v.Window, r, g, prt)
			}
		}
		b = append(b, "  </Period>\n"...)
	}
	b = append(b, "  "+utcTiming+"\n"...)
	return append(b, "</MPD>\n"...)
}

// utcTiming is the clock the MPD's times refer to: the origin's own.
const utcTiming = `<UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-xsdate:2014" value="` + OriginPlaceholder + `/time"/>`

// lowLatency reports whether the MPD is the low-latency one: parts on and a
// publisher on the stream.
func lowLatency(v *View) bool { return v.LowLatency && v.Live && !v.Ended }

// latencyTarget is the DASH latency target, ms: four parts, the LL-HLS
// PART-HOLD-BACK plus one part for the chunk in flight.
func latencyTarget(v *View) int64 { return 4 * v.PartTarget.Milliseconds() }

// gridded reports whether the low-latency MPD addresses Period p by its
// nominal segment duration (SegmentTemplate@duration and $Number$, the DASH-IF
// low-latency mode without MPD updates) rather than by a SegmentTimeline: p is
// the Period being produced and the segments still to come continue its grid.
//
// A SegmentTimeline lists a segment with its start and duration, which are not
// known before its end: listing the segment being produced meant guessing, and
// a guess later corrected is a listed segment rewritten, which ISO/IEC 23009-1
// and the DASH-IF guidelines forbid. With @duration nothing is listed ahead:
// a player computes from the clock which segment is being produced (its
// availability start is one part after its nominal start,
// availabilityTimeOffset) and fetches it as its chunks arrive. The segmenter
// keeps the cuts within the tolerance the DASH-IF timing model allows around
// the nominal ones (remux.Segmenter.Grid). A Period that has ended (its
// publisher left, a discontinuity or an off-grid cut followed) is listed by a
// SegmentTimeline of the segments it holds, exactly, as is every Period of the
// classic and the static MPD.
func gridded(v *View, p *Period) bool {
	if !lowLatency(v) || v.DiscNext || p.Dur <= 0 || len(v.Window) == 0 {
		return false
	}
	last := v.Window[len(v.Window)-1]
	return last.Period == p && !last.Ends
}

// grid is what appendAdaptationSet writes for a Period addressed by its
// nominal segment duration.
type grid struct {
	ok  bool
	ato int64 // availabilityTimeOffset, ms: the nominal duration minus one part
}

func appendAdaptationSet(b []byte, p *Period, i int, window []*Segment, r Rates, g grid, prt time.Time) []byte {
	in := p.Init[i]
	t := in.Track
	b = append(b, `    <AdaptationSet id="`...)
	b = strconv.AppendInt(b, int64(t.ID), 10)
	if i == Video {
		b = append(b, `" contentType="video" mimeType="video/mp4"`...)
	} else {
		b = append(b, `" contentType="audio" mimeType="audio/mp4"`...)
	}
	b = append(b, ` segmentAlignment="true" startWithSAP="1" codecs="`...)
	b = appendToken(b, t.CodecString)
	b = append(b, '"')
	if i == Video {
		b = appendIntAttr(b, "width", int64(t.Width))
		b = appendIntAttr(b, "height", int64(t.Height))
		if r.FPS > 0 {
			b = append(b, ` frameRate="`...)
			b = appendFrameRate(b, r.FPS)
			b = append(b, '"')
		}
		b = append(b, ">\n"...)
	} else {
		b = appendIntAttr(b, "audioSamplingRate", int64(t.SampleRate))
		b = append(b, ` lang="und">`+"\n"...)
		b = append(b, `      <AudioChannelConfiguration schemeIdUri="urn:mpeg:dash:23003:3:audio_channel_configuration:2011" value="`...)
		b = strconv.AppendInt(b, int64(max(t.Channels, 1)), 10)
		b = append(b, `"/>`+"\n"...)
	}
	if !prt.IsZero() {
		b = append(b, `      <ProducerReferenceTime id="0" type="encoder" inband="true"`...)
		b = appendTimeAttr(b, "wallClockTime", prt)
		b = append(b, ` presentationTime="`...)
		b = strconv.AppendUint(b, Ticks(p.PTO, t.Timescale), 10)
		b = append(b, `">`+"\n        "+utcTiming+"\n      </ProducerReferenceTime>\n"...)
	}
	b = append(b, `      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>`+"\n"...)
	b = append(b, `      <Representation id="`...)
	b = append(b, TrackDir[i][:1]...)
	b = append(b, '"')
	b = appendIntAttr(b, "bandwidth", r.Track[i])
	b = append(b, ">\n"...)
	b = appendSegmentTemplate(b, segTemplate{p: p, i: i, pto: Ticks(p.PTO, t.Timescale), first: p.First, g: g}, window)
	b = append(b, "      </Representation>\n"...)
	return append(b, "    </AdaptationSet>\n"...)
}

// segTemplate is what appendSegmentTemplate writes for one track of a Period:
// the stream's own MPD lists the Period as it is; a ladder's MPD presents it
// from a later instant (pto) and within bounds (keep), under the member's
// path (prefix).
type segTemplate struct {
	p      *Period
	i      int    // Video or Audio
	prefix string // the member's path before the track's, "" for the stream's own MPD
	pto    uint64 // presentationTimeOffset, ticks
	first  uint64 // startNumber when g.ok
	g      grid
	// keep, when set, selects the fragments the timeline lists.
	keep func(*Fragment) bool
}

// appendSegmentTemplate writes the SegmentTemplate of track st.i of Period
// st.p: by its nominal segment duration when st.g.ok, else a SegmentTimeline
// of the window's fragments of the Period.
func appendSegmentTemplate(b []byte, st segTemplate, window []*Segment) []byte {
	p, i := st.p, st.i
	in := p.Init[i]
	t := in.Track
	b = append(b, "        <SegmentTemplate"...)
	b = appendIntAttr(b, "timescale", int64(t.Timescale))
	b = append(b, ` presentationTimeOffset="`...)
	b = strconv.AppendUint(b, st.pto, 10)
	b = append(b, `" initialization="`...)
	b = appendTemplatePath(b, st.prefix)
	b = append(b, in.Path...)
	b = append(b, `" media="`...)
	b = appendTemplatePath(b, st.prefix)
	b = append(b, TrackDir[i]...)
	b = append(b, p.Epoch...)
	b = append(b, `-$Number$.m4s"`...)
	if g := st.g; g.ok {
		b = append(b, ` duration="`...)
		b = strconv.AppendUint(b, Ticks(p.Dur, t.Timescale), 10)
		b = append(b, `" startNumber="`...)
		b = strconv.AppendUint(b, st.first, 10)
		b = append(b, '"')
		if g.ato > 0 {
			b = append(b, ` availabilityTimeOffset="`...)
			b = appendMillis(b, g.ato)
			b = append(b, `" availabilityTimeComplete="false"`...)
		}
		return append(b, "/>\n"...)
	}
	first := true
	var (
		runT, runD, nextN uint64
		runR              int
		runN              uint64
		open              bool
	)
	emit := func() {
		b = append(b, `            <S t="`...)
		b = strconv.AppendUint(b, runT, 10)
		b = append(b, `" d="`...)
		b = strconv.AppendUint(b, runD, 10)
		b = append(b, '"')
		if runR > 0 {
			b = appendIntAttr(b, "r", int64(runR))
		}
		if runN != 0 {
			b = append(b, ` n="`...)
			b = strconv.AppendUint(b, runN, 10)
			b = append(b, '"')
		}
		b = append(b, "/>\n"...)
	}
	for _, seg := range window {
		f := seg.Frag[i]
		if seg.Period != p || f == nil || st.keep != nil && !st.keep(f) {
			continue
		}
		if first {
			first = false
			b = append(b, ` startNumber="`...)
			b = strconv.AppendUint(b, seg.Seq, 10)
			b = append(b, "\">\n          <SegmentTimeline>\n"...)
			runT, runD, runR, runN, nextN, open = f.T, f.D, 0, 0, seg.Seq+1, true
			continue
		}
		if f.D == runD && f.T == runT+uint64(runR+1)*runD && seg.Seq == nextN {
			runR++
			nextN++
			continue
		}
		emit()
		runT, runD, runR, runN = f.T, f.D, 0, 0
		if seg.Seq != nextN {
			runN = seg.Seq // a segment without this track: numbering skips it (S@n, ISO/IEC 23009-1:2022)
		}
		nextN = seg.Seq + 1
	}
	if open {
		emit()
		return append(b, "          </SegmentTimeline>\n        </SegmentTemplate>\n"...)
	}
	return append(b, "/>\n"...)
}

// appendTemplatePath writes a member's path into a SegmentTemplate URL
// attribute: "$" doubled (a template identifier's delimiter) and XML's
// specials escaped. Stream names are checked at publish; this only guards
// the document's syntax.
func appendTemplatePath(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '$':
			b = append(b, "$$"...)
		case '&':
			b = append(b, "&amp;"...)
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '"':
			b = append(b, "&quot;"...)
		default:
			if c >= 0x20 && c != 0x7f {
				b = append(b, c)
			}
		}
	}
	return b
}

func appendIntAttr(b []byte, name string, v int64) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = strconv.AppendInt(b, v, 10)
	return append(b, '"')
}

// appendDurAttr writes an xs:duration of ms, e.g. PT2.000S.
func appendDurAttr(b []byte, name string, ms int64) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="PT`...)
	b = appendMillis(b, ms)
	return append(b, `S"`...)
}

func appendTimeAttr(b []byte, name string, t time.Time) []byte {
	b = append(b, ' ')
	b = append(b, name...)
	b = append(b, `="`...)
	b = t.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, '"')
}

// appendFrameRate writes an integer rate when the measured one is within 0.01 of
// it, else a fraction over 1000.
func appendFrameRate(b []byte, fps float64) []byte {
	if n := int64(fps + 0.5); n > 0 && fps-float64(n) < 0.01 && float64(n)-fps < 0.01 {
		return strconv.AppendInt(b, n, 10)
	}
	b = strconv.AppendInt(b, int64(fps*1000+0.5), 10)
	return append(b, "/1000"...)
}

// appendMPDStart appends the XML declaration and the MPD element's opening up
// to its publishTime, shared by a stream's MPD and a ladder's.
func appendMPDStart(b []byte, dynamic bool, ast, now time.Time) []byte {
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"...)
	b = append(b, `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"`...)
	if dynamic {
		b = append(b, ` type="dynamic"`...)
	} else {
		b = append(b, ` type="static"`...)
	}
	b = appendTimeAttr(b, "availabilityStartTime", ast)
	return appendTimeAttr(b, "publishTime", now)
}

// appendServiceDescription appends the DASH-IF low-latency ServiceDescription
// for v's part target: the latency the service aims at and how far players
// may speed up or slow down to hold it.
func appendServiceDescription(b []byte, v *View) []byte {
	part := v.PartTarget.Milliseconds()
	b = append(b, `  <ServiceDescription id="0">`+"\n"+`    <Latency referenceId="0"`...)
	b = appendIntAttr(b, "target", latencyTarget(v))
	b = appendIntAttr(b, "min", 2*part)
	// max: dash.js seeks back to the target once the latency passes it by
	// (max - target + 500 ms), so a player that joined a segment early or
	// stalled is put back in one seek rather than seconds of catch-up.
	b = appendIntAttr(b, "max", latencyTarget(v)+2*part)
	return append(b, `/>`+"\n"+`    <PlaybackRate min="0.95" max="1.10"/>`+"\n  </ServiceDescription>\n"...)
}
