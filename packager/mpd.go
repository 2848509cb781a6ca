package packager

import (
	"strconv"
	"time"
)

// appendMPDLocked renders the DASH MPD (ISO/IEC 23009-1, DASH-IF live profile
// with CMAF) of the window: one Period per publish session and track set, one
// AdaptationSet and Representation per track, a SegmentTemplate with a
// SegmentTimeline addressing fragments by their media sequence number. While a
// publisher is on it the MPD is dynamic; after unpublish it is static until a
// republish makes it dynamic again.
//
// It is written with appends like the playlists: every value is ours (numbers,
// names, filtered codecs strings), so nothing needs XML escaping, and it renders
// once per change without reflection.
func (s *Stream) appendMPDLocked(b []byte, now time.Time, r rates) []byte {
	var (
		total, maxDur int64
		periods       []*period
	)
	for _, seg := range s.window {
		total += seg.dur
		maxDur = max(maxDur, seg.dur)
		for _, f := range seg.frag {
			if f != nil {
				maxDur = max(maxDur, f.dur)
			}
		}
		if p := seg.period; p != nil && (len(periods) == 0 || periods[len(periods)-1] != p) {
			periods = append(periods, p)
		}
	}
	target := s.target * 1000
	b = append(b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"...)
	b = append(b, `<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011,urn:mpeg:dash:profile:cmaf:2019"`...)
	if s.ended {
		b = append(b, ` type="static"`...)
	} else {
		b = append(b, ` type="dynamic"`...)
	}
	b = appendTimeAttr(b, "availabilityStartTime", s.ast)
	b = appendTimeAttr(b, "publishTime", now)
	if s.ended {
		var end int64
		if n := len(periods); n > 0 {
			p := periods[n-1]
			end = p.start + p.end - p.pto
		}
		b = appendDurAttr(b, "mediaPresentationDuration", end)
	} else if s.lowLatencyLocked() {
		// Low latency: the MPD announces each segment as it starts, so players
		// must learn of a new one within a part or two of its start.
		b = appendDurAttr(b, "minimumUpdatePeriod", min(target, max(2*s.hub.cfg.PartTarget.Milliseconds(), 500)))
		b = appendDurAttr(b, "timeShiftBufferDepth", total)
		b = appendDurAttr(b, "suggestedPresentationDelay", s.latencyTargetLocked())
	} else {
		b = appendDurAttr(b, "minimumUpdatePeriod", target)
		b = appendDurAttr(b, "timeShiftBufferDepth", total)
		b = appendDurAttr(b, "suggestedPresentationDelay", 3*target)
	}
	b = appendDurAttr(b, "minBufferTime", target)
	b = appendDurAttr(b, "maxSegmentDuration", maxDur)
	b = append(b, ">\n"...)
	if s.lowLatencyLocked() {
		// DASH-IF low-latency: the latency the service aims at and how far
		// players may speed up or slow down to hold it.
		part := s.hub.cfg.PartTarget.Milliseconds()
		b = append(b, `  <ServiceDescription id="0">`+"\n"+`    <Latency referenceId="0"`...)
		b = appendIntAttr(b, "target", s.latencyTargetLocked())
		b = appendIntAttr(b, "min", 2*part)
		// max: dash.js seeks back to the target once the latency passes it by
		// (max - target + 500 ms), so a player that joined a segment early or
		// stalled is put back in one seek rather than seconds of catch-up.
		b = appendIntAttr(b, "max", s.latencyTargetLocked()+2*part)
		b = append(b, `/>`+"\n"+`    <PlaybackRate min="0.95" max="1.10"/>`+"\n  </ServiceDescription>\n"...)
	}
	for _, p := range periods {
		b = append(b, `  <Period id="`...)
		b = append(b, p.id...)
		b = append(b, '"')
		b = appendDurAttr(b, "start", p.start)
		b = append(b, ">\n"...)
		for i := range p.init {
			if p.init[i] != nil {
				b = appendAdaptationSet(b, p, i, s.window, r, s.producingLocked(p, i))
			}
		}
		b = append(b, "  </Period>\n"...)
	}
	b = append(b, `  <UTCTiming schemeIdUri="urn:mpeg:dash:utc:http-xsdate:2014" value="`+OriginPlaceholder+`/time"/>`+"\n"...)
	return append(b, "</MPD>\n"...)
}

// producing is the SegmentTimeline entry of the segment being produced, listed
// ahead of its end so that low-latency players fetch it as its chunks arrive.
type producing struct {
	ok   bool
	msn  uint64
	t, d uint64 // start and expected duration, track timescale
	ato  int64  // availabilityTimeOffset, ms: segment duration minus one part
}

// announced is how many segments the low-latency MPD lists ahead of their end:
// the one being produced and the one after it. A player learns of a segment
// only from an MPD that lists it, and dash.js refetches the MPD at most once a
// second whatever minimumUpdatePeriod says; listing only the segment being
// produced left it up to a second late for the next one, longer than its
// buffer at the target latency (a stall at segment boundaries). Listed ahead,
// the next segment is requested when its first chunk is due (its availability
// start is its start plus one part), and the request waits for it
// (httpserve's serveUpcoming). With a steady GOP the expected times are exact;
// otherwise the next MPD corrects them, as for the segment being produced.
const announced = 2

// lowLatencyLocked reports whether the MPD is the low-latency one: parts on and
// a publisher on the stream.
func (s *Stream) lowLatencyLocked() bool {
	return !s.hub.cfg.DisableLowLatency && s.owner != nil && !s.ended
}

// latencyTargetLocked is the DASH latency target, ms: four parts, the LL-HLS
// PART-HOLD-BACK plus one part for the chunk in flight.
func (s *Stream) latencyTargetLocked() int64 { return 4 * s.hub.cfg.PartTarget.Milliseconds() }

// producingLocked describes the segment being produced for track i of Period p:
// it starts where the window's last fragment ends and is expected to last as
// long as that one did. Its final entry may differ by what the next keyframe
// decides; the MPD that lists it complete says so.
func (s *Stream) producingLocked(p *period, i int) producing {
	var pr producing
	if !s.lowLatencyLocked() || s.discNext || len(s.window) == 0 ||
		s.open != nil && (s.open.disc || s.open.init != p.init) {
		return pr
	}
	last := s.window[len(s.window)-1]
	f := last.frag[i]
	if last.period != p || f == nil || last.seq+1 != s.nextSeq {
		return pr
	}
	pr.ok, pr.msn, pr.t, pr.d = true, s.nextSeq, f.t+f.d, f.d
	// DASH-IF low latency: a segment is available once its first chunk is,
	// its expected duration minus one part after it starts.
	if ts := uint64(p.init[i].track.Timescale); ts > 0 {
		pr.ato = max(int64(f.d*1000/ts)-s.hub.cfg.PartTarget.Milliseconds(), 0)
	}
	return pr
}

func appendAdaptationSet(b []byte, p *period, i int, window []*segment, r rates, pr producing) []byte {
	in := p.init[i]
	t := in.track
	b = append(b, `    <AdaptationSet id="`...)
	b = strconv.AppendInt(b, int64(t.ID), 10)
	if i == vIdx {
		b = append(b, `" contentType="video" mimeType="video/mp4"`...)
	} else {
		b = append(b, `" contentType="audio" mimeType="audio/mp4"`...)
	}
	b = append(b, ` segmentAlignment="true" startWithSAP="1" codecs="`...)
	b = appendToken(b, t.CodecString)
	b = append(b, '"')
	if i == vIdx {
		b = appendIntAttr(b, "width", int64(t.Width))
		b = appendIntAttr(b, "height", int64(t.Height))
		if r.fps > 0 {
			b = append(b, ` frameRate="`...)
			b = appendFrameRate(b, r.fps)
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
	b = append(b, `      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="main"/>`+"\n"...)
	b = append(b, `      <Representation id="`...)
	b = append(b, trackDir[i][:1]...)
	b = append(b, '"')
	b = appendIntAttr(b, "bandwidth", r.track[i])
	b = append(b, ">\n        <SegmentTemplate"...)
	b = appendIntAttr(b, "timescale", int64(t.Timescale))
	b = append(b, ` presentationTimeOffset="`...)
	b = strconv.AppendUint(b, toTicks(p.pto, t.Timescale), 10)
	b = append(b, `" initialization="`...)
	b = append(b, in.path...)
	b = append(b, `" media="`...)
	b = append(b, trackDir[i]...)
	b = append(b, p.epoch...)
	b = append(b, `-$Number$.m4s"`...)
	if pr.ato > 0 && pr.ok {
		b = append(b, ` availabilityTimeOffset="`...)
		b = appendMillis(b, pr.ato)
		b = append(b, `" availabilityTimeComplete="false"`...)
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
		f := seg.frag[i]
		if seg.period != p || f == nil {
			continue
		}
		if first {
			first = false
			b = append(b, ` startNumber="`...)
			b = strconv.AppendUint(b, seg.seq, 10)
			b = append(b, "\">\n          <SegmentTimeline>\n"...)
			runT, runD, runR, runN, nextN, open = f.t, f.d, 0, 0, seg.seq+1, true
			continue
		}
		if f.d == runD && f.t == runT+uint64(runR+1)*runD && seg.seq == nextN {
			runR++
			nextN++
			continue
		}
		emit()
		runT, runD, runR, runN = f.t, f.d, 0, 0
		if seg.seq != nextN {
			runN = seg.seq // a segment without this track: numbering skips it (S@n, ISO/IEC 23009-1:2022)
		}
		nextN = seg.seq + 1
	}
	// Only with an availabilityTimeOffset (segments longer than a part): without
	// it a player would take the announced segments for finished ones.
	for k := uint64(0); open && pr.ok && pr.ato > 0 && k < announced; k++ {
		msn, t := pr.msn+k, pr.t+k*pr.d
		if pr.d == runD && t == runT+uint64(runR+1)*runD && msn == nextN {
			runR++
		} else {
			emit()
			runT, runD, runR, runN = t, pr.d, 0, 0
			if msn != nextN {
				runN = msn
			}
		}
		nextN = msn + 1
	}
	if open {
		emit()
		b = append(b, "          </SegmentTimeline>\n        </SegmentTemplate>\n"...)
	} else {
		b = append(b, "/>\n"...)
	}
	b = append(b, "      </Representation>\n"...)
	return append(b, "    </AdaptationSet>\n"...)
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
