package manifest_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
	"github.com/rtmpgate/rtmpgate/remux"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// rungView is a live stream's View with one CMAF segment of the given track set.
func rungView(w, h int, peak, avg int64, fps float64, withAudio, captions bool) *manifest.View {
	vt := *video
	vt.Width, vt.Height = w, h
	in := [2]*manifest.Init{{Name: "init-e-1.mp4", Path: "v/init-e-1.mp4", Track: &vt}}
	if withAudio {
		in[manifest.Audio] = &manifest.Init{Name: "init-e-1.mp4", Path: "a/init-e-1.mp4", Track: audio}
	}
	return &manifest.View{
		Epoch: "e", Live: true, Target: 2,
		Window: []*manifest.Segment{{Seq: 0, Name: "e-0.ts", Dur: 2000, PDT: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), Init: in}},
		Rates:  manifest.Rates{Peak: peak, Avg: avg, FPS: fps, Captions: captions},
	}
}

func TestLadderGolden(t *testing.T) {
	audioOnly := rungView(0, 0, 9e6, 9e6, 0, true, false)
	audioOnly.Window[0].Init[manifest.Video] = nil
	noCMAF := rungView(1920, 1080, 8e6, 7e6, 30, true, false)
	noCMAF.Window[0].Init = [2]*manifest.Init{}
	rungs := []manifest.Rung{
		{Prefix: "demo_lo/", View: rungView(320, 180, 400_000, 350_000, 30, true, false)},
		{Prefix: "demo_hi/", View: rungView(1280, 720, 3_200_000, 2_900_000, 29.97, true, true)},
		{Prefix: "demo_audio/", View: audioOnly}, // no video: not a variant
		{Prefix: "demo_ts/", View: noCMAF},       // TS only: not a variant
		{Prefix: "demo_mid/", View: rungView(640, 360, 1_100_000, 1_000_000, 30, false, false)},
		{Prefix: "demo_none/", View: nil},
	}
	got := manifest.Ladder(nil, rungs)
	path := filepath.Join("testdata", "ladder.m3u8")
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
		t.Fatalf("ladder differs from %s (go test -update rewrites it):\n%s", path, got)
	}
	checkLadder(t, rungs, string(got))
	if out := manifest.Ladder([]byte("x"), rungs[2:4]); string(out) != "x" {
		t.Fatalf("a ladder without video renditions rendered %q", out)
	}
}

// TestTrackLadderGolden: the renditions of one multitrack publish share the
// stream's own audio: one group, every variant refers to it, and a rendition
// without audio of its own is announced with the audio's peak added.
func TestTrackLadderGolden(t *testing.T) {
	own := rungView(1280, 720, 3_200_000, 2_900_000, 29.97, true, false)
	own.Rates.Track[manifest.Audio] = 130_000
	rungs := []manifest.Rung{
		{Prefix: "", View: own},
		{Prefix: "v2/", View: rungView(320, 180, 400_000, 350_000, 29.97, false, false)},
		{Prefix: "v1/", View: rungView(640, 360, 1_100_000, 1_000_000, 29.97, false, true)},
	}
	got := manifest.TrackLadder(nil, rungs, rungs[0])
	path := filepath.Join("testdata", "track_ladder.m3u8")
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
		t.Fatalf("track ladder differs from %s (go test -update rewrites it):\n%s", path, got)
	}
	checkTrackLadder(t, rungs, string(got))
}

// TestTrackLadderAudioGolden: a multitrack publish with three audio tracks,
// labelled by its metadata or not, lists each in the one group, track 0
// first and the default, with unique NAMEs, LANGUAGE when well formed, and
// the largest audio peak in the video-only variants' BANDWIDTH.
func TestTrackLadderAudioGolden(t *testing.T) {
	own := rungView(1280, 720, 3_200_000, 2_900_000, 29.97, true, false)
	own.Rates.Track[manifest.Audio] = 130_000
	v1 := rungView(640, 360, 1_100_000, 1_000_000, 29.97, false, false)
	a1 := rungView(0, 0, 200_000, 190_000, 0, true, false)
	a1.Window[0].Init[manifest.Video] = nil
	a1.Rates.Track[manifest.Audio] = 200_000
	a2 := rungView(0, 0, 64_000, 60_000, 0, true, false)
	a2.Window[0].Init[manifest.Video] = nil
	a2.Rates.Track[manifest.Audio] = 64_000
	a3 := rungView(0, 0, 64_000, 60_000, 0, true, false)
	a3.Window[0].Init[manifest.Video] = nil
	a3.Rates.Track[manifest.Audio] = 64_000
	rungs := []manifest.Rung{
		{Prefix: "", View: own, Audio: &manifest.AudioLabel{ID: 0, Name: "English", Language: "en"}},
		{Prefix: "v1/", View: v1},
		{Prefix: "a2/", View: a2, Audio: &manifest.AudioLabel{ID: 2, Language: "en_US!"}}, // no name, a malformed language
		{Prefix: "a1/", View: a1, Audio: &manifest.AudioLabel{ID: 1, Name: "Director's \"commentary\"\n", Language: "pt-BR", Role: "commentary"}},
		{Prefix: "a3/", View: a3, Audio: &manifest.AudioLabel{ID: 3, Name: "English"}}, // a name taken
	}
	got := manifest.TrackLadder(nil, rungs, rungs[0], rungs[2], rungs[3], rungs[4])
	path := filepath.Join("testdata", "track_ladder_audio.m3u8")
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
		t.Fatalf("track ladder differs from %s (go test -update rewrites it):\n%s", path, got)
	}
	pl := string(got)
	checkTrackAudio(t, pl)
	for _, want := range []string{
		`NAME="English",LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="a/index.m3u8"`,
		`NAME="Director's commentary",LANGUAGE="pt-BR",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="a1/a/index.m3u8"`,
		`NAME="Audio 3",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2",URI="a2/a/index.m3u8"`,
		`NAME="English 4",DEFAULT=NO`,
		// v1 announces its rates plus the largest audio's peak, own the difference to it.
		`BANDWIDTH=1300000,AVERAGE-BANDWIDTH=1200000`, `BANDWIDTH=3270000,AVERAGE-BANDWIDTH=2970000`,
	} {
		if !strings.Contains(pl, want) {
			t.Errorf("no %s:\n%s", want, pl)
		}
	}
}

var mediaNameRe = regexp.MustCompile(`NAME="([^"]*)"`)

// checkTrackAudio holds a TrackLadder's audio group to RFC 8216bis 4.4.6.1:
// unique NAMEs, at most one DEFAULT=YES (the first), every variant
// referring to the group.
func checkTrackAudio(t *testing.T, pl string) {
	t.Helper()
	names := map[string]bool{}
	defaults := 0
	for i, l := range strings.Split(pl, "\n") {
		if !strings.HasPrefix(l, "#EXT-X-MEDIA:TYPE=AUDIO,") {
			continue
		}
		m := mediaNameRe.FindStringSubmatch(l)
		if m == nil || m[1] == "" || names[m[1]] {
			t.Fatalf("line %d: NAME missing or repeated:\n%s", i, pl)
		}
		names[m[1]] = true
		if strings.Contains(l, "DEFAULT=YES") {
			if defaults++; len(names) != 1 {
				t.Fatalf("line %d: a default after the first rendition:\n%s", i, pl)
			}
		}
	}
	if len(names) > 0 && defaults != 1 {
		t.Fatalf("%d defaults:\n%s", defaults, pl)
	}
}

// checkTrackLadder holds a TrackLadder over rungs, rungs[0] the audio, to
// every variant listed and one audio group, rungs[0]'s, for all.
func checkTrackLadder(t *testing.T, rungs []manifest.Rung, pl string) {
	t.Helper()
	n := 0
	for _, r := range rungs {
		if r.View == nil {
			continue
		}
		for k := len(r.View.Window) - 1; k >= 0; k-- {
			if seg := r.View.Window[k]; seg.HasCMAF() {
				if seg.Init[manifest.Video] != nil {
					n++
				}
				break
			}
		}
	}
	if got := strings.Count(pl, "#EXT-X-STREAM-INF:"); got != n {
		t.Fatalf("%d variants, want %d:\n%s", got, n, pl)
	}
	groups := strings.Count(pl, "TYPE=AUDIO")
	if groups > 1 || groups == 1 && (!strings.Contains(pl, `GROUP-ID="aac",`) || !strings.Contains(pl, `URI="`+rungs[0].Prefix+manifest.AudioPlaylistPath+`"`)) {
		t.Fatalf("not one audio group, the first rung's:\n%s", pl)
	}
	if refs := strings.Count(pl, `,AUDIO="`); refs != groups*n || refs != strings.Count(pl, `,AUDIO="aac",`) {
		t.Fatalf("%d variants refer to audio, want all %d to the one group:\n%s", refs, groups*n, pl)
	}
}

// FuzzLadder renders ladders of up to four Views built as FuzzManifest builds
// one and checks the multivariant playlist: one variant per rung with a
// CMAF video track, highest BANDWIDTH first, each URI its rung's video
// playlist, every AUDIO group defined with its rung's audio playlist, and
// the render pure and appending.
func FuzzLadder(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{3, 7, 3, 1, 1, 1, 2, 1, 0, 10, 3, 3, 5, 0, 100, 4, 1, 50, 0, 2, 1, 3, 9, 60, 1, 1, 1, 1, 4, 0, 0, 0, 5, 0, 0, 20, 20, 20, 1, 3, 8, 2, 1, 200, 1, 5, 1, 17, 80, 2, 34, 80, 72, 1})
	f.Add([]byte{2, 9, 2, 1, 0, 1, 2, 2, 9, 90, 9, 9, 1, 10, 2, 6, 0, 30, 0, 3, 0, 100, 1, 4, 1, 100, 1, 1, 1, 40, 1, 9, 2, 1, 0, 1, 2, 2, 9, 90, 9, 9, 1, 10, 2, 6, 0, 30, 0, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		n := 0
		if len(data) > 0 {
			n, data = int(data[0]%5), data[1:]
		}
		rungs := make([]manifest.Rung, n)
		for i := range rungs {
			chunk := data[i*len(data)/n : (i+1)*len(data)/n]
			rungs[i] = manifest.Rung{Prefix: "s" + strconv.Itoa(i) + "/", View: buildView(chunk)}
		}
		out := manifest.Ladder([]byte("keep"), rungs)
		if !bytes.HasPrefix(out, []byte("keep")) {
			t.Fatal("dst's bytes were overwritten")
		}
		out = out[4:]
		if again := manifest.Ladder(nil, rungs); !bytes.Equal(out, again) {
			t.Fatalf("two renders differ:\n%s\n%s", out, again)
		}
		checkLadder(t, rungs, string(out))
		if n > 0 {
			checkTrackLadder(t, rungs, string(manifest.TrackLadder(nil, rungs, rungs[0])))
			// The same rungs as one publish's audio tracks, labelled from
			// the data: names may repeat or be empty, languages malformed.
			for i := range rungs {
				var b byte
				if len(data) > i {
					b = data[len(data)-1-i]
				}
				rungs[i].Audio = &manifest.AudioLabel{ID: i, Name: []string{"", "a", "A\"\n", "a 2"}[b%4], Language: []string{"", "en", "x-", "de-CH"}[b/4%4]}
			}
			pl := string(manifest.TrackLadder(nil, rungs, rungs...))
			checkTrackAudio(t, pl)
		}
	})
}

var bandwidthRe = regexp.MustCompile(`^#EXT-X-STREAM-INF:BANDWIDTH=(\d+),AVERAGE-BANDWIDTH=\d+,CODECS="[^"]+",RESOLUTION=\d+x\d+(,FRAME-RATE=[\d.]+)?(,AUDIO="([^"]+)")?,CLOSED-CAPTIONS=(NONE|"[^"]+")$`)

func checkLadder(t *testing.T, rungs []manifest.Rung, pl string) {
	t.Helper()
	want := map[string]*manifest.Rung{} // URI of each rung that must be a variant
	for i, r := range rungs {
		if r.View == nil {
			continue
		}
		for k := len(r.View.Window) - 1; k >= 0; k-- {
			if seg := r.View.Window[k]; seg.HasCMAF() {
				if seg.Init[manifest.Video] != nil {
					want[r.Prefix+manifest.VideoPlaylistPath] = &rungs[i]
				}
				break
			}
		}
	}
	if len(want) == 0 {
		if pl != "" {
			t.Fatalf("a ladder without video renditions:\n%s", pl)
		}
		return
	}
	lines := strings.Split(strings.TrimSuffix(pl, "\n"), "\n")
	if lines[0] != "#EXTM3U" || lines[1] != "#EXT-X-VERSION:6" {
		t.Fatalf("bad header:\n%s", pl)
	}
	groups := map[string]string{} // audio GROUP-ID: URI
	for _, l := range lines {
		if strings.HasPrefix(l, "#EXT-X-MEDIA:TYPE=AUDIO,") {
			id := regexp.MustCompile(`GROUP-ID="([^"]+)"`).FindStringSubmatch(l)
			uri := regexp.MustCompile(`URI="([^"]+)"`).FindStringSubmatch(l)
			if id == nil || uri == nil || groups[id[1]] != "" {
				t.Fatalf("bad or repeated audio rendition %q:\n%s", l, pl)
			}
			groups[id[1]] = uri[1]
		}
	}
	seen, last := 0, int64(-1)
	for i, l := range lines {
		if !strings.HasPrefix(l, "#EXT-X-STREAM-INF:") {
			continue
		}
		m := bandwidthRe.FindStringSubmatch(l)
		if m == nil || i+1 >= len(lines) {
			t.Fatalf("bad variant %q:\n%s", l, pl)
		}
		bw, _ := strconv.ParseInt(m[1], 10, 64)
		if last >= 0 && bw > last {
			t.Fatalf("variants not highest BANDWIDTH first:\n%s", pl)
		}
		last = bw
		uri := lines[i+1]
		r := want[uri]
		if r == nil {
			t.Fatalf("variant URI %q is no rung's video playlist:\n%s", uri, pl)
		}
		delete(want, uri)
		prefix := strings.TrimSuffix(uri, manifest.VideoPlaylistPath)
		if m[4] != "" && groups[m[4]] != prefix+manifest.AudioPlaylistPath {
			t.Fatalf("variant %q's audio group %q is not its own audio (%q):\n%s", uri, m[4], groups[m[4]], pl)
		}
		seen++
	}
	if len(want) > 0 || seen == 0 {
		t.Fatalf("rungs left out (%d):\n%s", len(want), pl)
	}
}

var _ = remux.CodecH264
