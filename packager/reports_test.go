package packager_test

import (
	"cmp"
	"fmt"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// rendition is one media playlist of a ladder and the URLs it is served at.
type rendition struct {
	name, path string // stream and playlist path within it
	urls       []string
}

func (r rendition) key() string { return r.name + "|" + r.path }

// llReport is a parsed EXT-X-RENDITION-REPORT.
type llReport struct {
	uri       string
	msn       uint64
	part      int
	malformed bool
}

func parseReports(b []byte) []llReport {
	var out []llReport
	for _, line := range strings.Split(string(b), "\n") {
		val, ok := strings.CutPrefix(line, "#EXT-X-RENDITION-REPORT:")
		if !ok {
			continue
		}
		r := llReport{malformed: true}
		n := 0
		for _, kv := range strings.Split(val, ",") {
			k, v, _ := strings.Cut(kv, "=")
			var err error
			switch k {
			case "URI":
				r.uri, n = strings.Trim(v, `"`), n+1
			case "LAST-MSN":
				r.msn, err = strconv.ParseUint(v, 10, 64)
				n++
			case "LAST-PART":
				r.part, err = strconv.Atoi(v)
				n++
			}
			if err != nil {
				n = -10
			}
		}
		r.malformed = n != 3
		out = append(out, r)
	}
	return out
}

// lastPart is the newest part an LL-HLS playlist lists ("<epoch>-<msn>.<n>.m4s")
// and whether it lists part msn.n at all.
func lastPart(b []byte) (msn uint64, n int, listed map[[2]uint64]bool) {
	listed = map[[2]uint64]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		val, ok := strings.CutPrefix(line, "#EXT-X-PART:")
		if !ok {
			continue
		}
		_, uri, _ := strings.Cut(val, `URI="`)
		uri, _, _ = strings.Cut(uri, `"`)
		name := strings.TrimSuffix(uri, ".m4s")
		name = name[strings.LastIndex(name, "-")+1:]
		m, p, _ := strings.Cut(name, ".")
		mv, err1 := strconv.ParseUint(m, 10, 64)
		pv, err2 := strconv.Atoi(p)
		if err1 != nil || err2 != nil {
			continue
		}
		msn, n = mv, pv
		listed[[2]uint64{mv, uint64(pv)}] = true
	}
	return msn, n, listed
}

// checkReports fetches each rendition's LL-HLS playlist and then the
// playlists its rendition reports name, resolved against each URL the
// rendition is served at. Every report must name a rendition of the ladder
// and never be ahead of that playlist fetched after it; with exact, the
// reports must be every other rendition once, equal to its last part, and
// listed in it. It returns the failures rather than failing, so that it can
// run beside the publisher.
func checkReports(h *packager.Hub, rs []rendition, resolve func(urlPath string) (rendition, bool), exact bool) []string {
	var errs []string
	fail := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	for _, r := range rs {
		st, err := h.Stream("live", r.name)
		if err != nil {
			fail("%s: %v", r.name, err)
			continue
		}
		obj, ok := st.Snapshot().Object(r.path)
		if !ok {
			if exact {
				fail("%s %s not served", r.name, r.path)
			}
			continue
		}
		reports := parseReports(obj.Data)
		for _, base := range r.urls {
			seen := map[string]bool{}
			for _, rep := range reports {
				if rep.malformed {
					fail("%s: malformed report %+v", base, rep)
					continue
				}
				u, err := url.Parse(base)
				ref, err2 := url.Parse(rep.uri)
				if err != nil || err2 != nil {
					fail("%s: report URI %q", base, rep.uri)
					continue
				}
				peer, ok := resolve(u.ResolveReference(ref).Path)
				if !ok || peer.key() == r.key() {
					fail("%s: report %q resolves to %s, no other rendition of the ladder", base, rep.uri, u.ResolveReference(ref).Path)
					continue
				}
				if seen[peer.key()] {
					fail("%s: %s reported twice", base, peer.key())
				}
				seen[peer.key()] = true
				pst, err := h.Stream("live", peer.name)
				if err != nil {
					fail("%s: %v", peer.name, err)
					continue
				}
				pobj, ok := pst.Snapshot().Object(peer.path)
				if !ok {
					fail("%s: reported %s is not served", base, peer.key())
					continue
				}
				msn, n, listed := lastPart(pobj.Data)
				if cmp.Or(cmp.Compare(rep.msn, msn), cmp.Compare(rep.part, n)) > 0 {
					fail("%s: report of %s at %d.%d is ahead of its playlist's last part %d.%d", base, peer.key(), rep.msn, rep.part, msn, n)
				}
				if exact && (rep.msn != msn || rep.part != n || !listed[[2]uint64{rep.msn, uint64(rep.part)}]) {
					fail("%s: report of %s at %d.%d, its last part is %d.%d", base, peer.key(), rep.msn, rep.part, msn, n)
				}
			}
			if exact {
				for _, o := range rs {
					if o.key() != r.key() && !seen[o.key()] {
						fail("%s: no report of %s:\n%s", base, o.key(), obj.Data)
					}
				}
			}
		}
	}
	return errs
}

// feed is one writer's frames of a ladder's publish.
type feed struct {
	w      remux.Writer
	frames []remux.Frame
}

// publishLadder writes the feeds' frames interleaved by DTS as one encoder
// would, in three stretches: up to 5 s with a reader checking the reports
// concurrently (no report ahead, under -race), up to 9 s checking after each
// half second of media, and the rest without a read, after which every
// playlist's reports must be exact.
func publishLadder(t *testing.T, h *packager.Hub, feeds []feed, rs []rendition, resolve func(string) (rendition, bool)) {
	t.Helper()
	type item struct {
		w remux.Writer
		f *remux.Frame
	}
	var all []item
	for _, fd := range feeds {
		for i := range fd.frames {
			all = append(all, item{fd.w, &fd.frames[i]})
		}
	}
	slices.SortStableFunc(all, func(a, b item) int { return cmp.Compare(a.f.DTS, b.f.DTS) })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var concurrent []string
	checks := 0
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			errs := checkReports(h, rs, resolve, false)
			mu.Lock()
			concurrent = append(concurrent, errs...)
			checks++
			mu.Unlock()
		}
	}()
	next := int64(5500)
	stopped := false
	for _, it := range all {
		if it.f.DTS >= 5000 && !stopped {
			close(stop)
			wg.Wait()
			stopped = true
			for _, e := range concurrent {
				t.Error("concurrent: " + e)
			}
			t.Logf("%d concurrent checks", checks)
		}
		if stopped && it.f.DTS >= next && next <= 9000 {
			for _, e := range checkReports(h, rs, resolve, false) {
				t.Errorf("at %d ms: %s", it.f.DTS, e)
			}
			next += 500
		}
		if err := it.w.WriteFrame(it.f); err != nil {
			t.Fatal(err)
		}
	}
	if !stopped {
		t.Fatal("the publish ended before 5 s")
	}
	for _, e := range checkReports(h, rs, resolve, true) {
		t.Error("at the end: " + e)
	}
}

// TestRenditionReportsTrackLadder: every LL-HLS media playlist of a
// multitrack publish (the stream's video and audio, video track 1's and
// audio track 1's renditions) reports every other one, with URIs that
// resolve from its own URL to the others' and values never ahead of them.
func TestRenditionReportsTrackLadder(t *testing.T) {
	h, _ := newHub(t, packager.Config{})
	w := mustPublish(t, h, "live", "demo")
	tw, err := w.(remux.TrackOpener).OpenTrack(1)
	if err != nil {
		t.Fatal(err)
	}
	aw, err := w.(remux.AudioTrackOpener).OpenAudioTrack(1)
	if err != nil {
		t.Fatal(err)
	}
	solo := mustPublish(t, h, "live", "solo")
	main := media{video: videoB, audio: audioA, vStep: 40, gops: []int64{50}, until: 11300}
	track := media{video: videoA, vStep: 40, gops: []int64{50}, until: 11300}
	audio := media{audio: audioA, until: 11300}
	for _, p := range []struct {
		w remux.Writer
		m media
	}{{w, main}, {tw, track}, {aw, audio}, {solo, main}} {
		if err := p.w.WriteMetadata(&remux.Metadata{HasVideo: p.m.video != nil, HasAudio: p.m.audio != nil}); err != nil {
			t.Fatal(err)
		}
		for _, tr := range []*remux.Track{p.m.video, p.m.audio} {
			if tr != nil {
				if err := p.w.WriteTrack(tr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	rs := []rendition{
		{"demo", packager.VideoPlaylistPath, []string{"/live/demo/v/index.m3u8"}},
		{"demo", packager.AudioPlaylistPath, []string{"/live/demo/a/index.m3u8"}},
		{"demo/v1", packager.VideoPlaylistPath, []string{"/live/demo/v1/v/index.m3u8"}},
		{"demo/a1", packager.AudioPlaylistPath, []string{"/live/demo/a1/a/index.m3u8"}},
	}
	resolve := func(p string) (rendition, bool) {
		for _, r := range rs {
			if r.urls[0] == p {
				return r, true
			}
		}
		return rendition{}, false
	}
	publishLadder(t, h, []feed{{w, main.frames()}, {tw, track.frames()}, {aw, audio.frames()}, {solo, main.frames()}}, rs, resolve)

	got := parseReports(mustObject(t, mustStream(t, h, "live", "demo").Snapshot(), packager.VideoPlaylistPath))
	var uris []string
	for _, r := range got {
		uris = append(uris, r.uri)
	}
	if want := "../a/index.m3u8 ../v1/v/index.m3u8 ../a1/a/index.m3u8"; strings.Join(uris, " ") != want {
		t.Errorf("demo's video reports %v, want %s", uris, want)
	}
	// A stream of no ladder reports its own other track only.
	if got := parseReports(mustObject(t, mustStream(t, h, "live", "solo").Snapshot(), packager.VideoPlaylistPath)); len(got) != 1 || got[0].uri != "../a/index.m3u8" {
		t.Errorf("solo's reports %+v", got)
	}
	for _, wr := range []remux.Writer{aw, tw, w, solo} {
		closeWriter(t, wr)
	}
	// Ended: no report at all.
	if got := parseReports(mustObject(t, mustStream(t, h, "live", "demo/v1").Snapshot(), packager.VideoPlaylistPath)); len(got) != 0 {
		t.Errorf("ended rendition reports %+v", got)
	}
}

// TestRenditionReportsGroupedLadder: the members of a Config.Variants
// ladder report each other's video and audio playlists with URIs that
// resolve both from a member's own URL (/live/demo_hi/v/) and from the
// ladder's (/live/demo/demo_hi/v/).
func TestRenditionReportsGroupedLadder(t *testing.T) {
	h, _ := newHub(t, packager.Config{Variants: []string{"_hi", "_mid", "_lo"}})
	var feeds []feed
	var rs []rendition
	for i, suf := range []string{"_hi", "_mid", "_lo"} {
		name := "demo" + suf
		w := mustPublish(t, h, "live", name)
		defer closeWriter(t, w)
		m := media{video: []*remux.Track{videoB, videoA, videoA}[i], audio: audioA, vStep: 40, gops: []int64{50}, until: 11300}
		if err := w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: true}); err != nil {
			t.Fatal(err)
		}
		for _, tr := range []*remux.Track{m.video, m.audio} {
			if err := w.WriteTrack(tr); err != nil {
				t.Fatal(err)
			}
		}
		feeds = append(feeds, feed{w, m.frames()})
		for _, p := range []string{packager.VideoPlaylistPath, packager.AudioPlaylistPath} {
			rs = append(rs, rendition{name, p, []string{"/live/" + name + "/" + p, "/live/demo/" + name + "/" + p}})
		}
	}
	resolve := func(p string) (rendition, bool) {
		rest, ok := strings.CutPrefix(p, "/live/")
		if !ok {
			return rendition{}, false
		}
		rest = strings.TrimPrefix(rest, "demo/") // the ladder's URL of a member
		for _, r := range rs {
			if rest == r.name+"/"+r.path {
				return r, true
			}
		}
		return rendition{}, false
	}
	publishLadder(t, h, feeds, rs, resolve)
	got := parseReports(mustObject(t, mustStream(t, h, "live", "demo_mid").Snapshot(), packager.AudioPlaylistPath))
	var uris []string
	for _, r := range got {
		uris = append(uris, path.Clean(r.uri))
	}
	if want := "../v/index.m3u8 ../../demo_hi/v/index.m3u8 ../../demo_hi/a/index.m3u8 ../../demo_lo/v/index.m3u8 ../../demo_lo/a/index.m3u8"; strings.Join(uris, " ") != want {
		t.Errorf("demo_mid's audio reports %v, want %s", uris, want)
	}
}

// writeInterleaved writes the feeds' frames interleaved by DTS.
func writeInterleaved(t *testing.T, feeds ...feed) {
	t.Helper()
	idx := make([]int, len(feeds))
	for {
		best := -1
		for i, fd := range feeds {
			if idx[i] < len(fd.frames) && (best < 0 || fd.frames[idx[i]].DTS < feeds[best].frames[idx[best]].DTS) {
				best = i
			}
		}
		if best < 0 {
			return
		}
		writeFrames(t, feeds[best].w, feeds[best].frames[idx[best]:idx[best]+1])
		idx[best]++
	}
}

// TestRenditionReportsMembership: a key of a variants ladder that is also a
// multitrack publish reports its track rendition and the other key; a key
// whose publisher left is no longer reported, and is again once it is back,
// as is a key published later.
func TestRenditionReportsMembership(t *testing.T) {
	h, _ := newHub(t, packager.Config{Variants: []string{"_hi", "_mid", "_lo"}})
	hi := mustPublish(t, h, "live", "demo_hi")
	tw, err := hi.(remux.TrackOpener).OpenTrack(1)
	if err != nil {
		t.Fatal(err)
	}
	lo := mustPublish(t, h, "live", "demo_lo")
	main := media{video: videoB, audio: audioA, vStep: 40, gops: []int64{50}, until: 8300}
	track := media{video: videoA, vStep: 40, gops: []int64{50}, until: 8300}
	start := func(w remux.Writer, m media) {
		if err := w.WriteMetadata(&remux.Metadata{HasVideo: true, HasAudio: m.audio != nil}); err != nil {
			t.Fatal(err)
		}
		for _, tr := range []*remux.Track{m.video, m.audio} {
			if tr != nil {
				if err := w.WriteTrack(tr); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	start(hi, main)
	start(tw, track)
	start(lo, main)
	writeInterleaved(t, feed{hi, main.frames()}, feed{tw, track.frames()}, feed{lo, main.frames()})
	uris := func(name, path string) string {
		var out []string
		for _, r := range parseReports(mustObject(t, mustStream(t, h, "live", name).Snapshot(), path)) {
			out = append(out, r.uri)
		}
		return strings.Join(out, " ")
	}
	for _, c := range []struct{ name, path, want string }{
		{"demo_hi", packager.VideoPlaylistPath, "../a/index.m3u8 ../v1/v/index.m3u8 ../../demo_lo/v/index.m3u8 ../../demo_lo/a/index.m3u8"},
		{"demo_hi/v1", packager.VideoPlaylistPath, "../../v/index.m3u8 ../../a/index.m3u8"},
		{"demo_lo", packager.AudioPlaylistPath, "../v/index.m3u8 ../../demo_hi/v/index.m3u8 ../../demo_hi/a/index.m3u8"},
	} {
		if got := uris(c.name, c.path); got != c.want {
			t.Errorf("%s %s reports %s, want %s", c.name, c.path, got, c.want)
		}
	}

	closeWriter(t, lo)
	more := func(m media) media { m.start, m.until = 8300, 10300; return m }
	writeInterleaved(t, feed{hi, more(main).frames()}, feed{tw, more(track).frames()})
	if got, want := uris("demo_hi", packager.VideoPlaylistPath), "../a/index.m3u8 ../v1/v/index.m3u8"; got != want {
		t.Errorf("demo_lo left: demo_hi reports %s, want %s", got, want)
	}

	// demo_mid is a new stream: the others' peers are looked up again.
	lo, mid := mustPublish(t, h, "live", "demo_lo"), mustPublish(t, h, "live", "demo_mid")
	start(lo, main)
	start(mid, main)
	back := media{video: videoB, audio: audioA, vStep: 40, gops: []int64{50}, until: 4300}
	later := func(m media) media { m.start, m.until = 10300, 14600; return m }
	loFrames := back.frames()
	for i := range loFrames {
		loFrames[i].DTS += 10300 // on the publish's clock, to interleave
	}
	writeInterleaved(t, feed{hi, later(main).frames()}, feed{tw, later(track).frames()}, feed{lo, loFrames}, feed{mid, loFrames})
	if got, want := uris("demo_hi", packager.VideoPlaylistPath), "../a/index.m3u8 ../v1/v/index.m3u8 ../../demo_mid/v/index.m3u8 ../../demo_mid/a/index.m3u8 ../../demo_lo/v/index.m3u8 ../../demo_lo/a/index.m3u8"; got != want {
		t.Errorf("demo_lo back, demo_mid new: demo_hi reports %s, want %s", got, want)
	}
	for _, w := range []remux.Writer{mid, lo, tw, hi} {
		closeWriter(t, w)
	}
}
