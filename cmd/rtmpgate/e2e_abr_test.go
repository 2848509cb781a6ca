package main

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// abrCase is one player run of web/test/abr.mjs.
type abrCase struct {
	Name   string `json:"name"`
	Engine string `json:"engine"` // hls, dash or shaka
	Mode   string `json:"mode"`   // classic or lowLatency
	Src    string `json:"src"`
	// onsetStalls: a stall that starts between the throttle and the
	// down-switch is logged, not held to a segment (see abrCases).
	onsetStalls bool
}

// abrStall is a stall or a freeze: when it started (s since the page
// loaded) and how long it lasted.
type abrStall struct {
	At float64 `json:"at"`
	Ms int     `json:"ms"`
}

// abrStalls are a page's stalls or freezes, in the order they ended.
type abrStalls []abrStall

// String sums them up for the log: how many, their total and the longest, ms.
func (l abrStalls) String() string {
	total, longest := 0, 0
	for _, st := range l {
		total, longest = total+st.Ms, max(longest, st.Ms)
	}
	return fmt.Sprintf("%d (%d ms, longest %d: %v)", len(l), total, longest, []abrStall(l))
}

// abrResult is what abr.mjs prints for a case (times in s since its page
// loaded, 0 when it did not happen).
type abrResult struct {
	Name       string `json:"name"`
	LowLatency *bool  `json:"lowLatency"`
	Heights    []struct {
		Height int     `json:"height"`
		At     float64 `json:"at"`
	} `json:"heights"`
	Switches        []map[string]any `json:"switches"`
	Estimates       []*int           `json:"estimates"`
	ThrottledAt     float64          `json:"throttledAt"`
	DownAt          float64          `json:"downAt"`
	LiftedAt        float64          `json:"liftedAt"`
	UpAt            float64          `json:"upAt"`
	AdvancedAfterUp float64          `json:"advancedAfterUp"`
	StallList       abrStalls        `json:"stallList"`
	FreezeList      abrStalls        `json:"freezeList"`
	Fatal           []string         `json:"fatal"`
	Errors          []string         `json:"errors"`
	NotStarted      bool             `json:"notStarted"`
	PageError       string           `json:"pageerror"`
}

// abrCases are the four runs for a ladder served by a low-latency gateway
// (llOrigin) and a classic one (classicOrigin) at the same path: hls.js on
// the multivariant playlist and dash.js on the MPD, each in classic and in
// low-latency mode.
func abrCases(llOrigin, classicOrigin, path string) []abrCase {
	return []abrCase{
		{"hls.js classic", "hls", "classic", classicOrigin + path + "index.m3u8", false},
		{"dash.js classic", "dash", "classic", classicOrigin + path + "index.mpd", false},
		// In low-latency mode a player keeps about a second of media and
		// fetches the rendition playing as it is produced; when the network
		// falls to a quarter of that rendition's rate, what it has asked for
		// (the rest of the segment: a switch waits for the next independent
		// part, a segment start) arrives several times slower than real time
		// and playback waits for it before the switch. hls.js 1.7.4 can
		// abandon a part load but its estimate gets no sample while loads are
		// throttled (1.6 to 9.6 s of stall in docs/PLAYBACK.md's runs);
		// dash.js 5.2.1 cannot abandon at all: its AbandonRequestsRule needs
		// the response's total size (bytesLoaded < bytesTotal), which a
		// segment still being produced has not got, and its estimate changes
		// only when a request ends, so it finishes the top rendition's
		// segments at the throttled rate (6.7 to 8.2 s). No origin can
		// shorten that without more keyframes; these stalls are logged, and
		// the switches themselves are held to the bar.
		{"hls.js low-latency", "hls", "lowLatency", llOrigin + path + "index.m3u8", true},
		{"dash.js low-latency", "dash", "lowLatency", llOrigin + path + "index.mpd", true},
	}
}

// throttleKbps is a rate the lowest variant of the multivariant playlist at
// mvURL fits in and the one above it does not: halfway between their
// BANDWIDTHs (which count the audio too). good, the network before and after
// the throttle, is ten times the top variant's: a good link, but a finite
// one, as every viewer's is (see abr.mjs).
func throttleKbps(t *testing.T, mvURL string) (kbps, good int, bandwidths []int) {
	t.Helper()
	code, body := httpGet(t, mvURL)
	if code != 200 {
		t.Fatalf("%s: %d", mvURL, code)
	}
	vs, _ := parseLadder(string(body))
	for _, v := range vs {
		bw, err := strconv.Atoi(v.attrs["BANDWIDTH"])
		if err != nil {
			t.Fatalf("%s: BANDWIDTH of %s: %v", mvURL, v.uri, err)
		}
		bandwidths = append(bandwidths, bw)
	}
	slices.Sort(bandwidths)
	if len(bandwidths) < 2 {
		t.Fatalf("%s: %d variants, want a ladder", mvURL, len(bandwidths))
	}
	return (bandwidths[0] + bandwidths[1]) / 2 / 1000, 10 * bandwidths[len(bandwidths)-1] / 1000, bandwidths
}

// segmentSeconds is the target duration of the media playlist at plURL, the
// longest a segment may last.
func segmentSeconds(t *testing.T, plURL string) float64 {
	t.Helper()
	code, body := httpGet(t, plURL)
	if code != 200 {
		t.Fatalf("%s: %d", plURL, code)
	}
	pl := parseMediaPlaylist(t, string(body))
	if pl.targetDuration <= 0 {
		t.Fatalf("%s: no target duration\n%s", plURL, body)
	}
	return float64(pl.targetDuration)
}

// playABR runs the cases in one abr.mjs at once, each page throttled to kbps
// after 6 s until its picture's height falls and lifted until it rises, and
// judges every run against the bar: the picture goes down to one of
// heights under the throttle and up again after the lift, no stall (waiting
// to playing) and no freeze longer than a segment (segment s), no error the
// player gave up on, the mode asked for, and playback going on after the
// up-switch.
func playABR(t *testing.T, webDir string, kbps, good int, segment float64, heights []int, parallel int, cases []abrCase) {
	t.Helper()
	js, _ := json.Marshal(cases)
	start := time.Now()
	p := startProcess(t, "env", "TOP_HEIGHT="+strconv.Itoa(slices.Max(heights)), "PARALLEL="+strconv.Itoa(parallel),
		"node", webDir+"/test/abr.mjs", strconv.Itoa(kbps), string(js), strconv.Itoa(good))
	if err := p.wait(t, 150*time.Second); err != nil {
		t.Fatalf("abr.mjs: %v\n%s", err, p.output)
	}
	t.Logf("abr.mjs: %d players, %d at once, %d kbit/s throttled to %d kbit/s and back, in %.1f s", len(cases), parallel, good, kbps, time.Since(start).Seconds())
	got := map[string]abrResult{}
	for _, line := range strings.Split(strings.TrimSpace(p.output.String()), "\n") {
		var r abrResult
		if json.Unmarshal([]byte(line), &r) == nil && r.Name != "" {
			got[r.Name] = r
		}
	}
	limit := int(segment * 1000)
	for _, c := range cases {
		r, ok := got[c.Name]
		if !ok {
			t.Errorf("%s: no result\n%s", c.Name, tail(p.output.String(), 20))
			continue
		}
		var hs []string
		for _, h := range r.Heights {
			hs = append(hs, fmt.Sprintf("%dp@%.1f", h.Height, h.At))
		}
		ll := "?"
		if r.LowLatency != nil {
			ll = strconv.FormatBool(*r.LowLatency)
		}
		t.Logf("%s (low latency %s): heights %s; throttled at %.1f s, down after %.1f s, lifted at %.1f s, up after %.1f s, %.1f s played in 4 s after; stalls %v, freezes %v; player switches %v; estimates (kbit/s, 1 s apart) %v; errors %v %v",
			c.Name, ll, strings.Join(hs, " "), r.ThrottledAt, r.DownAt-r.ThrottledAt, r.LiftedAt, r.UpAt-r.LiftedAt, r.AdvancedAfterUp,
			r.StallList, r.FreezeList, r.Switches, estimates(r.Estimates), r.Fatal, r.Errors)
		switch {
		case r.PageError != "":
			t.Errorf("%s: %s", c.Name, r.PageError)
			continue
		case r.NotStarted:
			t.Errorf("%s: did not start within 30 s", c.Name)
			continue
		}
		if len(r.Fatal) > 0 {
			t.Errorf("%s: player errors %v", c.Name, r.Fatal)
		}
		if r.LowLatency == nil || *r.LowLatency != (c.Mode == "lowLatency") {
			t.Errorf("%s: the player's low-latency mode is %s", c.Name, ll)
		}
		for _, h := range r.Heights {
			if h.Height != 0 && !slices.Contains(heights, h.Height) {
				t.Errorf("%s: showed %dp, no rendition of the ladder %v", c.Name, h.Height, heights)
			}
		}
		if r.DownAt == 0 {
			t.Errorf("%s: the picture's height did not fall within 30 s at %d kbit/s", c.Name, kbps)
		}
		if r.UpAt == 0 {
			t.Errorf("%s: the picture's height did not rise within 40 s of the lift", c.Name)
		} else if r.AdvancedAfterUp < 3 {
			t.Errorf("%s: played %.1f s of media in the 4 s after the up-switch", c.Name, r.AdvancedAfterUp)
		}
		for _, st := range append(r.StallList, r.FreezeList...) {
			if st.Ms <= limit {
				continue
			}
			if c.onsetStalls && st.At >= r.ThrottledAt && (r.DownAt == 0 || st.At < r.DownAt) {
				t.Logf("%s: a stall of %d ms at %.1f s, between the throttle and the down-switch (not held to a segment: see abrCases)", c.Name, st.Ms, st.At)
				continue
			}
			t.Errorf("%s: a stall of %d ms at %.1f s, longer than a segment (%d ms)", c.Name, st.Ms, st.At, limit)
		}
	}
}

// ladderHeights is the RESOLUTION heights of the multivariant playlist at mvURL.
func ladderHeights(t *testing.T, mvURL string) []int {
	t.Helper()
	_, body := httpGet(t, mvURL)
	vs, _ := parseLadder(string(body))
	var hs []int
	for _, v := range vs {
		_, h, _ := strings.Cut(v.attrs["RESOLUTION"], "x")
		n, _ := strconv.Atoi(h)
		hs = append(hs, n)
	}
	return hs
}

// firstVariant is the media playlist URL of the first variant of mvURL.
func firstVariant(t *testing.T, mvURL string) string {
	t.Helper()
	_, body := httpGet(t, mvURL)
	vs, _ := parseLadder(string(body))
	if len(vs) == 0 {
		t.Fatalf("%s: no variant", mvURL)
	}
	u, _ := url.Parse(mvURL)
	ref, _ := url.Parse(vs[0].uri)
	return u.ResolveReference(ref).String()
}

// estimates prints a player's estimates, - where it had none.
func estimates(es []*int) string {
	var b strings.Builder
	for _, e := range es {
		if e == nil {
			b.WriteString(" -")
		} else {
			fmt.Fprintf(&b, " %d", *e)
		}
	}
	return strings.TrimSpace(b.String())
}

// waitJoinable waits until the first variant of the classic gateway's
// multivariant playlist at mvURL lists three segments: dash.js plays a
// classic MPD suggestedPresentationDelay (three target durations) behind the
// live edge, and on a younger stream it starts at the edge and stalls for
// reasons of its start, not of switching.
func waitJoinable(t *testing.T, mvURL string) {
	t.Helper()
	waitPlaylist(t, firstVariant(t, mvURL), 15*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 3 })
}
