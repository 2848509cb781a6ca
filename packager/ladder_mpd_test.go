package packager_test

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/packager"
)

// ladderMPD is what the test reads from a ladder's MPD.
type ladderMPD struct {
	Type    string `xml:"type,attr"`
	Periods []struct {
		ID    string `xml:"id,attr"`
		Start string `xml:"start,attr"`
		Sets  []struct {
			Align string `xml:"segmentAlignment,attr"`
			Reps  []struct {
				ID  string `xml:"id,attr"`
				Tpl struct {
					Timescale uint64 `xml:"timescale,attr"`
					PTO       uint64 `xml:"presentationTimeOffset,attr"`
					Start     uint64 `xml:"startNumber,attr"`
					S         []struct {
						T uint64 `xml:"t,attr"`
						D uint64 `xml:"d,attr"`
						R int    `xml:"r,attr"`
					} `xml:"SegmentTimeline>S"`
				} `xml:"SegmentTemplate"`
			} `xml:"Representation"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

// ladderSegs checks a ladder MPD against the schema and the segments and
// Period starts of the ones before it (seen: "period rep n" to "t d"), and
// returns each Period's Representation ids.
func ladderSegs(t *testing.T, doc []byte, seen map[string]string) [][]string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ladder.mpd")
	if err := os.WriteFile(path, doc, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fixture.ValidateMPD(t, path); err != nil {
		t.Fatal(err)
	}
	var m ladderMPD
	if err := xml.Unmarshal(doc, &m); err != nil {
		t.Fatal(err)
	}
	var reps [][]string
	for k, p := range m.Periods {
		if old, ok := seen[p.ID]; ok && old != p.Start {
			t.Errorf("Period %s start %s, was %s", p.ID, p.Start, old)
		}
		seen[p.ID] = p.Start
		var ids []string
		for _, as := range p.Sets {
			for _, r := range as.Reps {
				ids = append(ids, r.ID)
				n, end := r.Tpl.Start, uint64(0)
				for _, s := range r.Tpl.S {
					for k := 0; k <= s.R; k++ {
						key := p.ID + " " + r.ID + " " + strconv.FormatUint(n, 10)
						val := strconv.FormatUint(s.T+uint64(k)*s.D, 10) + " " + strconv.FormatUint(s.D, 10)
						if old, ok := seen[key]; ok && old != val {
							t.Errorf("segment %s listed as %s, now %s", key, old, val)
						}
						seen[key] = val
						n++
						end = s.T + uint64(k+1)*s.D
					}
				}
				// A closed Period: every Representation reaches its end, the
				// one of a member that left included (no gap to stall on).
				if k+1 < len(m.Periods) && r.Tpl.Timescale > 0 {
					at := parseSec(p.Start) + (float64(end)-float64(r.Tpl.PTO))/float64(r.Tpl.Timescale)
					if next := parseSec(m.Periods[k+1].Start); at < next {
						t.Errorf("Period %s: %s ends at %.3f s, before the next Period at %.3f s", p.ID, r.ID, at, next)
					}
				}
			}
		}
		reps = append(reps, ids)
	}
	return reps
}

// TestLadderMPD follows a ladder's MPD through a member leaving and coming
// back: a Period per stretch with the same members, earlier Periods and
// their segments never rewritten, the MPD static once every member left.
func TestLadderMPD(t *testing.T) {
	h, clk := newHub(t, packager.Config{Variants: []string{"_hi", "_lo"}, DisableLowLatency: true})
	hi := mustPublish(t, h, "live", "demo_hi")
	lo := mustPublish(t, h, "live", "demo_lo")
	m := media{vStep: 40, gops: []int64{50}, until: 8000}
	m.video, m.audio = videoB, audioA
	publish(t, hi, m)
	m.video, m.audio = videoA, nil // video only, as a multitrack publish's extra tracks
	publish(t, lo, m)
	seen := map[string]string{}
	mpd := func() ([]byte, [][]string) {
		t.Helper()
		l, err := h.Ladder("live", "demo")
		if err != nil {
			t.Fatal(err)
		}
		doc := h.LadderMPD(l)
		if again := h.LadderMPD(l); &again[0] != &doc[0] {
			t.Error("an unchanged ladder's MPD rendered again")
		}
		return doc, ladderSegs(t, doc, seen)
	}
	doc, reps := mpd()
	if len(reps) != 1 || strings.Join(reps[0], " ") != "demo_hi/v demo_lo/v demo_hi/a" || !strings.Contains(string(doc), `type="dynamic"`) {
		t.Fatalf("two live members: %v\n%s", reps, doc)
	}

	// demo_lo leaves: a second Period without it, the first keeps its segments.
	closeWriter(t, lo)
	if doc, reps = mpd(); len(reps) != 1 {
		t.Fatalf("a Period without media yet listed: %v\n%s", reps, doc)
	}
	m.video, m.audio, m.start, m.until = videoB, audioA, 8000, 14000
	writeFrames(t, hi, m.frames())
	doc, reps = mpd()
	if len(reps) != 2 || strings.Join(reps[0], " ") != "demo_hi/v demo_lo/v demo_hi/a" || strings.Join(reps[1], " ") != "demo_hi/v demo_hi/a" {
		t.Fatalf("after demo_lo left: %v\n%s", reps, doc)
	}
	// It comes back: a third Period with both, after the media listed.
	clk.Advance(20 * time.Second) // back when demo_hi's encoder is at 20 s
	lo = mustPublish(t, h, "live", "demo_lo")
	publish(t, lo, media{video: videoA, vStep: 40, gops: []int64{50}, start: 20000, until: 22000})
	m.start, m.until = 14000, 22000
	writeFrames(t, hi, m.frames())
	if _, reps = mpd(); len(reps) != 2 {
		t.Fatalf("demo_lo back without a segment yet: %v", reps)
	}
	// Its first segment: the third Period opens, after what the second listed.
	writeFrames(t, lo, media{video: videoA, vStep: 40, gops: []int64{50}, start: 22000, until: 24000}.frames())
	mpd()
	writeFrames(t, lo, media{video: videoA, vStep: 40, gops: []int64{50}, start: 24000, until: 28000}.frames())
	m.start, m.until = 22000, 28000
	writeFrames(t, hi, m.frames())
	doc, reps = mpd()
	if n := len(reps); n < 2 || strings.Join(reps[n-1], " ") != "demo_hi/v demo_lo/v demo_hi/a" || strings.Join(reps[n-2], " ") != "demo_hi/v demo_hi/a" {
		t.Fatalf("after demo_lo came back: %v\n%s", reps, doc)
	}
	closeWriter(t, lo)
	closeWriter(t, hi)
	doc, _ = mpd()
	if !strings.Contains(string(doc), `type="static"`) {
		t.Fatalf("every member left, MPD still dynamic:\n%s", doc)
	}
	t.Logf("%d segments and Periods checked", len(seen))
}

func parseSec(d string) float64 {
	f, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(d, "PT"), "S"), 64)
	return f
}
