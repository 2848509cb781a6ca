package main

import (
	"encoding/xml"
	"fmt"
	"github.com/rtmpgate/rtmpgate/internal/mp4dump"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// TestDASHValidator follows the MPD of five stream shapes through their whole
// life, polling it every 150 ms as a DASH conformance validator would, with real
// ffmpeg publishers: 30 fps H.264 with B-frames, audio only, video only, a
// republish of the same key, and a publisher killed (SIGKILL) mid-segment. It
// fails on any rule the MPD breaks:
//
//   - A segment is listed once an MPD fetched at or after its availability
//     start references it: by a SegmentTimeline entry, or, in a Period
//     addressed by SegmentTemplate@duration (the low-latency live Period), by
//     its number once the clock passed its nominal end minus
//     availabilityTimeOffset. (What an MPD promises for later instants is not
//     held against a publisher that vanishes meanwhile.)
//   - A listed segment's SegmentTimeline start and duration never change; a
//     Period's start, and a SegmentTemplate@duration Period's
//     presentationTimeOffset, @duration and startNumber, never change; a
//     segment listed by number appears in the Period's later timeline within
//     half of @duration of its nominal edges (the DASH-IF timing model's
//     tolerance; the Period's last segment ends with the Period), and none
//     goes missing from it.
//   - Every listed segment answers 200; timelines have no gap or overlap.
//   - The fetched media decodes whole, frame for frame against the source,
//     with no gap or overlap in its timestamps, a keyframe at every video
//     segment start, and the last segment's timeline entry and EXTINF as long
//     as the media it holds.
//   - The live low-latency, republished and static MPDs validate against the
//     ISO/IEC 23009-1 schema; every low-latency AdaptationSet carries the
//     ProducerReferenceTime the ServiceDescription refers to, and every chunk a
//     prft box whose wall clock matches the MPD's.
func TestDASHValidator(t *testing.T) {
	testkit.NeedTools(t, "ffmpeg", "ffprobe", "xmllint")
	args := []string{"-window-segments", "400", "-linger", "60s"}
	ll := startGateway(t, args...)
	classic := startGateway(t, append(args, "-low-latency=false")...)
	shapes := []struct {
		name, clip string
		republish  bool
		kill       time.Duration // > 0: SIGKILL the publisher this long after it started
		classic    bool          // low latency off: the classic MPD
	}{
		{"bframes", "bframes", false, 0, false},
		{"audio-only", "audio", false, 0, false},
		{"video-only", "video", false, 0, false},
		{"republish", "av", true, 0, false},
		// 5.3 s: within the third segment, so the last one is cut short
		// wherever the kill lands in its GOP, B-frames pending.
		{"killed", "bframes", false, 5300 * time.Millisecond, false},
		{"classic-republish", "bframes", true, 0, true},
	}
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			t.Parallel()
			g := ll
			if sh.classic {
				g = classic
			}
			src := clip(t, sh.clip)
			v := &mpdValidator{url: g.streamURL(sh.name, "index.mpd")}
			stop, polled := make(chan struct{}), make(chan struct{})
			go func() { defer close(polled); v.poll(stop) }()
			defer func() {
				select {
				case <-stop:
				default:
					close(stop)
				}
				<-polled
			}()
			sessions := 1
			p := publishFFmpeg(t, src, g.ingestURL(sh.name), true)
			if sh.kill > 0 {
				time.Sleep(sh.kill)
				_ = p.cmd.Process.Kill()
			}
			if err := p.wait(t, 30*time.Second); err != nil && sh.kill == 0 {
				t.Fatalf("ffmpeg: %v\n%s", err, p.output)
			}
			if sh.republish {
				if err := publishFFmpeg(t, src, g.ingestURL(sh.name), true).wait(t, 30*time.Second); err != nil {
					t.Fatalf("ffmpeg (republish): %v", err)
				}
				sessions = 2
			}
			deadline := time.Now().Add(10 * time.Second)
			for !v.ended() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond) // a few polls of the static MPD
			close(stop)
			<-polled
			for _, e := range v.errs {
				t.Error(e)
			}
			if !v.ended() {
				t.Fatal("the MPD never turned static")
			}
			t.Logf("%d MPDs polled, %d segments listed", v.polls, len(v.urls))
			v.checkSchema(t, !sh.classic)
			want := probe(t, src, false)
			checkDASHMedia(t, g, sh.name, v, want, sessions, sh.kill == 0, !sh.classic)
		})
	}
}

// mpdDoc is what the validator reads from an MPD.
type mpdDoc struct {
	Type    string `xml:"type,attr"`
	AST     string `xml:"availabilityStartTime,attr"`
	Service []struct {
		Latency struct {
			Ref string `xml:"referenceId,attr"`
		} `xml:"Latency"`
	} `xml:"ServiceDescription"`
	Periods []struct {
		ID    string `xml:"id,attr"`
		Start string `xml:"start,attr"`
		Sets  []struct {
			ContentType string `xml:"contentType,attr"`
			PRT         []struct {
				ID      string `xml:"id,attr"`
				Inband  string `xml:"inband,attr"`
				Wall    string `xml:"wallClockTime,attr"`
				PresT   uint64 `xml:"presentationTime,attr"`
				Timings []struct {
					Scheme string `xml:"schemeIdUri,attr"`
				} `xml:"UTCTiming"`
			} `xml:"ProducerReferenceTime"`
			Tpl struct {
				Timescale   uint64  `xml:"timescale,attr"`
				PTO         uint64  `xml:"presentationTimeOffset,attr"`
				Duration    uint64  `xml:"duration,attr"`
				StartNumber uint64  `xml:"startNumber,attr"`
				ATO         float64 `xml:"availabilityTimeOffset,attr"`
				Init        string  `xml:"initialization,attr"`
				Media       string  `xml:"media,attr"`
				S           []struct {
					T *uint64 `xml:"t,attr"`
					D uint64  `xml:"d,attr"`
					R int     `xml:"r,attr"`
					N *uint64 `xml:"n,attr"`
				} `xml:"SegmentTimeline>S"`
			} `xml:"Representation>SegmentTemplate"`
		} `xml:"AdaptationSet"`
	} `xml:"Period"`
}

// segID names a segment of one track: its Period, content type and number.
type segID struct {
	period, track string
	n             uint64
}

type span struct{ t, d uint64 } // ticks

type gridTpl struct{ pto, dur, start, timescale uint64 }

// mpdValidator polls an MPD and holds what it listed. poll runs on its own
// goroutine until stop; the test reads the fields once poll returned.
type mpdValidator struct {
	url string

	mu     sync.Mutex
	static bool

	polls       int
	periodStart map[string]string
	grids       map[string]gridTpl // by period/track
	explicit    map[segID]span     // SegmentTimeline entries
	nominal     map[segID]span     // segments listed by number: their nominal spans
	gridOf      map[segID]gridTpl
	urls        map[string]bool // every listed segment and init segment, relative to the MPD
	final       *mpdDoc
	raws        map[string][]byte // MPDs kept for the schema check: "live", "periods", "static"
	grid        bool              // a SegmentTemplate@duration Period was seen
	errs        []string
}

func (v *mpdValidator) ended() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.static
}

// errorf records a broken rule once, however many polls see it.
func (v *mpdValidator) errorf(format string, args ...any) {
	e := fmt.Sprintf(format, args...)
	if len(v.errs) < 50 && !slices.Contains(v.errs, e) {
		v.errs = append(v.errs, e)
	}
}

func (v *mpdValidator) poll(stop <-chan struct{}) {
	v.periodStart, v.grids, v.explicit, v.nominal = map[string]string{}, map[string]gridTpl{}, map[segID]span{}, map[segID]span{}
	v.gridOf, v.urls, v.raws = map[segID]gridTpl{}, map[string]bool{}, map[string][]byte{}
	pollDoc(v.url, "MPD", 150*time.Millisecond, stop, v.errorf, v.check)
}

// pollDoc GETs url every interval until stop and hands each 200 answer's body
// to check with the time it was asked; a 404 (nothing published yet) is
// skipped, any other failure reported to errorf with what (the document's name).
func pollDoc(url, what string, every time.Duration, stop <-chan struct{}, errorf func(string, ...any), check func(time.Time, []byte)) {
	client := &http.Client{Timeout: 5 * time.Second}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		at := time.Now()
		res, err := client.Get(url)
		if err != nil {
			errorf("GET %s: %v", what, err)
			continue
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if res.StatusCode == http.StatusNotFound {
			continue
		}
		if err != nil || res.StatusCode != http.StatusOK {
			errorf("GET %s: status %d, %v", what, res.StatusCode, err)
			continue
		}
		check(at, body)
	}
}

// check applies the rules to one MPD, fetched at at.
func (v *mpdValidator) check(at time.Time, body []byte) {
	if strings.Contains(string(body), `"ORIGIN/time"`) {
		v.errorf("a UTCTiming still holds the packager's placeholder")
	}
	var m mpdDoc
	if err := xml.Unmarshal(body, &m); err != nil {
		v.errorf("MPD not well-formed: %v", err)
		return
	}
	v.polls++
	ast, err := time.Parse(time.RFC3339Nano, m.AST)
	if err != nil {
		v.errorf("availabilityStartTime %q: %v", m.AST, err)
		return
	}
	grid := false
	for _, p := range m.Periods {
		if old, ok := v.periodStart[p.ID]; ok && old != p.Start {
			v.errorf("Period %s start %s, was %s", p.ID, p.Start, old)
		}
		v.periodStart[p.ID] = p.Start
		pstart := parseSeconds(p.Start)
		for _, as := range p.Sets {
			tpl := as.Tpl
			key := p.ID + "/" + as.ContentType
			v.urls[tpl.Init] = true
			url := func(n uint64) string { return strings.ReplaceAll(tpl.Media, "$Number$", strconv.FormatUint(n, 10)) }
			if m.Type == "dynamic" && len(m.Service) > 0 {
				// DASH-IF low latency: a ProducerReferenceTime the service description refers to, in every AdaptationSet.
				if len(as.PRT) != 1 || as.PRT[0].ID != m.Service[0].Latency.Ref || as.PRT[0].Inband != "true" || len(as.PRT[0].Timings) != 1 {
					v.errorf("%s: ProducerReferenceTime %+v, Latency@referenceId %q", key, as.PRT, m.Service[0].Latency.Ref)
				}
			}
			if tpl.Duration > 0 {
				grid = true
				gt := gridTpl{tpl.PTO, tpl.Duration, tpl.StartNumber, tpl.Timescale}
				if old, ok := v.grids[key]; ok && old != gt {
					v.errorf("%s: SegmentTemplate@duration addressing changed from %+v to %+v", key, old, gt)
				}
				v.grids[key] = gt
				ts := float64(tpl.Timescale)
				for k := uint64(0); k < 100000; k++ {
					end := pstart + float64((k+1)*tpl.Duration)/ts
					if ast.Add(time.Duration((end - tpl.ATO) * float64(time.Second))).After(at) {
						break
					}
					id := segID{p.ID, as.ContentType, tpl.StartNumber + k}
					if _, ok := v.explicit[id]; ok {
						v.errorf("%s: segment %d listed by a timeline, then by number", key, id.n)
					}
					v.nominal[id] = span{tpl.PTO + k*tpl.Duration, tpl.Duration}
					v.gridOf[id] = gt
					v.urls[url(id.n)] = true
				}
				continue
			}
			n, tt := tpl.StartNumber, uint64(0)
			for i, s := range tpl.S {
				if s.N != nil {
					n = *s.N
				}
				if s.T != nil {
					if i > 0 && *s.T != tt {
						v.errorf("%s: timeline entry at %d, previous ended at %d (gap or overlap)", key, *s.T, tt)
					}
					tt = *s.T
				}
				for r := 0; r <= s.R; r++ {
					id, sp := segID{p.ID, as.ContentType, n}, span{tt, s.D}
					if old, ok := v.explicit[id]; ok && old != sp {
						v.errorf("%s: segment %d listed as t=%d d=%d, now t=%d d=%d", key, n, old.t, old.d, sp.t, sp.d)
					}
					if nom, ok := v.nominal[id]; ok {
						// The Period's last segment ends with the Period, short or not.
						last := i == len(tpl.S)-1 && r == s.R
						half := v.gridOf[id].dur / 2
						if absDiff(sp.t, nom.t) > half || !last && absDiff(sp.t+sp.d, nom.t+nom.d) > half {
							v.errorf("%s: segment %d spans t=%d d=%d, nominally t=%d d=%d: beyond half of @duration", key, n, sp.t, sp.d, nom.t, nom.d)
						}
					}
					v.explicit[id] = sp
					v.urls[url(n)] = true
					n++
					tt += s.D
				}
			}
		}
	}
	switch {
	case m.Type == "static":
		v.final = &m
		v.raws["static"] = body
		// The final MPD lists exactly what exists: every segment listed by
		// number is in its timeline.
		for id := range v.nominal {
			if _, ok := v.explicit[id]; !ok {
				v.errorf("segment %d of %s/%s was listed by number, missing from the static MPD", id.n, id.period, id.track)
			}
		}
		v.mu.Lock()
		v.static = true
		v.mu.Unlock()
	case len(m.Periods) > 1:
		v.raws["periods"] = body
	default:
		v.raws["live"] = body
	}
	v.grid = v.grid || grid
}

func absDiff(a, b uint64) uint64 { return max(a, b) - min(a, b) }

// parseSeconds reads the xs:duration the gateway writes, PT<seconds>S.
func parseSeconds(d string) float64 {
	s, ok := strings.CutPrefix(d, "PT")
	s, ok2 := strings.CutSuffix(s, "S")
	f, err := strconv.ParseFloat(s, 64)
	if !ok || !ok2 || err != nil {
		return math.NaN()
	}
	return f
}

// checkSchema validates the kept MPDs against the ISO/IEC 23009-1 schema; with
// lowLatency a live one must have had a SegmentTemplate@duration Period,
// without none may.
func (v *mpdValidator) checkSchema(t *testing.T, lowLatency bool) {
	t.Helper()
	if v.raws["live"] == nil || v.grid != lowLatency {
		t.Errorf("live MPD seen: %v; SegmentTemplate@duration Period seen: %v", v.raws["live"] != nil, v.grid)
	}
	for name, raw := range v.raws {
		path := filepath.Join(t.TempDir(), name+".mpd")
		if err := os.WriteFile(path, raw, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := fixture.ValidateMPD(t, path); err != nil {
			t.Errorf("%s MPD: %v\n%s", name, err, raw)
		}
	}
}

var prftRe = regexp.MustCompile(`prft size=\d+ v1 flags=1 reference_track_ID=\d+ ntp_timestamp=0x([0-9a-f]+) media_time=(\d+)`)

// checkDASHMedia fetches every segment the MPD listed (each must answer 200)
// and judges the media of the static MPD's Periods: whole, decodable, without
// gaps or overlaps, keyframes at video segment starts, the timeline as long as
// the media, a prft box per chunk with lowLatency (none without); with
// complete, frame for frame against src over all sessions.
func checkDASHMedia(t *testing.T, g *gateway, key string, v *mpdValidator, src media, sessions int, complete, lowLatency bool) {
	t.Helper()
	bodies := map[string][]byte{}
	for u := range v.urls {
		code, body := httpGet(t, g.streamURL(key, u))
		if code != http.StatusOK {
			t.Errorf("listed %s: status %d", u, code)
		}
		bodies[u] = body
	}
	m := v.final
	ast, _ := time.Parse(time.RFC3339Nano, m.AST)
	dir := t.TempDir()
	packets := map[string]int{}
	for _, p := range m.Periods {
		for _, as := range p.Sets {
			tpl := as.Tpl
			ts := float64(tpl.Timescale)
			var ids []segID
			for id := range v.explicit {
				if id.period == p.ID && id.track == as.ContentType {
					ids = append(ids, id)
				}
			}
			slices.SortFunc(ids, func(a, b segID) int { return int(a.n) - int(b.n) })
			all := append([]byte(nil), bodies[tpl.Init]...)
			for _, id := range ids {
				frag := bodies[strings.ReplaceAll(tpl.Media, "$Number$", strconv.FormatUint(id.n, 10))]
				d := mp4dump.Dump(frag)
				prfts := prftRe.FindAllStringSubmatch(d, -1)
				if moofs := strings.Count(d, "moof size="); lowLatency && len(prfts) != moofs || !lowLatency && len(prfts) != 0 || moofs == 0 {
					t.Errorf("%s/%s segment %d: %d prft boxes for %d chunks", p.ID, as.ContentType, id.n, len(prfts), moofs)
				}
				for _, pr := range prfts {
					ntp, _ := strconv.ParseUint(pr[1], 16, 64)
					mt, _ := strconv.ParseUint(pr[2], 10, 64)
					wall := time.Unix(int64(ntp>>32)-2208988800, int64((ntp&0xffffffff)*1e9>>32))
					mpdWall := ast.Add(time.Duration((parseSeconds(p.Start) + (float64(mt)-float64(tpl.PTO))/ts) * float64(time.Second)))
					if off := wall.Sub(mpdWall); off > 2*time.Second || off < -2*time.Second {
						t.Errorf("%s/%s segment %d: prft says media time %d left the encoder at %s, the MPD's clock puts it at %s", p.ID, as.ContentType, id.n, mt, wall, mpdWall)
					}
				}
				single := filepath.Join(dir, fmt.Sprintf("%s-%s-%d.mp4", p.ID, as.ContentType, id.n))
				if err := os.WriteFile(single, append(append([]byte(nil), bodies[tpl.Init]...), frag...), 0o644); err != nil {
					t.Fatal(err)
				}
				sm := probe(t, single, false)
				pk := sm.video
				if as.ContentType == "audio" {
					pk = sm.audio
				}
				if len(pk) == 0 {
					t.Errorf("%s/%s segment %d holds no frames", p.ID, as.ContentType, id.n)
					continue
				}
				if !pk[0].key {
					t.Errorf("%s/%s segment %d does not start with a keyframe", p.ID, as.ContentType, id.n)
				}
				// The timeline entry starts at the segment's earliest presentation.
				ept := math.Inf(1)
				for _, x := range pk {
					ept = min(ept, x.pts)
				}
				if sp := v.explicit[id]; math.Abs(float64(sp.t)/ts*1000-ept) > 1 {
					t.Errorf("%s/%s segment %d: timeline t=%.1f ms, media starts at %.1f ms", p.ID, as.ContentType, id.n, float64(sp.t)/ts*1000, ept)
				}
				all = append(all, frag...)
			}
			whole := filepath.Join(dir, fmt.Sprintf("%s-%s.mp4", p.ID, as.ContentType))
			if err := os.WriteFile(whole, all, 0o644); err != nil {
				t.Fatal(err)
			}
			wm := probe(t, whole, true)
			pk, decoded := wm.video, wm.videoFrames
			if as.ContentType == "audio" {
				pk, decoded = wm.audio, wm.audioFrames
			}
			packets[as.ContentType] += len(pk)
			if decoded != len(pk) {
				t.Errorf("%s/%s: %d frames decode of %d", p.ID, as.ContentType, decoded, len(pk))
			}
			step := frameDuration(pk)
			for i := 1; i < len(pk); i++ {
				if d := pk[i].dts - pk[i-1].dts; d <= 0 || d > 1.5*step {
					t.Errorf("%s/%s: decode time steps %.1f ms at frame %d (frames are %.1f ms): a gap or an overlap", p.ID, as.ContentType, d, i, step)
				}
			}
			// The last segment lasts until its latest presented frame ends.
			if len(ids) > 0 && len(pk) > 1 {
				last := v.explicit[ids[len(ids)-1]]
				end := math.Inf(-1)
				for _, x := range pk {
					end = max(end, x.pts)
				}
				end += pk[len(pk)-1].dts - pk[len(pk)-2].dts
				if got := float64(last.t+last.d) / ts * 1000; math.Abs(got-end) > 2 {
					t.Errorf("%s/%s: the timeline ends at %.1f ms, the media at %.1f ms", p.ID, as.ContentType, got, end)
				}
			}
		}
	}
	if complete {
		if packets["video"] != sessions*len(src.video) || packets["audio"] != sessions*len(src.audio) {
			t.Errorf("DASH holds %d video and %d audio frames; %d sessions of the source, %d and %d", packets["video"], packets["audio"], sessions, len(src.video), len(src.audio))
		}
	}
	checkLastEXTINF(t, g, key, len(src.video) > 0)
}

// checkLastEXTINF compares the last EXTINF of the fMP4 media playlist (video,
// else audio) with the media of its segment: from its earliest presentation to
// the end of its latest presented frame.
func checkLastEXTINF(t *testing.T, g *gateway, key string, video bool) {
	t.Helper()
	path := "a/index.m3u8"
	if video {
		path = "v/index.m3u8"
	}
	u := g.streamURL(key, path)
	code, body := httpGet(t, u)
	if code != http.StatusOK {
		t.Fatalf("%s: status %d", path, code)
	}
	pl := parseMediaPlaylist(t, string(body))
	mp := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindAllStringSubmatch(string(body), -1)
	if len(pl.segments) == 0 || len(mp) == 0 {
		t.Fatalf("%s: no segments", path)
	}
	last := pl.segments[len(pl.segments)-1]
	file := filepath.Join(t.TempDir(), "last.mp4")
	if err := os.WriteFile(file, append(getRef(t, u, mp[len(mp)-1][1]), getRef(t, u, last.uri)...), 0o644); err != nil {
		t.Fatal(err)
	}
	m := probe(t, file, false)
	pk := m.video
	if !video {
		pk = m.audio
	}
	if len(pk) < 2 {
		t.Fatalf("last segment holds %d frames", len(pk))
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, x := range pk {
		lo, hi = min(lo, x.pts), max(hi, x.pts)
	}
	media := hi + pk[len(pk)-1].dts - pk[len(pk)-2].dts - lo
	if math.Abs(last.duration*1000-media) > 2 {
		t.Errorf("last EXTINF %.3f s, its media %.3f s", last.duration, media/1000)
	}
}
