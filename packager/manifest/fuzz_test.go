package manifest_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
	"github.com/rtmpgate/rtmpgate/remux"
)

// reader hands out fuzz bytes, zeros once they run out.
type reader struct{ b []byte }

func (r *reader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

// n is a value in [lo, hi].
func (r *reader) n(lo, hi int) int { return lo + int(r.byte())%(hi-lo+1) }

func (r *reader) bit() bool { return r.byte()&1 == 1 }

var (
	video = &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000, CodecString: "avc1.64001f", Width: 1280, Height: 720}
	audio = &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 48000, CodecString: "mp4a.40.2", SampleRate: 48000, Channels: 2}
)

// buildView makes a View as a stream could publish it, its shape taken from
// data: the configuration, then per segment a discontinuity, a track set
// change, a Period change, durations, fragments and parts, then the open
// segment. What the packager guarantees holds: sequence numbers run on by one,
// a discontinuity or a new track set opens a Period, times only go forward.
func buildView(data []byte) *manifest.View {
	r := &reader{data}
	epoch := "e" + strconv.Itoa(r.n(0, 99))
	v := &manifest.View{
		Epoch:           epoch,
		Target:          int64(r.n(1, 6)),
		Live:            r.bit(),
		DiscNext:        r.bit(),
		LowLatency:      r.bit(),
		PartTarget:      time.Duration(r.n(1, 10)) * 100 * time.Millisecond,
		SegmentDuration: 2 * time.Second,
		DiscSeq:         uint64(r.n(0, 3)),
		AST:             time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC),
	}
	v.Ended = !v.Live && r.bit()
	v.PublishTime = v.AST.Add(time.Duration(r.n(0, 255)) * time.Second)
	v.Rates = manifest.Rates{Peak: int64(r.n(1, 255)) * 10000, Avg: int64(r.n(1, 255)) * 1000, Track: [2]int64{1, 1}, FPS: float64(r.n(0, 60)), Captions: r.bit()}
	seq := uint64(r.n(0, 50))
	gen := 0
	newInits := func(set int) [2]*manifest.Init {
		gen++
		var in [2]*manifest.Init
		for i, t := range [2]*remux.Track{video, audio} {
			if set&(1<<i) != 0 {
				name := "init-" + epoch + "-" + strconv.Itoa(gen) + ".mp4"
				in[i] = &manifest.Init{Name: name, Path: manifest.TrackDir[i] + name, Track: t}
			}
		}
		return in
	}
	inits := newInits(r.n(0, 3)) // 0: a track set without CMAF (TS only)
	var (
		period  *manifest.Period
		dts     int64
		periodN int
		wall    int64 // ms from AST
	)
	for k, n := 0, r.n(0, 10); k < n; k++ {
		op := r.byte()
		seg := &manifest.Segment{Seq: seq, Name: epoch + "-" + strconv.FormatUint(seq, 10) + ".ts", DTS: dts}
		seq++
		seg.Disc = op&1 != 0 && k > 0
		if op&2 != 0 {
			inits = newInits(r.n(0, 3))
		}
		seg.Dur = int64(r.n(1, 255)) * 20
		seg.PDT = v.AST.Add(time.Duration(wall) * time.Millisecond)
		seg.Init = inits
		for i, in := range inits {
			if in == nil || op&(16<<i) != 0 {
				continue // no CMAF for the track, or no sample of it in the segment
			}
			ts := in.Track.Timescale
			f := &manifest.Fragment{Name: epoch + "-" + strconv.FormatUint(seg.Seq, 10) + ".m4s", Dur: seg.Dur, EPT: dts, Key: op&64 == 0 || i == manifest.Audio}
			f.T, f.D = manifest.Ticks(dts, ts), manifest.Ticks(dts+seg.Dur, ts)-manifest.Ticks(dts, ts)
			seg.Frag[i] = f
			if v.LowLatency {
				seg.Parts[i] = parts(r, seg.Dur)
			}
		}
		if seg.HasCMAF() {
			if period == nil || seg.Disc || op&4 != 0 || period.Init != seg.Init {
				start := wall
				if period != nil {
					start = max(start, period.Start+period.End-period.PTO)
				}
				period = &manifest.Period{ID: "p" + strconv.Itoa(periodN), Start: start, PTO: dts, End: dts, Init: seg.Init, Epoch: epoch, First: seg.Seq, Dur: seg.Dur}
				periodN++
			}
			seg.Period = period
			period.End = max(period.End, dts+seg.Dur)
		}
		seg.Ends = op&8 != 0
		v.Window = append(v.Window, seg)
		dts += seg.Dur
		wall += seg.Dur + int64(r.n(0, 3))*100
	}
	v.NextMSN = seq
	if v.Live && v.LowLatency && r.bit() {
		o := &manifest.Open{Disc: v.DiscNext || r.bit(), Init: inits}
		for i, in := range inits {
			if in != nil {
				o.Parts[i] = parts(r, int64(r.n(0, 255))*10)
			}
		}
		v.Open = o
	}
	return v
}

// parts cuts dur ms into parts of at most 1 s.
func parts(r *reader, dur int64) []*manifest.Part {
	var ps []*manifest.Part
	for dur > 0 {
		d := min(int64(r.n(1, 100))*10, dur)
		ps = append(ps, &manifest.Part{Dur: d, Indep: r.bit()})
		dur -= d
	}
	return ps
}

// FuzzManifest renders every document of arbitrary valid Views and holds them
// to what a player relies on: media playlists that start with the header, list
// every segment once with media sequence numbers running on by one from
// EXT-X-MEDIA-SEQUENCE, parts numbered from 0 within each segment, a preload
// hint naming the next part; a multivariant playlist whose variant has its
// URI; an MPD that is well-formed XML with Periods in order. A render must
// also not depend on anything but the View (rendering twice gives the same
// bytes) and must append to dst without touching what it holds.
func FuzzManifest(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{7, 3, 1, 1, 1, 2, 1, 0, 10, 3, 3, 5, 0, 100, 4, 1, 50, 0, 2, 1, 3, 9, 60, 1, 1, 1})
	f.Add([]byte{1, 4, 0, 0, 0, 5, 0, 0, 20, 20, 20, 1, 3, 8, 2, 1, 200, 1, 5, 1, 17, 80, 2, 34, 80, 72, 1})
	f.Add([]byte{9, 2, 1, 0, 1, 2, 2, 9, 90, 9, 9, 1, 10, 2, 6, 0, 30, 0, 3, 0, 100, 1, 4, 1, 100, 1, 1, 1, 40, 1})
	f.Fuzz(func(t *testing.T, data []byte) {
		v := buildView(data)
		prefix := []byte("keep")
		for _, rendition := range []int{manifest.TS, manifest.Video, manifest.Audio} {
			listed := rendition == manifest.TS || manifest.Listed(v, false)[rendition]
			if !listed {
				continue
			}
			pl := manifest.MediaPlaylist(append([]byte(nil), prefix...), v, rendition)
			if !bytes.HasPrefix(pl, prefix) {
				t.Fatal("dst's bytes were overwritten")
			}
			pl = pl[len(prefix):]
			if again := manifest.MediaPlaylist(nil, v, rendition); !bytes.Equal(pl, again) {
				t.Fatalf("two renders of one view differ:\n%s\n%s", pl, again)
			}
			checkMedia(t, v, rendition, string(pl), false)
			delta := manifest.DeltaPlaylist(nil, v, rendition)
			if rendition != manifest.TS && v.LowLatency && manifest.Skippable(v) > 0 {
				checkMedia(t, v, rendition, string(delta), true)
			} else if len(delta) > 0 {
				t.Fatalf("a delta update of a playlist that has none:\n%s", delta)
			}
		}
		if mv := manifest.Multivariant(nil, v); len(mv) > 0 {
			checkMultivariant(t, string(mv))
		}
		checkMPD(t, v, manifest.MPD(nil, v))
	})
}

func checkMedia(t *testing.T, v *manifest.View, rendition int, pl string, delta bool) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(pl, "\n"), "\n")
	if lines[0] != "#EXTM3U" {
		t.Fatalf("no #EXTM3U first:\n%s", pl)
	}
	var (
		msn, skipped   int64 = -1, 0
		nextURI        int64 = -1
		partMSN        int64 = -1
		partN          int
		uris, hints    int
		ended, inf     bool
		ext            = ".m4s"
		lastPartOfNext = -1
	)
	if rendition == manifest.TS {
		ext = ".ts"
	}
	for _, line := range lines[1:] {
		switch {
		case strings.HasPrefix(line, "#EXT-X-MEDIA-SEQUENCE:"):
			n, err := strconv.ParseInt(line[len("#EXT-X-MEDIA-SEQUENCE:"):], 10, 64)
			if err != nil || msn >= 0 {
				t.Fatalf("bad or repeated %q:\n%s", line, pl)
			}
			msn, nextURI = n, n
		case strings.HasPrefix(line, "#EXT-X-SKIP:SKIPPED-SEGMENTS="):
			n, err := strconv.ParseInt(line[len("#EXT-X-SKIP:SKIPPED-SEGMENTS="):], 10, 64)
			if err != nil || !delta || n <= 0 {
				t.Fatalf("bad %q (delta %v):\n%s", line, delta, pl)
			}
			skipped, nextURI = n, nextURI+n
		case strings.HasPrefix(line, "#EXTINF:"):
			if _, err := strconv.ParseFloat(strings.TrimSuffix(line[len("#EXTINF:"):], ","), 64); err != nil || inf {
				t.Fatalf("bad EXTINF %q:\n%s", line, pl)
			}
			inf = true
		case strings.HasPrefix(line, "#EXT-X-PART:"), strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:"):
			m, n := partURI(t, v.Epoch, line)
			if m < partMSN || m < nextURI {
				t.Fatalf("part %d.%d after part of %d, segment %d next:\n%s", m, n, partMSN, nextURI, pl)
			}
			if m != partMSN {
				partMSN, partN = m, 0
			}
			if n != partN {
				t.Fatalf("part %d.%d where %d.%d is due:\n%s", m, n, m, partN, pl)
			}
			partN++
			if strings.HasPrefix(line, "#EXT-X-PRELOAD-HINT:") {
				hints++
				if uint64(m) != v.NextMSN {
					t.Fatalf("preload hint for segment %d, the next is %d:\n%s", m, v.NextMSN, pl)
				}
			} else if uint64(m) == v.NextMSN {
				lastPartOfNext = n
			}
		case line == "#EXT-X-ENDLIST":
			ended = true
		case strings.HasPrefix(line, "#"):
		default:
			if !inf || ended {
				t.Fatalf("URI %q without EXTINF or after ENDLIST:\n%s", line, pl)
			}
			inf = false
			want := v.Epoch + "-" + strconv.FormatInt(nextURI, 10) + ext
			if line != want {
				t.Fatalf("URI %q where %q is due:\n%s", line, want, pl)
			}
			nextURI++
			uris++
		}
	}
	if int64(uris)+skipped != int64(len(v.Window)) {
		t.Fatalf("%d URIs and %d skipped for a window of %d:\n%s", uris, skipped, len(v.Window), pl)
	}
	if len(v.Window) > 0 && msn != int64(v.Window[0].Seq) {
		t.Fatalf("EXT-X-MEDIA-SEQUENCE %d, window starts at %d:\n%s", msn, v.Window[0].Seq, pl)
	}
	if ended != v.Ended {
		t.Fatalf("ENDLIST %v for ended %v:\n%s", ended, v.Ended, pl)
	}
	if hints > 1 || hints == 1 && (rendition == manifest.TS || !v.LowLatency || !v.Live || v.Ended) {
		t.Fatalf("%d preload hints:\n%s", hints, pl)
	}
	if v.Open != nil && rendition != manifest.TS && v.LowLatency && !v.Ended && lastPartOfNext != len(v.Open.Parts[rendition])-1 {
		t.Fatalf("open segment lists parts to %d of %d:\n%s", lastPartOfNext, len(v.Open.Parts[rendition]), pl)
	}
}

// partURI parses the URI of an EXT-X-PART or EXT-X-PRELOAD-HINT line.
func partURI(t *testing.T, epoch, line string) (msn int64, n int) {
	t.Helper()
	i := strings.Index(line, `URI="`)
	if i < 0 {
		t.Fatalf("no URI in %q", line)
	}
	uri := line[i+len(`URI="`):]
	uri = uri[:strings.IndexByte(uri, '"')]
	rest, ok := strings.CutPrefix(uri, epoch+"-")
	rest, ok2 := strings.CutSuffix(rest, ".m4s")
	m, p, ok3 := strings.Cut(rest, ".")
	msn, err := strconv.ParseInt(m, 10, 64)
	pn, err2 := strconv.Atoi(p)
	if !ok || !ok2 || !ok3 || err != nil || err2 != nil {
		t.Fatalf("bad part URI in %q", line)
	}
	return msn, pn
}

func checkMultivariant(t *testing.T, pl string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(pl, "\n"), "\n")
	if lines[0] != "#EXTM3U" || len(lines) < 3 {
		t.Fatalf("bad multivariant playlist:\n%s", pl)
	}
	inf, uri := lines[len(lines)-2], lines[len(lines)-1]
	if !strings.HasPrefix(inf, "#EXT-X-STREAM-INF:BANDWIDTH=") || (uri != manifest.VideoPlaylistPath && uri != manifest.AudioPlaylistPath) {
		t.Fatalf("no variant with its URI last:\n%s", pl)
	}
}

func checkMPD(t *testing.T, v *manifest.View, doc []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	var (
		periods []string
		lastT   int64 = -1
		depth   int
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("MPD not well-formed XML: %v\n%s", err, doc)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			depth++
			switch e.Name.Local {
			case "Period":
				periods = append(periods, attr(e, "id"))
			case "SegmentTimeline":
				lastT = -1
			case "S":
				tt, err := strconv.ParseInt(attr(e, "t"), 10, 64)
				if err != nil || tt <= lastT {
					t.Fatalf("S@t %q after %d:\n%s", attr(e, "t"), lastT, doc)
				}
				lastT = tt
			}
		case xml.EndElement:
			depth--
		}
	}
	if depth != 0 {
		t.Fatalf("MPD elements left open:\n%s", doc)
	}
	for i := 1; i < len(periods); i++ {
		a, _ := strconv.Atoi(strings.TrimPrefix(periods[i-1], "p"))
		b, _ := strconv.Atoi(strings.TrimPrefix(periods[i], "p"))
		if b <= a {
			t.Fatalf("Periods %v out of order:\n%s", periods, doc)
		}
	}
	typ := "dynamic"
	if v.Ended {
		typ = "static"
	}
	if !bytes.Contains(doc, []byte(`type="`+typ+`"`)) {
		t.Fatalf("MPD not %s:\n%s", typ, doc)
	}
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}
