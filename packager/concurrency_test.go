package packager_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// TestConcurrentReadersAndTakeover runs a publisher, readers and a takeover at
// once; under -race it checks the locking, and readers check that every listed
// segment is servable from the same snapshot's stream.
func TestConcurrentReadersAndTakeover(t *testing.T) {
	h, c := newHub(t, packager.Config{WindowSegments: 3, SweepInterval: time.Millisecond})
	old := mustPublish(t, h, "live", "a")
	st := mustStream(t, h, "live", "a")
	m := gop2s
	m.until = 60000
	frames := m.frames()
	if err := old.WriteTrack(videoA); err != nil {
		t.Fatal(err)
	}
	if err := old.WriteTrack(audioA); err != nil {
		t.Fatal(err)
	}

	done := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				snap := st.Snapshot()
				for _, line := range strings.Split(string(snap.TSPlaylist), "\n") {
					if strings.HasSuffix(line, ".ts") {
						// The fake clock races ahead here, so only a segment missing
						// while its snapshot is still current is a failure.
						if _, ok := st.Object("ts/" + line); !ok && st.Snapshot() == snap {
							t.Errorf("listed segment %s not served", line)
							return
						}
					}
				}
				_ = h.Streams()
			}
		}()
	}
	wg.Add(1)
	var oldErr error
	go func() {
		defer wg.Done()
		for i := range frames {
			if err := old.WriteFrame(&frames[i]); err != nil {
				oldErr = err
				break
			}
		}
		_ = old.Close(nil)
	}()
	// Take over once the old publisher has been silent long enough on the fake
	// clock (its writes stamp the current fake time).
	var nw remux.Writer
	deadline := time.Now().Add(5 * time.Second)
	for nw == nil && time.Now().Before(deadline) {
		c.Advance(4 * time.Second)
		w, err := h.Publish("live", "a", "new", nil)
		if err == nil {
			nw = w
		} else if !errors.Is(err, packager.ErrStreamBusy) {
			t.Fatal(err)
		}
	}
	if nw == nil {
		t.Fatal("no takeover")
	}
	close(done)
	wg.Wait()
	if oldErr != nil && !errors.Is(oldErr, packager.ErrTakenOver) {
		t.Fatalf("old session: %v", oldErr)
	}
	m.until = 5000
	publish(t, nw, m)
	closeWriter(t, nw)
	p := snapshotPlaylist(t, st)
	if !p.ended {
		t.Fatal("not ended")
	}
}
