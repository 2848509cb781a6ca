package packager_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
)

func ladderURIs(t *testing.T, l *packager.Ladder) []string {
	t.Helper()
	var uris []string
	for _, line := range strings.Split(string(l.Multivariant()), "\n") {
		if strings.HasSuffix(line, "v/index.m3u8") {
			uris = append(uris, line)
		}
	}
	return uris
}

func TestLadder(t *testing.T) {
	h, _ := newHub(t, packager.Config{Variants: []string{"_hi", "_lo"}, DisableLowLatency: true})
	if base, ok := h.LadderOf("demo_lo"); !ok || base != "demo" {
		t.Fatalf("LadderOf(demo_lo) = %q, %v", base, ok)
	}
	for _, name := range []string{"demo", "_lo", "demo_mid"} {
		if _, ok := h.LadderOf(name); ok {
			t.Errorf("LadderOf(%q) names a ladder", name)
		}
	}
	if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("a ladder without members: %v", err)
	}
	hi := mustPublish(t, h, "live", "demo_hi")
	lo := mustPublish(t, h, "live", "demo_lo")
	m := media{vStep: 40, gops: []int64{50}, until: 8000}
	m.video, m.audio = videoB, audioA
	publish(t, hi, m)
	m.video = videoA
	publish(t, lo, m)

	l, err := h.Ladder("live", "demo")
	if err != nil {
		t.Fatal(err)
	}
	if got := ladderURIs(t, l); strings.Join(got, " ") != "demo_hi/v/index.m3u8 demo_lo/v/index.m3u8" {
		t.Fatalf("variants %v:\n%s", got, l.Multivariant())
	}
	for _, want := range []string{"RESOLUTION=1280x720", "RESOLUTION=640x360", `URI="demo_hi/a/index.m3u8"`, `URI="demo_lo/a/index.m3u8"`} {
		if !strings.Contains(string(l.Multivariant()), want) {
			t.Errorf("no %s:\n%s", want, l.Multivariant())
		}
	}
	again, _ := h.Ladder("live", "demo")
	if &again.Multivariant()[0] != &l.Multivariant()[0] {
		t.Error("an unchanged ladder rendered again")
	}
	// Published at the same instant with keyframes every 2 s of media: the
	// segments start together.
	if a := l.Alignment(); !a.Aligned || a.Compared < 2 || a.MaxOffset != 0 {
		t.Errorf("alignment %+v, want aligned", a)
	}

	// The low rendition leaves: only the high one is listed; while none is
	// live the lingering ones are.
	closeWriter(t, lo)
	l, _ = h.Ladder("live", "demo")
	if got := ladderURIs(t, l); len(got) != 1 || got[0] != "demo_hi/v/index.m3u8" {
		t.Fatalf("after demo_lo left: %v", got)
	}
	if a := l.Alignment(); a.Aligned || a.Compared != 0 {
		t.Errorf("alignment of one live rendition %+v", a)
	}
	closeWriter(t, hi)
	l, _ = h.Ladder("live", "demo")
	if got := ladderURIs(t, l); len(got) != 2 {
		t.Fatalf("after both left: %v", got)
	}

	// A stream of the ladder's own name wins.
	plain := mustPublish(t, h, "live", "demo")
	defer closeWriter(t, plain)
	if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("ladder beside a stream of its name: %v", err)
	}
}

func TestLadderOff(t *testing.T) {
	h, _ := newHub(t, packager.Config{})
	w := mustPublish(t, h, "live", "demo_hi")
	defer closeWriter(t, w)
	if _, err := h.Ladder("live", "demo"); !errors.Is(err, packager.ErrNotFound) {
		t.Fatalf("ladder without variants configured: %v", err)
	}
	if _, ok := h.LadderOf("demo_hi"); ok {
		t.Fatal("LadderOf without variants configured")
	}
}
