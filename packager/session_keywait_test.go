package packager_test

import (
	"testing"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// A relay that joins mid-GOP (nginx-rtmp push) sends both sequence headers, audio
// at once, and video only from its next keyframe, or non-key frames first. The
// first segment must still start on that keyframe with the audio beside it.
func TestFirstSegmentWaitsForKeyframe(t *testing.T) {
	all := media{video: videoA, audio: audioA, vStep: 40, gops: []int64{50}, until: 8000}.frames()
	var keyDTS, keyPTS int64 = -1, -1
	for _, f := range all {
		if f.Track == videoA && f.DTS >= 2000 && f.Key {
			keyDTS, keyPTS = f.DTS, f.PTS()
			break
		}
	}
	var sent, want []remux.Frame
	for _, f := range all {
		if f.Track == videoA && f.DTS < 1000 {
			continue // the relay sends no video before 1 s, then non-key frames until the keyframe
		}
		sent = append(sent, f)
		// Kept: the keyframe on, and audio up to 100 ms ahead of its presentation.
		if (f.Track == videoA && f.DTS >= keyDTS) || (f.Track == audioA && f.DTS >= keyPTS-100) {
			want = append(want, f)
		}
	}
	h, _ := newHub(t, packager.Config{WindowSegments: 100})
	w := mustPublish(t, h, "live", "relay")
	if err := w.WriteTrack(videoA); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteTrack(audioA); err != nil {
		t.Fatal(err)
	}
	writeFrames(t, w, sent)
	closeWriter(t, w)
	st := mustStream(t, h, "live", "relay")
	p := snapshotPlaylist(t, st)
	// The keyframe is muxed first, then the held audio from its DTS on.
	reordered := append([]remux.Frame(nil), want...)
	for i, f := range reordered {
		if f.Track == videoA {
			copy(reordered[1:i+1], reordered[:i])
			reordered[0] = f
			break
		}
	}
	segs := checkSegments(t, st, p, reordered)
	if first := segs[0][0]; first.kind != remux.KindVideo || !first.key || first.dts != keyDTS {
		t.Fatalf("first segment starts with %+v, want the keyframe at %d ms", first, keyDTS)
	}
}
