package manifest_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/packager/manifest"
	"github.com/rtmpgate/rtmpgate/remux"
)

var ladderAST = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// memberView is a live member of a ladder: its publisher started late ms
// after the ladder's availabilityStartTime, its session timeline at dts0 ms,
// n segments of 2 s from sequence number first, one Period; vt nil for audio
// only, withAudio false for video only.
func memberView(epoch string, late, dts0 int64, first uint64, n int, vt *remux.Track, withAudio, ll bool, bw int64) *manifest.View {
	var in [2]*manifest.Init
	if vt != nil {
		in[manifest.Video] = &manifest.Init{Name: "init-" + epoch + "-1.mp4", Path: "v/init-" + epoch + "-1.mp4", Track: vt}
	}
	if withAudio {
		in[manifest.Audio] = &manifest.Init{Name: "init-" + epoch + "-1.mp4", Path: "a/init-" + epoch + "-1.mp4", Track: audio}
	}
	ast := ladderAST.Add(time.Duration(late) * time.Millisecond)
	v := &manifest.View{
		Epoch: epoch, Live: true, Target: 2, AST: ast, PublishTime: ast.Add(time.Duration(n) * 2 * time.Second),
		LowLatency: ll, PartTarget: 500 * time.Millisecond, SegmentDuration: 2 * time.Second,
		Rates: manifest.Rates{Peak: bw + 64000, Avg: bw, Track: [2]int64{bw, 64000}, FPS: 25},
	}
	p := &manifest.Period{ID: "p0", PTO: dts0, End: dts0, Init: in, Epoch: epoch, First: first, Dur: 2000}
	for k := 0; k < n; k++ {
		dts := dts0 + int64(k)*2000
		seg := &manifest.Segment{Seq: first + uint64(k), Name: epoch + ".ts", DTS: dts, Dur: 2000, PDT: ast.Add(time.Duration(k) * 2 * time.Second), Init: in, Period: p}
		for i, it := range in {
			if it != nil {
				ts := it.Track.Timescale
				seg.Frag[i] = &manifest.Fragment{Name: epoch + "-" + strconv.Itoa(int(seg.Seq)) + ".m4s", T: manifest.Ticks(dts, ts), D: manifest.Ticks(dts+2000, ts) - manifest.Ticks(dts, ts), Dur: 2000, EPT: dts, Key: true}
			}
		}
		p.End = dts + 2000
		v.Window = append(v.Window, seg)
	}
	v.NextMSN = first + uint64(n)
	return v
}

func track(w, h int, codec string) *remux.Track {
	t := *video
	t.Width, t.Height, t.CodecString = w, h, codec
	if strings.HasPrefix(codec, "hvc1") {
		t.Codec = remux.CodecHEVC
	}
	return &t
}

// ladderDoc is a ladder of three members: hi (video and audio), mid (HEVC
// video only) and lo (H.264 video only, as a multitrack publish's extra
// tracks are), cut at the same instants; lo started 4 s after the others,
// then left, so the second Period presents hi and mid alone.
func ladderDoc(ll bool) *manifest.LadderDoc {
	hi := memberView("ehi", 0, 1000, 0, 6, track(1280, 720, "avc1.64001f"), true, ll, 2_500_000)
	mid := memberView("emid", 0, 0, 10, 6, track(640, 360, "hvc1.1.6.L93.B0"), false, ll, 900_000)
	lo := memberView("elo", 4000, 500, 3, 3, track(320, 180, "avc1.64000d"), false, false, 300_000)
	lo.Live = false
	rungs := []manifest.Rung{{Prefix: "demo_lo/", View: lo}, {Prefix: "demo_hi/", View: hi}, {Prefix: "demo_mid/", View: mid}}
	return &manifest.LadderDoc{AST: ladderAST, Live: true, Aligned: true, Periods: []manifest.LadderPeriod{
		{ID: "l0-4000", Start: 4000, End: 10000, Rungs: rungs, Member: []*manifest.Period{lo.Window[0].Period, hi.Window[0].Period, mid.Window[0].Period}},
		{ID: "l1-10000", Start: 10000, Rungs: rungs[1:], Member: []*manifest.Period{hi.Window[0].Period, mid.Window[0].Period}},
	}}
}

func TestLadderMPDGolden(t *testing.T) {
	for _, tc := range []struct {
		name string
		ll   bool
	}{{"ladder.mpd", false}, {"ladder-ll.mpd", true}} {
		t.Run(tc.name, func(t *testing.T) {
			d := ladderDoc(tc.ll)
			got := manifest.LadderMPD(nil, d)
			path := filepath.Join("testdata", tc.name)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("ladder MPD differs from %s (go test -update rewrites it):\n%s", path, got)
			}
			checkLadderMPD(t, d, got)
			if err := fixture.ValidateMPD(t, path); err != nil {
				t.Fatal(err)
			}
			s := string(got)
			// The Periods: lo's first segment starts the first; the second
			// has hi and mid alone, hi from segment 4 (at 10 s of the
			// ladder's timeline and 11 s of its own), mid from segment 15.
			for _, want := range []string{
				`<Period id="l0-4000" start="PT4.000S">`, `<Period id="l1-10000" start="PT10.000S">`,
				`segmentAlignment="true"`, `id="demo_lo/v"`,
				`presentationTimeOffset="990000" initialization="demo_hi/v/init-ehi-1.mp4" media="demo_hi/v/ehi-$Number$.m4s"`,
			} {
				if !strings.Contains(s, want) {
					t.Errorf("no %s", want)
				}
			}
			if second := s[strings.Index(s, `id="l1-10000"`):]; strings.Contains(second, "demo_lo") {
				t.Errorf("the member that left is in the second Period")
			}
		})
	}
	d := ladderDoc(false)
	d.Aligned, d.Live = false, false
	for _, r := range d.Periods[0].Rungs {
		r.View.Live, r.View.Ended = false, true
	}
	s := string(manifest.LadderMPD(nil, d))
	if !strings.Contains(s, `type="static"`) || !strings.Contains(s, `mediaPresentationDuration="PT12.000S"`) || strings.Contains(s, `segmentAlignment="true"`) {
		t.Errorf("a ladder whose members all left, cut at other instants:\n%s", s)
	}
	if out := manifest.LadderMPD([]byte("x"), &manifest.LadderDoc{AST: ladderAST, Periods: []manifest.LadderPeriod{{ID: "l0"}}}); string(out) != "x" {
		t.Errorf("a ladder without Representations rendered %q", out)
	}
}

// TestLadderMPDAudioGolden: a multitrack publish's ladder with two audio
// tracks has an audio AdaptationSet per track, each with its language (und
// when unknown or malformed), a Label and a Role: main for track 0, the
// metadata's for another when it is a DASH role, else alternate.
func TestLadderMPDAudioGolden(t *testing.T) {
	own := memberView("eown", 0, 1000, 0, 3, track(1280, 720, "avc1.64001f"), true, false, 2_500_000)
	v1 := memberView("ev1", 0, 1000, 0, 3, track(640, 360, "avc1.64001e"), false, false, 900_000)
	a1 := memberView("ea1", 0, 1000, 0, 3, nil, true, false, 0)
	a2 := memberView("ea2", 0, 1000, 0, 3, nil, true, false, 0)
	rungs := []manifest.Rung{
		{Prefix: "", View: own, Audio: &manifest.AudioLabel{ID: 0, Language: "en"}},
		{Prefix: "v1/", View: v1},
		{Prefix: "a2/", View: a2, Audio: &manifest.AudioLabel{ID: 2, Name: "Fans <&>", Language: "es_ES", Role: "cheering"}},
		{Prefix: "a1/", View: a1, Audio: &manifest.AudioLabel{ID: 1, Name: "Commentary", Language: "de", Role: "commentary"}},
	}
	d := &manifest.LadderDoc{AST: ladderAST, Live: true, Aligned: true, Periods: []manifest.LadderPeriod{
		{ID: "l0-1000", Start: 1000, Rungs: rungs, Member: []*manifest.Period{own.Window[0].Period, v1.Window[0].Period, a2.Window[0].Period, a1.Window[0].Period}},
	}}
	got := manifest.LadderMPD(nil, d)
	path := filepath.Join("testdata", "ladder-audio.mpd")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("ladder MPD differs from %s (go test -update rewrites it):\n%s", path, got)
	}
	checkLadderMPD(t, d, got)
	if err := fixture.ValidateMPD(t, path); err != nil {
		t.Fatal(err)
	}
	s := string(got)
	for _, want := range []string{
		`contentType="audio" mimeType="audio/mp4" segmentAlignment="true" startWithSAP="1" lang="en">` + "\n      <Label>Audio 1</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"main\"/>\n      <Representation id=\"a\"",
		`lang="de">` + "\n      <Label>Commentary</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"commentary\"/>\n      <Representation id=\"a1/a\"",
		`lang="und">` + "\n      <Label>Fans &lt;&amp;&gt;</Label>\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"alternate\"/>\n      <Representation id=\"a2/a\"",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("no %s", want)
		}
	}
	if n := strings.Count(s, `contentType="audio"`); n != 3 {
		t.Errorf("%d audio AdaptationSets, want 3", n)
	}
}

// FuzzLadderMPD renders ladders of up to four Views built as FuzzManifest
// builds one, in up to three Periods each presenting some of the rungs' own
// Periods, and checks the MPD: well-formed, pure and appending, Periods in
// order, each Representation's files under its own rung's prefix, unique
// ids, each SegmentTimeline in order, and the type the ladder's state says.
func FuzzLadderMPD(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 2, 0, 7, 40, 3, 7, 3, 1, 1, 1, 2, 1, 0, 10, 3, 3, 5, 0, 100, 4, 1, 50, 0, 2, 1, 3, 9, 60, 1, 1, 1, 1, 4, 0, 0, 0, 5, 0, 0, 20, 20, 20, 1, 3, 8, 2, 1, 200, 1, 5, 1, 17, 80, 2, 34, 80, 72, 1})
	f.Add([]byte{2, 3, 1, 3, 0, 9, 2, 1, 0, 1, 2, 2, 9, 90, 9, 9, 1, 10, 2, 6, 0, 30, 0, 3, 0, 100, 1, 4, 1, 100, 1, 1, 1, 40, 1, 9, 2, 1, 0, 1, 2, 2, 9, 90, 9, 9, 1, 10, 2, 6, 0, 30, 0, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) < 4 {
			return
		}
		n, np, live, aligned := int(data[0]%5), int(data[1]%4), data[2]&1 == 1, data[2]&2 == 2
		stride := (int64(data[3]) + 1) * 40 // the packager opens Periods at increasing starts
		data = data[4:]
		rungs := make([]manifest.Rung, n)
		for i := range rungs {
			chunk := data[i*len(data)/max(n, 1) : (i+1)*len(data)/max(n, 1)]
			rungs[i] = manifest.Rung{Prefix: "s" + strconv.Itoa(i) + "/", View: buildView(chunk)}
			if len(chunk) > 0 && chunk[0]&4 != 0 {
				// A multitrack publish's audio track, labelled from the data.
				rungs[i].Audio = &manifest.AudioLabel{ID: i, Name: string(chunk[:min(len(chunk), 3)]), Language: string(chunk[len(chunk)/2:]), Role: []string{"commentary", "main", "x"}[int(chunk[0])%3]}
			}
		}
		d := &manifest.LadderDoc{AST: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Live: live, Aligned: aligned}
		for k := 0; k < np; k++ {
			lp := manifest.LadderPeriod{ID: "l" + strconv.Itoa(k), Start: int64(k) * stride}
			if k < np-1 {
				lp.End = int64(k+1) * stride
			}
			for i, r := range rungs {
				// The rung's k-th own Period, or its last.
				var own []*manifest.Period
				for _, seg := range r.View.Window {
					if seg.Period != nil && (len(own) == 0 || own[len(own)-1] != seg.Period) {
						own = append(own, seg.Period)
					}
				}
				if len(own) == 0 || (i+k)%3 == 2 {
					continue
				}
				lp.Rungs = append(lp.Rungs, r)
				lp.Member = append(lp.Member, own[min(k, len(own)-1)])
			}
			d.Periods = append(d.Periods, lp)
		}
		out := manifest.LadderMPD([]byte("keep"), d)
		if !bytes.HasPrefix(out, []byte("keep")) {
			t.Fatal("dst's bytes were overwritten")
		}
		out = out[4:]
		if again := manifest.LadderMPD(nil, d); !bytes.Equal(out, again) {
			t.Fatalf("two renders differ:\n%s\n%s", out, again)
		}
		if len(out) > 0 {
			checkLadderMPD(t, d, out)
		}
	})
}

// checkLadderMPD checks a ladder MPD's structure against the doc it was
// rendered from.
func checkLadderMPD(t *testing.T, d *manifest.LadderDoc, doc []byte) {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	var (
		starts []float64
		ids    map[string]bool
		rep    string
		lastT  int64 = -1
		depth  int
	)
	for {
		tok, err := dec.Token()
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
				s, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(attr(e, "start"), "PT"), "S"), 64)
				if err != nil || len(starts) > 0 && s <= starts[len(starts)-1] {
					t.Fatalf("Period start %q after %v:\n%s", attr(e, "start"), starts, doc)
				}
				starts = append(starts, s)
				ids = map[string]bool{}
			case "Representation":
				rep = attr(e, "id")
				if ids[rep] {
					t.Fatalf("Representation id %q twice in a Period:\n%s", rep, doc)
				}
				ids[rep] = true
			case "SegmentTemplate":
				prefix := rep[:strings.LastIndexByte(rep, '/')+1]
				track := rep[len(prefix):] + "/"
				for _, a := range []string{"initialization", "media"} {
					if !strings.HasPrefix(attr(e, a), prefix+track) {
						t.Fatalf("Representation %s: %s %q not under its prefix:\n%s", rep, a, attr(e, a), doc)
					}
				}
				found := false
				for _, p := range d.Periods {
					for _, r := range p.Rungs {
						found = found || r.Prefix == prefix
					}
				}
				if !found {
					t.Fatalf("Representation %s of no rung:\n%s", rep, doc)
				}
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
	typ := "static"
	if d.Live {
		typ = "dynamic"
	}
	if !bytes.Contains(doc, []byte(`type="`+typ+`"`)) {
		t.Fatalf("MPD not %s:\n%s", typ, doc)
	}
	want := `segmentAlignment="false"`
	if d.Aligned {
		want = `segmentAlignment="true"`
	}
	if !bytes.Contains(doc, []byte(want)) {
		t.Fatalf("no %s:\n%s", want, doc)
	}
}
