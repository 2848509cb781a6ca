package packager_test

import (
	"bytes"
	"encoding/binary"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/packager"
)

// frag is what the tests read back from a stored fragment's boxes.
type frag struct {
	seq       uint32   // mfhd sequence_number
	trackID   uint32   // tfhd
	tfdt      uint64   // baseMediaDecodeTime
	durations []uint32 // per sample
	sizes     []uint32
	firstSync bool  // the first sample is a sync sample
	firstCTO  int32 // the first sample's composition offset (trun version 1, signed)
	mdat      int   // mdat payload bytes
}

func (f frag) duration() uint64 {
	var d uint64
	for _, x := range f.durations {
		d += uint64(x)
	}
	return d
}

// parseFragment is a tiny box reader for styp + moof(mfhd, traf(tfhd, tfdt,
// trun)) + mdat, independent of remux/cmaf's own writer.
func parseFragment(b []byte) (frag, error) {
	var (
		f          frag
		defFlags   uint32
		haveDef    bool
		firstFlags *uint32
	)
	var walk func(b []byte, depth int) error
	walk = func(b []byte, depth int) error {
		boxes, err := testkit.Boxes(b)
		if err != nil {
			return err
		}
		for _, box := range boxes {
			typ, body := box.Type, box.Body
			full := func() (ver byte, flags uint32, rest []byte, err error) {
				if len(body) < 4 {
					return 0, 0, nil, fmt.Errorf("%s: short", typ)
				}
				return body[0], binary.BigEndian.Uint32(body) & 0xffffff, body[4:], nil
			}
			switch typ {
			case "moof", "traf":
				if err := walk(body, depth+1); err != nil {
					return err
				}
			case "mfhd":
				_, _, r, err := full()
				if err != nil || len(r) < 4 {
					return fmt.Errorf("mfhd: short")
				}
				if f.trackID == 0 {
					f.seq = binary.BigEndian.Uint32(r) // a segment of parts has a moof per part: keep the first
				}
			case "tfhd":
				_, fl, r, err := full()
				if err != nil || len(r) < 4 {
					return fmt.Errorf("tfhd: short")
				}
				if f.trackID != 0 {
					break // a later part's traf: tfhd defaults as the first's
				}
				f.trackID = binary.BigEndian.Uint32(r)
				r = r[4:]
				for _, bit := range []uint32{0x1, 0x2, 0x8, 0x10} { // base offset is 8 bytes
					if fl&bit != 0 {
						n := 4
						if bit == 0x1 {
							n = 8
						}
						r = r[n:]
					}
				}
				if fl&0x20 != 0 {
					defFlags, haveDef = binary.BigEndian.Uint32(r), true
				}
			case "tfdt":
				ver, _, r, err := full()
				if err != nil {
					return err
				}
				if f.durations != nil {
					break // a later part: its tfdt continues the first's
				}
				if ver == 1 {
					f.tfdt = binary.BigEndian.Uint64(r)
				} else {
					f.tfdt = uint64(binary.BigEndian.Uint32(r))
				}
			case "trun":
				_, fl, r, err := full()
				if err != nil || len(r) < 4 {
					return fmt.Errorf("trun: short")
				}
				n := int(binary.BigEndian.Uint32(r))
				r = r[4:]
				if fl&0x1 != 0 {
					r = r[4:]
				}
				later := f.durations != nil
				if fl&0x4 != 0 {
					if !later {
						v := binary.BigEndian.Uint32(r)
						firstFlags = &v
					}
					r = r[4:]
				}
				for i := 0; i < n; i++ {
					if fl&0x100 != 0 {
						f.durations = append(f.durations, binary.BigEndian.Uint32(r))
						r = r[4:]
					}
					if fl&0x200 != 0 {
						f.sizes = append(f.sizes, binary.BigEndian.Uint32(r))
						r = r[4:]
					}
					if fl&0x400 != 0 {
						if i == 0 && !later {
							v := binary.BigEndian.Uint32(r)
							firstFlags = &v
						}
						r = r[4:]
					}
					if fl&0x800 != 0 {
						if i == 0 && !later {
							f.firstCTO = int32(binary.BigEndian.Uint32(r))
						}
						r = r[4:]
					}
				}
			case "mdat":
				f.mdat += len(body)
			}
		}
		return nil
	}
	if err := walk(b, 0); err != nil {
		return f, err
	}
	flags := defFlags
	if firstFlags != nil {
		flags = *firstFlags
	} else if !haveDef {
		return f, fmt.Errorf("no sample flags")
	}
	f.firstSync = flags&0x10000 == 0
	return f, nil
}

// mpd is the part of an MPD the tests check.
type mpd struct {
	XMLName                   xml.Name `xml:"urn:mpeg:dash:schema:mpd:2011 MPD"`
	Profiles                  string   `xml:"profiles,attr"`
	Type                      string   `xml:"type,attr"`
	AvailabilityStartTime     string   `xml:"availabilityStartTime,attr"`
	PublishTime               string   `xml:"publishTime,attr"`
	MinimumUpdatePeriod       string   `xml:"minimumUpdatePeriod,attr"`
	TimeShiftBufferDepth      string   `xml:"timeShiftBufferDepth,attr"`
	MediaPresentationDuration string   `xml:"mediaPresentationDuration,attr"`
	MinBufferTime             string   `xml:"minBufferTime,attr"`
	MaxSegmentDuration        string   `xml:"maxSegmentDuration,attr"`
	Periods                   []struct {
		ID             string `xml:"id,attr"`
		Start          string `xml:"start,attr"`
		AdaptationSets []struct {
			ID                string `xml:"id,attr"`
			ContentType       string `xml:"contentType,attr"`
			MimeType          string `xml:"mimeType,attr"`
			Codecs            string `xml:"codecs,attr"`
			SegmentAlignment  string `xml:"segmentAlignment,attr"`
			StartWithSAP      string `xml:"startWithSAP,attr"`
			Width             int    `xml:"width,attr"`
			Height            int    `xml:"height,attr"`
			AudioSamplingRate int    `xml:"audioSamplingRate,attr"`
			Representations   []struct {
				ID        string `xml:"id,attr"`
				Bandwidth int64  `xml:"bandwidth,attr"`
				Template  struct {
					Timescale      uint32 `xml:"timescale,attr"`
					PTO            uint64 `xml:"presentationTimeOffset,attr"`
					Initialization string `xml:"initialization,attr"`
					Media          string `xml:"media,attr"`
					StartNumber    uint64 `xml:"startNumber,attr"`
					Duration       uint64 `xml:"duration,attr"`
					ATO            string `xml:"availabilityTimeOffset,attr"`
					ATC            string `xml:"availabilityTimeComplete,attr"`
					S              []struct {
						T uint64  `xml:"t,attr"`
						D uint64  `xml:"d,attr"`
						R int     `xml:"r,attr"`
						N *uint64 `xml:"n,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
	UTCTiming struct {
		Scheme string `xml:"schemeIdUri,attr"`
		Value  string `xml:"value,attr"`
	} `xml:"UTCTiming"`
}

func parseMPD(t *testing.T, st *packager.Stream) mpd {
	t.Helper()
	obj, ok := st.Object(packager.MPDPath)
	if !ok {
		t.Fatal("no MPD")
	}
	if obj.ContentType != packager.ContentTypeMPD || obj.Immutable {
		t.Fatalf("MPD object: %q immutable=%v", obj.ContentType, obj.Immutable)
	}
	var m mpd
	if err := xml.Unmarshal(obj.Data, &m); err != nil {
		t.Fatalf("MPD not well-formed: %v\n%s", err, obj.Data)
	}
	return m
}

// timelineEntry is one expanded SegmentTimeline segment.
type timelineEntry struct {
	path    string // Object path of the fragment
	n       uint64 // $Number$
	t, d    uint64
	nominal bool // from SegmentTemplate@duration: t and d are the nominal ones
}

// expandTimeline lists the segments of one track over all periods. A Period
// addressed by SegmentTemplate@duration (the low-latency MPD's live Period)
// lists, of the numbers from its startNumber on, those st serves finished.
func expandTimeline(t *testing.T, st *packager.Stream, m mpd, contentType string) (out []timelineEntry, timescale uint32) {
	t.Helper()
	for _, p := range m.Periods {
		for _, as := range p.AdaptationSets {
			if as.ContentType != contentType {
				continue
			}
			if as.SegmentAlignment != "true" || as.StartWithSAP != "1" || len(as.Representations) != 1 {
				t.Fatalf("adaptation set %+v", as)
			}
			tpl := as.Representations[0].Template
			timescale = tpl.Timescale
			n := tpl.StartNumber
			if tpl.Duration > 0 {
				if len(tpl.S) > 0 || tpl.ATC != "false" {
					t.Fatalf("SegmentTemplate@duration with a timeline or without availabilityTimeComplete=false: %+v", tpl)
				}
				for _, seg := range snapshotPlaylist(t, st).segs {
					msn := msnOf(t, seg.name)
					path := strings.ReplaceAll(tpl.Media, "$Number$", strconv.FormatUint(msn, 10))
					if _, ok := st.Object(path); !ok || msn < n {
						continue
					}
					k := msn - n
					out = append(out, timelineEntry{path: path, n: msn, t: tpl.PTO + k*tpl.Duration, d: tpl.Duration, nominal: true})
				}
				continue
			}
			for _, s := range tpl.S {
				if s.N != nil {
					n = *s.N
				}
				for r := 0; r <= s.R; r++ {
					out = append(out, timelineEntry{
						path: strings.ReplaceAll(tpl.Media, "$Number$", strconv.FormatUint(n, 10)),
						n:    n,
						t:    s.T + uint64(r)*s.D,
						d:    s.D,
					})
					n++
				}
			}
		}
	}
	return out, timescale
}

// fmp4Playlist parses a v/ or a/ media playlist: segment names and EXT-X-MAP URIs.
type fmp4Playlist struct {
	names []string
	durs  []int64 // ms
	maps  []string
	gaps  int
	gapAt []bool
	ended bool

	// LL-HLS (version 9)
	ll        bool
	partsOf   [][]llPart // per listed segment: its parts, nil when not listed
	openParts []llPart   // after the last segment: the segment being produced
	hint      string     // EXT-X-PRELOAD-HINT URI
	reports   []string   // EXT-X-RENDITION-REPORT attributes
	skipped   int        // EXT-X-SKIP:SKIPPED-SEGMENTS
}

type llPart struct {
	uri   string
	dur   int64 // ms
	indep bool
}

func parseFMP4Playlist(t *testing.T, b []byte) fmp4Playlist {
	t.Helper()
	var p fmp4Playlist
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 3 || lines[0] != "#EXTM3U" || (lines[1] != "#EXT-X-VERSION:6" && lines[1] != "#EXT-X-VERSION:9") {
		t.Fatalf("bad fMP4 playlist header:\n%s", b)
	}
	p.ll = lines[1] == "#EXT-X-VERSION:9"
	var parts []llPart
	// EXT-X-INDEPENDENT-SEGMENTS depends on the keyframes: TestIndependentSegmentsTag.
	var dur int64 = -1
	gap := false
	for _, l := range lines {
		tag, val, _ := strings.Cut(l, ":")
		switch {
		case tag == "#EXT-X-MAP":
			if len(p.names) == 0 && len(p.maps) > 0 {
				t.Fatalf("two EXT-X-MAP before the first segment")
			}
			p.maps = append(p.maps, strings.TrimSuffix(strings.TrimPrefix(val, `URI="`), `"`))
		case tag == "#EXT-X-GAP":
			p.gaps++
			gap = true
		case tag == "#EXTINF":
			sec, frac, _ := strings.Cut(strings.TrimSuffix(val, ","), ".")
			s, err1 := strconv.ParseInt(sec, 10, 64)
			f, err2 := strconv.ParseInt(frac, 10, 64)
			if err1 != nil || err2 != nil || len(frac) != 3 {
				t.Fatalf("EXTINF %q", val)
			}
			dur = s*1000 + f
		case tag == "#EXT-X-ENDLIST":
			p.ended = true
		case tag == "#EXT-X-PART":
			var pt llPart
			for _, kv := range strings.Split(val, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "DURATION":
					sec, frac, _ := strings.Cut(v, ".")
					s, _ := strconv.ParseInt(sec, 10, 64)
					f, _ := strconv.ParseInt(frac, 10, 64)
					pt.dur = s*1000 + f
				case "URI":
					pt.uri = strings.Trim(v, `"`)
				case "INDEPENDENT":
					pt.indep = v == "YES"
				}
			}
			parts = append(parts, pt)
		case tag == "#EXT-X-PRELOAD-HINT":
			_, uri, _ := strings.Cut(val, "URI=")
			p.hint = strings.Trim(uri, `"`)
		case tag == "#EXT-X-RENDITION-REPORT":
			p.reports = append(p.reports, val)
		case tag == "#EXT-X-SKIP":
			n, err := strconv.Atoi(strings.TrimPrefix(val, "SKIPPED-SEGMENTS="))
			if err != nil {
				t.Fatalf("EXT-X-SKIP %q", val)
			}
			p.skipped = n
		case l != "" && !strings.HasPrefix(l, "#"):
			p.partsOf = append(p.partsOf, parts)
			parts = nil
			if len(p.maps) == 0 && !gap {
				t.Fatalf("segment %q before any EXT-X-MAP", l)
			}
			p.gapAt = append(p.gapAt, gap)
			gap = false
			if dur < 0 {
				t.Fatalf("segment %q without EXTINF", l)
			}
			p.names = append(p.names, l)
			p.durs = append(p.durs, dur)
			dur = -1
		}
	}
	p.openParts = parts
	return p
}

// msnOf is the media sequence number in a segment name "<epoch>-<msn>.<ext>".
func msnOf(t *testing.T, name string) uint64 {
	t.Helper()
	name = name[strings.LastIndexByte(name, '/')+1:]
	_, rest, ok := strings.Cut(name, "-")
	rest, _, _ = strings.Cut(rest, ".")
	n, err := strconv.ParseUint(rest, 10, 64)
	if !ok || err != nil {
		t.Fatalf("segment name %q", name)
	}
	return n
}

// checkCMAFObjects checks what must hold for any input: the fMP4 playlists list
// the TS playlist's sequence numbers, the MPD is well-formed and lists a subset of
// them in order, no SegmentTimeline entry overlaps its predecessor, and every
// listed fragment and init segment is served.
func checkCMAFObjects(t *testing.T, st *packager.Stream, tsMSN []uint64) {
	t.Helper()
	for _, path := range []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath} {
		obj, ok := st.Object(path)
		if !ok {
			continue
		}
		p := parseFMP4Playlist(t, obj.Data)
		if len(p.names) != len(tsMSN) {
			t.Fatalf("%s lists %d segments, TS %d", path, len(p.names), len(tsMSN))
		}
		for i, n := range p.names {
			if msnOf(t, n) != tsMSN[i] {
				t.Fatalf("%s: segment %d is %s, TS msn %d", path, i, n, tsMSN[i])
			}
			if _, ok := st.Object(path[:2] + n); !ok && !p.gapAt[i] {
				t.Fatalf("%s: %s not served", path, n)
			}
		}
		for _, m := range p.maps {
			if _, ok := st.Object(path[:2] + m); !ok {
				t.Fatalf("%s: init %s not served", path, m)
			}
		}
		checkParts(t, st, path, p)
	}
	if _, ok := st.Object(packager.MPDPath); !ok {
		return
	}
	m := parseMPD(t, st)
	inTS := map[uint64]bool{}
	for _, n := range tsMSN {
		inTS[n] = true
	}
	for _, p := range m.Periods {
		for _, as := range p.AdaptationSets {
			tpl := as.Representations[0].Template
			if _, ok := st.Object(tpl.Initialization); !ok {
				t.Fatalf("period %s: init %s not served", p.ID, tpl.Initialization)
			}
			var one mpd
			one.Periods = append(one.Periods, p)
			one.Periods[0].AdaptationSets = one.Periods[0].AdaptationSets[:0]
			one.Periods[0].AdaptationSets = append(one.Periods[0].AdaptationSets, as)
			entries, _ := expandTimeline(t, st, one, as.ContentType)
			for i, e := range entries {
				if !inTS[e.n] {
					t.Fatalf("period %s %s: number %d not in the TS playlist %v", p.ID, as.ContentType, e.n, tsMSN)
				}
				if i > 0 && (e.t < entries[i-1].t+entries[i-1].d || e.n <= entries[i-1].n) {
					t.Fatalf("period %s %s: entry %+v after %+v", p.ID, as.ContentType, e, entries[i-1])
				}
				if e.t < tpl.PTO {
					t.Fatalf("period %s %s: t %d before presentationTimeOffset %d", p.ID, as.ContentType, e.t, tpl.PTO)
				}
				if _, ok := st.Object(e.path); !ok {
					t.Fatalf("%s not served", e.path)
				}
			}
		}
	}
}

// checkParts checks a media playlist's LL-HLS parts: each is served, parts of a
// segment are named after it and numbered from 0, and a finished segment's bytes
// are its styp followed by its parts (stored once, never encoded twice).
func checkParts(t *testing.T, st *packager.Stream, path string, p fmp4Playlist) {
	t.Helper()
	listed := 0
	for i, parts := range p.partsOf {
		if len(parts) == 0 {
			continue
		}
		listed++
		seg, ok := st.Object(path[:2] + p.names[i])
		if !ok {
			t.Fatalf("%s: %s not served", path, p.names[i])
		}
		off := packager.StypSize
		for k, pt := range parts {
			want := strings.TrimSuffix(p.names[i], ".m4s") + "." + strconv.Itoa(k) + ".m4s"
			if pt.uri != want {
				t.Fatalf("%s: part %d of %s is %s", path, k, p.names[i], pt.uri)
			}
			obj, ok := st.Object(path[:2] + pt.uri)
			if !ok {
				t.Fatalf("%s: part %s not served", path, pt.uri)
			}
			if off+len(obj.Data) > len(seg.Data) || !bytes.Equal(seg.Data[off:off+len(obj.Data)], obj.Data) {
				t.Fatalf("%s: part %s is not bytes %d.. of its segment", path, pt.uri, off)
			}
			off += len(obj.Data)
		}
		if off != len(seg.Data) {
			t.Fatalf("%s: %s is %d bytes, styp and parts %d", path, p.names[i], len(seg.Data), off)
		}
	}
	if listed > 3 {
		t.Fatalf("%s: parts listed for %d segments", path, listed)
	}
	for _, pt := range p.openParts {
		if _, ok := st.Object(path[:2] + pt.uri); !ok {
			t.Fatalf("%s: open part %s not served", path, pt.uri)
		}
	}
}
