package packager_test

import (
	"errors"
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
)

func TestKick(t *testing.T) {
	h, _ := newHub(t, packager.Config{})
	kicked := 0
	w, err := h.Publish("live", "k", "127.0.0.1:1", func() { kicked++ })
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Kick("live", "k"); err != nil || kicked != 1 {
		t.Fatalf("Kick on a live stream: %v, kick called %d times", err, kicked)
	}
	closeWriter(t, w)
	if err := h.Kick("live", "k"); !errors.Is(err, packager.ErrNotLive) {
		t.Errorf("Kick on an ended stream: %v, want ErrNotLive", err)
	}
	if err := h.Kick("live", "nope"); !errors.Is(err, packager.ErrNotFound) {
		t.Errorf("Kick on an unknown stream: %v, want ErrNotFound", err)
	}
}
