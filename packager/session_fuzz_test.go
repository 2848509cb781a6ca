package packager_test

import (
	"encoding/binary"
	"strconv"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

// maxFuzzOps bounds one input's ops: every op is followed by a full check
// (all playlists and the MPD parsed), and an input that takes seconds is
// reported by the fuzzer as a hang.
const maxFuzzOps = 300

// FuzzSession drives a publish session with arbitrary writes (tracks appearing,
// changing and repeating, metadata, frames with any timestamps, sizes and key
// flags, republishes) and checks that nothing panics and that every playlist
// stays valid: rounded EXTINF within the target, unique names, sequence numbers
// that never go back, ENDLIST after Close, and store bytes that add up; and that
// the CMAF outputs agree with it (checkCMAFObjects); and that the MPD never
// rewrites what it listed (mpdHistory).
//
// Each op is 4 bytes: op code, then arguments. Codes mod 8: 0 video track A,
// 1 video track B, 2 audio track, 3 metadata, 4 and 5 video frame, 6 audio frame,
// 7 close and republish. Frame args: signed DTS step (2 bytes), key bit and size.
func FuzzSession(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 40, 1, 6, 0, 21, 0, 4, 0, 40, 0, 5, 7, 208, 1, 6, 0, 21, 0, 7, 0, 0, 0, 4, 0, 40, 1})
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 1, 4, 127, 255, 0, 1, 0, 0, 0, 4, 128, 0, 1, 4, 0, 40, 255, 6, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 6, 0, 21, 0, 6, 0, 21, 0, 6, 0, 21, 0, 6, 3, 232, 0, 6, 255, 0, 0, 6, 0, 21, 0})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzSession(t, data, 1<<16) })
}

// FuzzSessionFollower is FuzzSession with a store that admits the audio
// rendition (a multitrack publish's audio track 1) beside the publish: it
// gets every audio frame and cuts where the publish cuts, whatever the
// timestamps and keyframes, and its playlists stay valid.
func FuzzSessionFollower(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 40, 1, 6, 0, 21, 0, 4, 0, 40, 0, 5, 7, 208, 1, 6, 0, 21, 0, 7, 0, 0, 0, 4, 0, 40, 1})
	f.Add([]byte{3, 1, 0, 0, 0, 0, 0, 0, 4, 0, 0, 1, 4, 127, 255, 0, 1, 0, 0, 0, 4, 128, 0, 1, 4, 0, 40, 255, 6, 0, 0, 0})
	f.Add([]byte{2, 0, 0, 0, 6, 0, 21, 0, 6, 0, 21, 0, 6, 0, 21, 0, 6, 3, 232, 0, 6, 255, 0, 0, 6, 0, 21, 0})
	f.Fuzz(func(t *testing.T, data []byte) { fuzzSession(t, data, 64<<20) })
}

func fuzzSession(t *testing.T, data []byte, storeBytes int64) {
	h, c := newHub(t, packager.Config{WindowSegments: 3, MaxSegmentBytes: 4096, TrackWait: 200 * time.Millisecond, MaxStoreBytes: storeBytes})
	w, err := h.Publish("live", "f", "fuzz", nil)
	if err != nil {
		t.Fatal(err)
	}
	var (
		dts     int64
		payload = make([]byte, 1024)
		lastMSN int64
		lastDS  int64
		closed  bool
		hist    = newMPDHistory()
		aMSN    int64 // the audio rendition's
	)
	// An audio rendition (a multitrack publish's audio track 1) gets
	// every audio frame too and follows the publish's cuts; the store
	// may refuse it.
	openAudio := func() remux.Writer {
		aw, err := w.(remux.AudioTrackOpener).OpenAudioTrack(1)
		if err != nil {
			return nil
		}
		if err := aw.WriteMetadata(&remux.Metadata{HasAudio: true}); err != nil {
			t.Fatal(err)
		}
		if err := aw.WriteTrack(audioA); err != nil {
			t.Fatal(err)
		}
		return aw
	}
	aw := openAudio()
	check := func() {
		st, err := h.Stream("live", "f")
		if err != nil {
			t.Fatal(err)
		}
		// The hub's janitor enforces the store budget in its own goroutine: a
		// read between its freeing bytes and its publishing the snapshot that
		// says so sees them apart, so the two must meet within a short while.
		var snap *packager.Snapshot
		var held int64
		for wait := time.Millisecond; ; wait *= 2 {
			snap = st.Snapshot()
			held = snap.Bytes
			if ast, err := h.Stream("live", "f/a1"); err == nil {
				held += ast.Snapshot().Bytes
			}
			if held == h.StoreBytes() {
				break
			}
			if wait > 256*time.Millisecond {
				t.Fatalf("streams' bytes %d, store bytes %d", held, h.StoreBytes())
			}
			time.Sleep(wait)
		}
		if snap.TSPlaylist == nil {
			return
		}
		p := parsePlaylist(t, snap.TSPlaylist)
		if p.msn < lastMSN || p.discSeq < lastDS {
			t.Fatalf("sequence went back: msn %d -> %d, disc %d -> %d", lastMSN, p.msn, lastDS, p.discSeq)
		}
		lastMSN, lastDS = p.msn, p.discSeq
		if p.ended != closed {
			t.Fatalf("ENDLIST %v after close %v", p.ended, closed)
		}
		var msns []uint64
		for _, s := range p.segs {
			if _, ok := st.Object("ts/" + s.name); !ok {
				t.Fatalf("listed segment %s not served", s.name)
			}
			msns = append(msns, msnOf(t, s.name))
		}
		checkCMAFObjects(t, st, msns)
		if _, ok := st.Object(packager.MPDPath); ok {
			hist.check(t, parseMPD(t, st))
		}
		if ast, err := h.Stream("live", "f/a1"); err == nil && ast.Snapshot().TSPlaylist != nil {
			p := parsePlaylist(t, ast.Snapshot().TSPlaylist)
			if p.msn < aMSN {
				t.Fatalf("audio rendition: sequence went back: msn %d -> %d", aMSN, p.msn)
			}
			aMSN = p.msn
			var msns []uint64
			for _, s := range p.segs {
				if _, ok := ast.Object("ts/" + s.name); !ok {
					t.Fatalf("audio rendition: listed segment %s not served", s.name)
				}
				msns = append(msns, msnOf(t, s.name))
			}
			checkCMAFObjects(t, ast, msns)
		}
	}
	for n := 0; len(data) >= 4 && n < maxFuzzOps; n++ {
		op, a, b, x := data[0]%8, data[1], data[2], data[3]
		data = data[4:]
		step := int64(int16(binary.BigEndian.Uint16([]byte{a, b})))
		fr := remux.Frame{Key: x&1 != 0, Data: payload[:int(x>>1)*8]}
		var err error
		switch op {
		case 0:
			err = w.WriteTrack(videoA)
		case 1:
			err = w.WriteTrack(videoB)
		case 2:
			err = w.WriteTrack(audioA)
		case 3:
			err = w.WriteMetadata(&remux.Metadata{HasVideo: a&1 != 0, HasAudio: a&2 != 0, FrameRate: float64(b)})
		case 4, 5:
			dts += step
			fr.Track, fr.DTS = videoA, dts
			hist.lax = hist.lax || len(fr.Data) == 0
			err = w.WriteFrame(&fr)
		case 6:
			dts += step
			fr.Track, fr.DTS = audioA, dts
			hist.lax = hist.lax || len(fr.Data) == 0
			err = w.WriteFrame(&fr)
			if aw != nil && err == nil {
				af := fr
				err = aw.WriteFrame(&af)
			}
		case 7:
			if aw != nil {
				if err := aw.Close(nil); err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Close(nil); err != nil {
				t.Fatal(err)
			}
			closed = true
			check()
			c.Advance(time.Second)
			if w, err = h.Publish("live", "f", "fuzz", nil); err != nil {
				t.Fatal(err)
			}
			closed = false
			dts = 0
			aw = openAudio()
		}
		if err != nil {
			t.Fatalf("op %d: %v", op, err)
		}
		check()
	}
	if aw != nil {
		if err := aw.Close(nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
	closed = true
	check()
}

// mpdHistory remembers what MPDs listed: a Period's start, each SegmentTimeline
// entry and each SegmentTemplate@duration addressing, which later MPDs must
// not change; a segment first addressed by number must, once its Period lists
// it in a timeline, lie within half of @duration of its nominal span (its end
// too, unless it is the Period's last), for the track that cuts segments.
type mpdHistory struct {
	starts  map[string]string
	entries map[string][2]uint64 // "period/type/number": t, d
	grids   map[string][4]uint64 // "period/type": timescale, pto, duration, startNumber
	// lax: an empty frame was written, which the CMAF writer refuses while the
	// segmenter counted it: a fragment then starts at its first frame CMAF
	// took, not at the cut, and the tolerance is not checked.
	lax bool
}

func newMPDHistory() *mpdHistory {
	return &mpdHistory{starts: map[string]string{}, entries: map[string][2]uint64{}, grids: map[string][4]uint64{}}
}

func (h *mpdHistory) check(t *testing.T, m mpd) {
	t.Helper()
	for _, p := range m.Periods {
		if old, ok := h.starts[p.ID]; ok && old != p.Start {
			t.Fatalf("Period %s start %s, was %s", p.ID, p.Start, old)
		}
		h.starts[p.ID] = p.Start
		video := false
		for _, as := range p.AdaptationSets {
			video = video || as.ContentType == "video"
		}
		for _, as := range p.AdaptationSets {
			// The segmenter holds the track that cuts to the tolerance; beside
			// video, audio follows each cut within a frame while it flows, but
			// audio with a gap (fuzzed timestamps) starts where its samples do.
			cuts := as.ContentType == "video" || !video
			tpl := as.Representations[0].Template
			key := p.ID + "/" + as.ContentType
			g, wasGrid := h.grids[key]
			if tpl.Duration > 0 {
				now := [4]uint64{uint64(tpl.Timescale), tpl.PTO, tpl.Duration, tpl.StartNumber}
				if wasGrid && g != now {
					t.Fatalf("%s: SegmentTemplate@duration addressing %v, was %v", key, now, g)
				}
				h.grids[key] = now
				continue
			}
			n, tt := tpl.StartNumber, uint64(0)
			for k, s := range tpl.S {
				if s.N != nil {
					n = *s.N
				}
				tt = s.T
				for r := 0; r <= s.R; r++ {
					// The Period's last segment ends with the Period, short or not.
					last := k == len(tpl.S)-1 && r == s.R
					id := key + "/" + strconv.FormatUint(n, 10)
					e := [2]uint64{tt, s.D}
					if old, ok := h.entries[id]; ok && old != e {
						t.Fatalf("%s listed as t=%d d=%d, now t=%d d=%d", id, old[0], old[1], e[0], e[1])
					}
					h.entries[id] = e
					if wasGrid && cuts && !h.lax && n >= g[3] {
						nt, half := g[1]+(n-g[3])*g[2], g[2]/2
						if max(tt, nt)-min(tt, nt) > half || !last && max(tt+s.D, nt+g[2])-min(tt+s.D, nt+g[2]) > half {
							t.Fatalf("%s spans t=%d d=%d, nominally t=%d d=%d", id, tt, s.D, nt, g[2])
						}
					}
					n++
					tt += s.D
				}
			}
		}
	}
}
