package ingest

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux"
)

// trackWriter is a recWriter that serves a multitrack publish's other video
// tracks (remux.TrackOpener) and audio tracks (remux.AudioTrackOpener) as
// recWriters of their own, refusing ids in refuse (video) and refuseAudio.
type trackWriter struct {
	*recWriter
	mu          sync.Mutex
	opened      map[uint8]*recWriter
	order       []uint8
	refuse      map[uint8]bool
	audio       map[uint8]*recWriter
	audioOrder  []uint8
	refuseAudio map[uint8]bool
}

func (w *trackWriter) OpenAudioTrack(id uint8) (remux.Writer, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.refuseAudio[id] {
		return nil, errors.New("refused by the test")
	}
	if w.audio[id] != nil {
		return nil, errors.New("opened twice")
	}
	r := &recWriter{closed: make(chan struct{})}
	w.audio[id] = r
	w.audioOrder = append(w.audioOrder, id)
	return r, nil
}

func (w *trackWriter) OpenTrack(id uint8) (remux.Writer, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.refuse[id] {
		return nil, errors.New("refused by the test")
	}
	if w.opened[id] != nil {
		return nil, errors.New("opened twice")
	}
	r := &recWriter{closed: make(chan struct{})}
	w.opened[id] = r
	w.order = append(w.order, id)
	return r, nil
}

type trackHandler struct {
	got         chan *trackWriter
	refuse      map[uint8]bool
	refuseAudio map[uint8]bool
}

func (h *trackHandler) OnPublish(_ context.Context, req PublishRequest) (remux.Writer, error) {
	w := &trackWriter{recWriter: &recWriter{req: req, closed: make(chan struct{})}, opened: map[uint8]*recWriter{}, refuse: h.refuse,
		audio: map[uint8]*recWriter{}, refuseAudio: h.refuseAudio}
	h.got <- w
	return w, nil
}

// publishTags publishes tags over a real connection made by rtmpclient and
// unpublishes.
func publishTags(t *testing.T, addr, name string, meta []byte, tags []rtmpclient.Tag) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := rtmpclient.Dial(ctx, "rtmp://"+addr+"/live/"+name, rtmpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if meta != nil {
		if err := p.WriteMetadata(meta); err != nil {
			t.Fatal(err)
		}
	}
	for _, tag := range tags {
		if tag.Type == rtmpclient.TagVideo {
			err = p.WriteVideo(tag.Timestamp, tag.Body)
		} else {
			err = p.WriteAudio(tag.Timestamp, tag.Body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMultitrackRenditions publishes the multitrack fixtures over a real
// connection as FFmpeg 8 wrote them (track 0 plain, the others OneTrack) and
// repacked into each AvMultitrackType form, track 0 included: track 0 and
// audio track 0 go to the publish's Writer, every other video track to a
// rendition Writer of its own (OpenTrack) with its size, all 150 frames,
// keyframes on the same frames and the very DTS of track 0's, audio track 1
// to an audio-only rendition Writer (OpenAudioTrack) with as many frames at
// the DTS of audio track 0's, and every rendition is closed with the
// publish.
func TestMultitrackRenditions(t *testing.T) {
	for _, tc := range []struct {
		file   string
		sizes  [][2]int // per video track id
		audios int      // audio tracks
	}{
		{"multitrack-h264.flv", [][2]int{{1280, 720}, {640, 360}, {320, 180}}, 2},
		{"multitrack-hevc-h264.flv", [][2]int{{640, 360}, {320, 180}}, 1},
	} {
		dir := fixture.Dir()
		if dir == "" {
			t.Skip("no fixtures") // fixture.Dir fails under CI=true
		}
		clip, err := rtmpclient.ReadFLV(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, form := range []struct {
			name string
			form int
		}{{"as-sent", -1}, {"OneTrack", rtmpclient.OneTrack}, {"ManyTracks", rtmpclient.ManyTracks}, {"ManyTracksManyCodecs", rtmpclient.ManyTracksManyCodecs}} {
			t.Run(strings.TrimSuffix(tc.file, ".flv")+"/"+form.name, func(t *testing.T) {
				tags := clip.Tags
				if form.form >= 0 {
					if tags, err = rtmpclient.RepackMultitrack(clip.Tags, uint8(form.form)); err != nil {
						t.Fatal(err)
					}
					// The repacked messages are of that form, several
					// tracks to a message unless OneTrack.
					var buf [flv.MaxTracks]flv.TrackPacket
					most := 0
					for _, tag := range tags {
						if tag.Type != rtmpclient.TagVideo {
							continue
						}
						m, err := flv.SplitVideo(buf[:], tag.Body)
						if err == nil && !m.Multitrack && len(m.Packets) == 1 && m.Packets[0].Type == flv.PacketMetadata {
							continue // colorInfo under frame type 5, which no multitrack message can carry
						}
						if err != nil || !m.Multitrack || m.MultitrackType != uint8(form.form) {
							t.Fatalf("repacked message: %v, multitrack %v type %d", err, m.Multitrack, m.MultitrackType)
						}
						most = max(most, len(m.Packets))
					}
					// ManyTracks shares one FourCC: HEVC and H.264 go apart.
					mixed := strings.Contains(tc.file, "hevc") && form.form == rtmpclient.ManyTracks
					if (most > 1) != (form.form != rtmpclient.OneTrack && !mixed) {
						t.Fatalf("at most %d tracks in a message", most)
					}
				}
				h := &trackHandler{got: make(chan *trackWriter, 1)}
				addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})
				publishTags(t, addr, "mt", clip.Meta, tags)
				w := <-h.got
				w.wait(t)
				w.mu.Lock()
				defer w.mu.Unlock()
				if want := []uint8{1, 2}[:len(tc.sizes)-1]; !slices.Equal(w.order, want) {
					t.Fatalf("renditions opened for tracks %v, want %v", w.order, want)
				}
				var mainDTS []int64
				check := func(id int, r *recWriter, wantAudio bool) {
					r.wait(t)
					r.mu.Lock()
					defer r.mu.Unlock()
					var vt *remux.Track
					for _, tr := range r.tracks {
						switch {
						case tr.ID == remux.TrackVideo:
							vt = tr
						case !wantAudio:
							t.Errorf("track %d: audio announced on a rendition", id)
						}
					}
					if vt == nil || vt.Width != tc.sizes[id][0] || vt.Height != tc.sizes[id][1] {
						t.Fatalf("track %d: video track %+v, want %dx%d", id, vt, tc.sizes[id][0], tc.sizes[id][1])
					}
					var dts []int64
					keys := 0
					for _, f := range r.frames {
						if f.Track == remux.TrackVideo {
							dts = append(dts, f.DTS)
							if f.Key {
								keys++
							}
						}
					}
					if len(dts) != 150 || keys != 3 {
						t.Errorf("track %d: %d video frames with %d keys, want 150 with 3", id, len(dts), keys)
					}
					if id == 0 {
						mainDTS = dts
					} else if !slices.Equal(dts, mainDTS) {
						t.Errorf("track %d: DTS differ from track 0's", id)
					}
					if len(r.metadata) == 0 || !wantAudio && (r.metadata[0].HasAudio || !r.metadata[0].HasVideo) {
						t.Errorf("track %d: metadata %+v", id, r.metadata)
					}
				}
				check(0, w.recWriter, true)
				for _, id := range w.order {
					check(int(id), w.opened[id], false)
				}
				if want := []uint8{1}[:tc.audios-1]; !slices.Equal(w.audioOrder, want) {
					t.Fatalf("audio renditions opened for tracks %v, want %v", w.audioOrder, want)
				}
				audioDTS := func(r *recWriter) []int64 {
					var dts []int64
					for _, f := range r.frames {
						if f.Track == remux.TrackAudio {
							dts = append(dts, f.DTS)
						}
					}
					return dts
				}
				main := audioDTS(w.recWriter)
				for _, id := range w.audioOrder {
					r := w.audio[id]
					r.wait(t)
					r.mu.Lock()
					if len(r.tracks) != 1 || r.tracks[0].ID != remux.TrackAudio || r.tracks[0].Codec != remux.CodecAAC || r.tracks[0].SampleRate != 48000 {
						t.Errorf("audio track %d: tracks %+v, want one AAC 48 kHz", id, r.tracks)
					}
					if len(r.metadata) == 0 || r.metadata[0].HasVideo || !r.metadata[0].HasAudio {
						t.Errorf("audio track %d: metadata %+v", id, r.metadata)
					}
					if got := audioDTS(r); len(got) != len(r.frames) || len(main) < 270 || !slices.Equal(got, main) {
						t.Errorf("audio track %d: %d frames (%d audio), track 0 %d: DTS differ", id, len(r.frames), len(got), len(main))
					}
					r.mu.Unlock()
				}
			})
		}
	}
}

// A rendition the Writer refuses, a track past MaxTracks and packets of a
// track id before its sequence start, video or audio: that track is
// dropped with one log line, the others are served whole.
func TestMultitrackRefused(t *testing.T) {
	dir := fixture.Dir()
	if dir == "" {
		t.Skip("no fixtures")
	}
	clip, err := rtmpclient.ReadFLV(filepath.Join(dir, "multitrack-h264.flv"))
	if err != nil {
		t.Fatal(err)
	}
	// Video track 2's sequence start is left out: its frames come without
	// one; and in audioTags audio track 1's.
	var tags, audioTags []rtmpclient.Tag
	for _, tag := range clip.Tags {
		if tag.Type == rtmpclient.TagVideo && len(tag.Body) > 6 && tag.Body[0]&0x0f == 6 && tag.Body[1] == rtmpclient.OneTrack<<4|rtmpclient.ExSequenceStart && tag.Body[6] == 2 {
			continue
		}
		tags = append(tags, tag)
	}
	for _, tag := range clip.Tags {
		// ExHeader audio (sound format 9), Multitrack (5), OneTrack sequence start (0) of track 1.
		if tag.Type == rtmpclient.TagAudio && len(tag.Body) > 6 && tag.Body[0] == 0x95 && tag.Body[1] == rtmpclient.OneTrack<<4 && tag.Body[6] == 1 {
			continue
		}
		audioTags = append(audioTags, tag)
	}
	if len(audioTags) != len(clip.Tags)-1 {
		t.Fatalf("%d audio sequence starts of track 1 left out, want 1", len(clip.Tags)-len(audioTags))
	}
	for _, tc := range []struct {
		name        string
		max         int
		refuse      map[uint8]bool
		refuseAudio map[uint8]bool
		tags        []rtmpclient.Tag
		wantOpen    []uint8
		wantAudio   []uint8
		wantLog     string // logged once
	}{
		{"max_tracks", 2, nil, nil, clip.Tags, []uint8{1}, []uint8{1}, "more than 2 video tracks"},
		{"max_tracks 1", 1, nil, nil, clip.Tags, nil, nil, "more than 1 audio tracks"},
		{"writer refuses", 0, map[uint8]bool{1: true}, nil, clip.Tags, []uint8{2}, []uint8{1}, "refused by the test"},
		{"writer refuses audio", 0, nil, map[uint8]bool{1: true}, clip.Tags, []uint8{1, 2}, nil, "refused by the test"},
		{"no sequence start", 0, nil, nil, tags, []uint8{1}, []uint8{1}, "track=video track_id=2"},
		{"audio without sequence start", 0, nil, nil, audioTags, []uint8{1, 2}, nil, "track=audio track_id=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &trackHandler{got: make(chan *trackWriter, 1), refuse: tc.refuse, refuseAudio: tc.refuseAudio}
			logs := &logLines{t: t}
			addr := startServer(t, &Server{Handler: h, Logger: zerolog.New(zerolog.ConsoleWriter{Out: logs, NoColor: true}), MaxTracks: tc.max})
			publishTags(t, addr, "mt", clip.Meta, tc.tags)
			w := <-h.got
			w.wait(t)
			if w.cause != nil {
				t.Fatalf("publish ended by %v", w.cause)
			}
			if !slices.Equal(w.order, tc.wantOpen) || !slices.Equal(w.audioOrder, tc.wantAudio) {
				t.Fatalf("opened video %v audio %v, want %v and %v", w.order, w.audioOrder, tc.wantOpen, tc.wantAudio)
			}
			n, a := 0, 0
			for _, f := range w.frames {
				if f.Track == remux.TrackVideo {
					n++
				} else {
					a++
				}
			}
			if n != 150 || a < 270 {
				t.Errorf("track 0: %d video frames, %d audio frames", n, a)
			}
			for _, id := range w.order {
				r := w.opened[id]
				r.wait(t)
				if len(r.frames) != 150 {
					t.Errorf("track %d: %d frames", id, len(r.frames))
				}
			}
			for _, id := range w.audioOrder {
				r := w.audio[id]
				r.wait(t)
				if len(r.frames) != a {
					t.Errorf("audio track %d: %d frames, track 0 %d", id, len(r.frames), a)
				}
			}
			if got := logs.count(tc.wantLog); got != 1 {
				t.Errorf("%d log lines with %q, want 1", got, tc.wantLog)
			}
		})
	}
}

// logLines is a log sink for the test's log that counts lines too.
type logLines struct {
	t     *testing.T
	mu    sync.Mutex
	lines []string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, string(p))
	l.mu.Unlock()
	l.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (l *logLines) count(sub string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, s := range l.lines {
		if strings.Contains(s, sub) {
			n++
		}
	}
	return n
}

// TestMultitrackAudioLabels publishes the two-audio-track fixture with an
// onMetaData of our own whose audioTrackIdInfoMap labels both audio tracks
// (an ECMA array of objects, as the specification shows it; key spellings
// vary by tool): the publish's Writer is told each label, entries that name
// nothing or are no track id are skipped, and audio track 1 is served.
func TestMultitrackAudioLabels(t *testing.T) {
	dir := fixture.Dir()
	if dir == "" {
		t.Skip("no fixtures")
	}
	clip, err := rtmpclient.ReadFLV(filepath.Join(dir, "multitrack-h264.flv"))
	if err != nil {
		t.Fatal(err)
	}
	info := rtmp.ECMAArray{
		{Key: "0", Value: rtmp.Object{{Key: "language", Value: "en"}, {Key: "title", Value: "Stadium"}}},
		{Key: "1", Value: rtmp.Object{{Key: "lang", Value: "de"}, {Key: "name", Value: "Kommentar"}, {Key: "role", Value: "commentary"}, {Key: "audiodatarate", Value: 96.0}}},
		{Key: "2", Value: rtmp.Object{{Key: "audiodatarate", Value: 96.0}}}, // names nothing
		{Key: "x", Value: rtmp.Object{{Key: "name", Value: "no track"}}},
		{Key: "3", Value: "not an object"},
	}
	md := rtmp.AppendAMF0(nil, "onMetaData")
	md = rtmp.AppendAMF0(md, rtmp.ECMAArray{{Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0}, {Key: "audioTrackIdInfoMap", Value: info}})
	h := &trackHandler{got: make(chan *trackWriter, 1)}
	addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})
	publishTags(t, addr, "mt", md, clip.Tags)
	w := <-h.got
	w.wait(t)
	w.mu.Lock()
	defer w.mu.Unlock()
	want := []remux.TrackLabel{{ID: 0, Name: "Stadium", Language: "en"}, {ID: 1, Name: "Kommentar", Language: "de", Role: "commentary"}}
	if len(w.metadata) != 1 || !slices.Equal(w.metadata[0].AudioLabels, want) {
		t.Fatalf("metadata %+v, want labels %+v", w.metadata, want)
	}
	if !slices.Equal(w.audioOrder, []uint8{1}) {
		t.Fatalf("audio renditions %v", w.audioOrder)
	}
}
