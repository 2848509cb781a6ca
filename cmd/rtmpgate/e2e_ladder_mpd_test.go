package main

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// ladderMPDDoc is what the ladder test reads from a ladder's MPD.
type ladderMPDDoc struct {
	Type    string `xml:"type,attr"`
	AST     string `xml:"availabilityStartTime,attr"`
	Periods []struct {
		ID    string `xml:"id,attr"`
		Start string `xml:"start,attr"`
		Sets  []struct {
			ContentType string `xml:"contentType,attr"`
			Align       string `xml:"segmentAlignment,attr"`
			Reps        []struct {
				ID     string `xml:"id,attr"`
				Height int    `xml:"height,attr"`
				Tpl    struct {
					Timescale   uint64  `xml:"timescale,attr"`
					Duration    uint64  `xml:"duration,attr"`
					StartNumber uint64  `xml:"startNumber,attr"`
					ATO         float64 `xml:"availabilityTimeOffset,attr"`
					Init        string  `xml:"initialization,attr"`
					Media       string  `xml:"media,attr"`
					S           []struct {
						T *uint64 `xml:"t,attr"`
						D uint64  `xml:"d,attr"`
						R int     `xml:"r,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

// ladderRepKey names one Representation of one Period.
type ladderRepKey struct{ period, rep string }

// ladderRepSegs is what the MPDs listed of one Representation of one Period.
type ladderRepSegs struct {
	contentType, init, media string
	timescale                uint64
	spans                    map[uint64]span // by number, from SegmentTimelines
	grid                     map[uint64]bool // numbers available by SegmentTemplate@duration
}

// ladderMPDPoller polls a ladder's MPD through its life and holds what it
// listed; the test reads the fields once poll returned.
type ladderMPDPoller struct {
	url string

	polls   int
	starts  map[string]string
	reps    map[ladderRepKey]*ladderRepSegs
	members []string          // the Representation ids of the last Period, per poll where they changed
	raws    map[string][]byte // for the schema: "live", "periods", "last"
	errs    []string
}

func (v *ladderMPDPoller) errorf(format string, args ...any) {
	if e := fmt.Sprintf(format, args...); len(v.errs) < 50 && !slices.Contains(v.errs, e) {
		v.errs = append(v.errs, e)
	}
}

func (v *ladderMPDPoller) poll(stop <-chan struct{}) {
	v.starts, v.reps, v.raws = map[string]string{}, map[ladderRepKey]*ladderRepSegs{}, map[string][]byte{}
	pollDoc(v.url, "ladder MPD", 250*time.Millisecond, stop, v.errorf, v.check)
}

// check applies the rules to one ladder MPD fetched at at: a Period's start
// and a listed segment's timeline entry never change, every Representation
// is the member's own (its files under the member's path).
func (v *ladderMPDPoller) check(at time.Time, body []byte) {
	var m ladderMPDDoc
	if err := xml.Unmarshal(body, &m); err != nil {
		v.errorf("ladder MPD not well-formed: %v", err)
		return
	}
	ast, err := time.Parse(time.RFC3339Nano, m.AST)
	if err != nil {
		v.errorf("availabilityStartTime %q: %v", m.AST, err)
		return
	}
	v.polls++
	var last []string
	for _, p := range m.Periods {
		if old, ok := v.starts[p.ID]; ok && old != p.Start {
			v.errorf("Period %s start %s, was %s", p.ID, p.Start, old)
		}
		v.starts[p.ID] = p.Start
		last = last[:0]
		for _, as := range p.Sets {
			for _, r := range as.Reps {
				last = append(last, r.ID)
				tpl := r.Tpl
				member, _, _ := strings.Cut(r.ID, "/")
				if !strings.HasPrefix(tpl.Init, member+"/") || !strings.HasPrefix(tpl.Media, member+"/") {
					v.errorf("Representation %s: files %s, %s not under its member's path", r.ID, tpl.Init, tpl.Media)
				}
				key := ladderRepKey{p.ID, r.ID}
				rs := v.reps[key]
				if rs == nil {
					rs = &ladderRepSegs{contentType: as.ContentType, init: tpl.Init, media: tpl.Media, timescale: tpl.Timescale, spans: map[uint64]span{}, grid: map[uint64]bool{}}
					v.reps[key] = rs
				}
				if tpl.Duration > 0 {
					pstart := parseSeconds(p.Start)
					for k := uint64(0); k < 100000; k++ {
						end := pstart + float64((k+1)*tpl.Duration)/float64(tpl.Timescale)
						if ast.Add(time.Duration((end - tpl.ATO) * float64(time.Second))).After(at) {
							break
						}
						rs.grid[tpl.StartNumber+k] = true
					}
					continue
				}
				n, tt := tpl.StartNumber, uint64(0)
				for _, s := range tpl.S {
					if s.T != nil {
						tt = *s.T
					}
					for k := 0; k <= s.R; k++ {
						sp := span{tt, s.D}
						if old, ok := rs.spans[n]; ok && old != sp {
							v.errorf("%s %s: segment %d listed as t=%d d=%d, now t=%d d=%d", p.ID, r.ID, n, old.t, old.d, sp.t, sp.d)
						}
						rs.spans[n] = sp
						n++
						tt += s.D
					}
				}
			}
		}
	}
	if ids := strings.Join(last, " "); len(v.members) == 0 || v.members[len(v.members)-1] != ids {
		v.members = append(v.members, ids)
	}
	switch {
	case len(m.Periods) > 1 && v.raws["periods"] == nil:
		v.raws["periods"] = body
	case v.raws["live"] == nil:
		v.raws["live"] = body
	}
	v.raws["last"] = body
}

// checkLadderMPD validates the kept ladder MPDs against the ISO/IEC 23009-1
// schema, fetches every segment listed (each must answer 200) and decodes
// each Period's Representations whole with ffprobe: as many frames as its
// SegmentTimeline's durations hold (25 fps video, AAC frames of 1024
// samples).
func checkLadderMPD(t *testing.T, base string, v *ladderMPDPoller) {
	t.Helper()
	for _, e := range v.errs {
		t.Error(e)
	}
	for name, raw := range v.raws {
		path := filepath.Join(t.TempDir(), name+".mpd")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := fixture.ValidateMPD(t, path); err != nil {
			t.Errorf("%s ladder MPD: %v\n%s", name, err, raw)
		}
	}
	keys := make([]ladderRepKey, 0, len(v.reps))
	for k := range v.reps {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].period+keys[i].rep < keys[j].period+keys[j].rep })
	var segs, probed int
	for _, k := range keys {
		rs := v.reps[k]
		code, init := httpGet(t, base+rs.init)
		if code != http.StatusOK {
			t.Errorf("%s %s: init %s: %d", k.period, k.rep, rs.init, code)
			continue
		}
		file := append([]byte(nil), init...)
		var ticks uint64
		nums := make([]uint64, 0, len(rs.spans))
		for n := range rs.spans {
			nums = append(nums, n)
		}
		for n := range rs.grid {
			if _, ok := rs.spans[n]; !ok {
				nums = append(nums, n)
			}
		}
		slices.Sort(nums)
		for _, n := range nums {
			u := strings.ReplaceAll(rs.media, "$Number$", strconv.FormatUint(n, 10))
			code, body := httpGet(t, base+u)
			segs++
			if code != http.StatusOK {
				t.Errorf("%s %s: segment %s: %d", k.period, k.rep, u, code)
				continue
			}
			if sp, ok := rs.spans[n]; ok {
				file = append(file, body...)
				ticks += sp.d
			}
		}
		if ticks == 0 {
			continue // listed by number only: the live Period
		}
		path := filepath.Join(t.TempDir(), "rep.mp4")
		if err := os.WriteFile(path, file, 0o644); err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Streams []struct {
				Frames string `json:"nb_read_frames"`
			} `json:"streams"`
		}
		testkit.Probe(t, &doc, path, "-count_frames", "-show_entries", "stream=nb_read_frames")
		want := float64(ticks) * 25 / float64(rs.timescale)
		if rs.contentType == "audio" {
			want = float64(ticks) / 1024
		}
		got := -1.0
		if len(doc.Streams) == 1 {
			got, _ = strconv.ParseFloat(doc.Streams[0].Frames, 64)
		}
		if got < want-1 || got > want+1 {
			t.Errorf("%s %s: %.0f frames decoded, its timeline holds %.1f", k.period, k.rep, got, want)
		}
		probed++
	}
	t.Logf("ladder MPD: %d polls, %d Periods, %d Representations (%d decoded whole), %d segments fetched; last Period's Representations over time: %q",
		v.polls, len(v.starts), len(v.reps), probed, segs, v.members)
	if probed == 0 {
		t.Error("no Period of the ladder MPD was decoded")
	}
}

// startLadderMPDPoller polls u until the returned stop is called, which
// returns the poller.
func startLadderMPDPoller(u string) (stop func() *ladderMPDPoller) {
	v := &ladderMPDPoller{url: u}
	done, polled := make(chan struct{}), make(chan struct{})
	go func() { defer close(polled); v.poll(done) }()
	var once sync.Once
	return func() *ladderMPDPoller {
		once.Do(func() { close(done) })
		<-polled
		return v
	}
}
