package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient/rtmptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// writeTestClip writes a 1 s synthetic clip: 30 fps video with a keyframe every
// 15 frames, AAC-like audio every 21 ms, an onMetaData tag.
func writeTestClip(t *testing.T) (string, *rtmpclient.Clip) {
	t.Helper()
	var (
		avcSeq   = []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}
		avcKey   = []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, 0x88}
		avcInter = []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, 0x9a}
		aacSeq   = []byte{0xaf, 0, 0x11, 0x90}
		aacRaw   = []byte{0xaf, 1, 0x21, 0x10}
		meta     = []byte{0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a', 0x08, 0, 0, 0, 0, 0, 0, 9}
	)
	tags := []rtmpclient.Tag{{Type: rtmpclient.TagVideo, Body: avcSeq}, {Type: rtmpclient.TagAudio, Body: aacSeq}}
	frame := uint32(0)
	for ms := uint32(0); ms < 1000; ms++ {
		if ms%21 == 0 {
			tags = append(tags, rtmpclient.Tag{Type: rtmpclient.TagAudio, Timestamp: ms, Body: aacRaw})
		}
		if frame*1000/30 == ms {
			body := avcInter
			if frame%15 == 0 {
				body = avcKey
			}
			tags = append(tags, rtmpclient.Tag{Type: rtmpclient.TagVideo, Timestamp: ms, Body: body})
			frame++
		}
	}
	path := filepath.Join(t.TempDir(), "clip.flv")
	if err := os.WriteFile(path, rtmptest.FLV(meta, tags...), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := rtmpclient.ReadFLV(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, c
}

func TestRunAgainstFakeServer(t *testing.T) {
	clipPath, cl := writeTestClip(t)
	frames := int64(cl.Video + cl.Audio - 2) // without the sequence headers
	tests := []struct {
		name      string
		refuse    bool
		dropAfter int64
		loop      bool
		duration  time.Duration
		check     func(t *testing.T, s *summary, f *rtmptest.Server)
	}{
		{name: "clean", duration: 5 * time.Second, check: func(t *testing.T, s *summary, f *rtmptest.Server) {
			p := s.Publishers
			if !s.OK || p.Connected != 3 || p.Failed+p.DisconnectedEarly != 0 {
				t.Fatalf("summary %+v errors %q", p, s.Errors)
			}
			if got := p.VideoFrames + p.AudioFrames; got != 3*frames || f.MediaCount.Load() != 3*(frames+2) {
				t.Errorf("sent %d frames, server got %d messages; clip has %d frames + 2 headers, 3 publishers", got, f.MediaCount.Load(), frames)
			}
			if f.CleanEnds.Load() != 3 {
				t.Errorf("%d deleteStream, want 3", f.CleanEnds.Load())
			}
			if s.WallS < 0.9 || s.WallS > 3 {
				t.Errorf("a 1 s clip took %.2f s: not paced in real time", s.WallS)
			}
		}},
		{name: "loop", loop: true, duration: 2500 * time.Millisecond, check: func(t *testing.T, s *summary, f *rtmptest.Server) {
			// 2.5 s of a 1 s clip at 30 fps video and 21 ms audio frames.
			want := int64(3 * (75 + 119))
			if got := s.Publishers.VideoFrames + s.Publishers.AudioFrames; !s.OK || got < want-6 || got > want+6 {
				t.Errorf("looped 2.5 s: %d frames, want about %d; %q", got, want, s.Errors)
			}
			if f.MediaCount.Load() != s.Publishers.VideoFrames+s.Publishers.AudioFrames+6 {
				t.Errorf("server got %d media messages, rtmpload counted %d frames + 6 headers", f.MediaCount.Load(), s.Publishers.VideoFrames+s.Publishers.AudioFrames)
			}
		}},
		{name: "refused", refuse: true, duration: time.Second, check: func(t *testing.T, s *summary, f *rtmptest.Server) {
			if s.OK || s.Publishers.Failed != 3 || s.Publishers.Connected != 0 {
				t.Fatalf("summary %+v", s.Publishers)
			}
			if len(s.Errors) != 3 || !strings.Contains(s.Errors[0], "publish refused: NetStream.Publish.BadName") {
				t.Errorf("errors %q", s.Errors)
			}
		}},
		{name: "dropped", dropAfter: 10, duration: 5 * time.Second, check: func(t *testing.T, s *summary, f *rtmptest.Server) {
			if s.OK || s.Publishers.DisconnectedEarly != 3 || s.Publishers.Connected != 3 {
				t.Fatalf("summary %+v errors %q", s.Publishers, s.Errors)
			}
			if !strings.Contains(strings.Join(s.Errors, "\n"), "closed by server") && !strings.Contains(strings.Join(s.Errors, "\n"), "send:") {
				t.Errorf("errors %q", s.Errors)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := rtmptest.NewServer(t, rtmptest.Options{Refuse: tc.refuse, DropAfter: tc.dropAfter, FlashVer: flashVer})
			cfg := config{url: f.URL("live"), n: 3, prefix: "t", clipPath: clipPath, duration: tc.duration, loop: tc.loop, ramp: 100 * time.Millisecond}
			s, err := run(context.Background(), cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if f.SetupErrors.Load() != 0 {
				t.Errorf("the server saw %d bad setups", f.SetupErrors.Load())
			}
			tc.check(t, s, f)
		})
	}
}

// Viewers against a fake HLS origin: a listed segment that answers 404 is an
// error, and so is a playlist that is not one.
func TestViewersCountErrors(t *testing.T) {
	clipPath, _ := writeTestClip(t)
	tests := []struct {
		name    string
		handler http.HandlerFunc
		check   func(t *testing.T, v *viewerSummary)
	}{
		{"good", func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, ".m3u8") {
				fmt.Fprint(w, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n#EXTINF:1.0,\ns0.ts\n#EXTINF:1.0,\ns1.ts\n#EXT-X-ENDLIST\n")
				return
			}
			fmt.Fprint(w, strings.Repeat("x", 1000))
		}, func(t *testing.T, v *viewerSummary) {
			if v.Segments != 4 || v.Bytes < 4000 || v.SegmentMissing+v.SegmentErrors+v.PlaylistErrors != 0 {
				t.Errorf("%+v", v)
			}
		}},
		{"listed segment missing", func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, ".m3u8") {
				fmt.Fprint(w, "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1.0,\ngone.ts\n#EXT-X-ENDLIST\n")
				return
			}
			http.NotFound(w, r)
		}, func(t *testing.T, v *viewerSummary) {
			if v.SegmentMissing != 2 {
				t.Errorf("%+v", v)
			}
		}},
		{"not a playlist", func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprint(w, "<html>")
		}, func(t *testing.T, v *viewerSummary) {
			if v.PlaylistErrors < 2 {
				t.Errorf("%+v", v)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := rtmptest.NewServer(t, rtmptest.Options{FlashVer: flashVer})
			web := httptest.NewServer(tc.handler)
			defer web.Close()
			cfg := config{url: f.URL("live"), n: 1, prefix: "v", clipPath: clipPath, duration: 1500 * time.Millisecond, viewers: 2, httpBase: web.URL, endWait: time.Second}
			s, err := run(context.Background(), cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if s.Viewers == nil {
				t.Fatal("no viewer summary")
			}
			tc.check(t, s.Viewers)
			if wantOK := tc.name == "good"; s.OK != wantOK {
				t.Errorf("ok %v, want %v; errors %q", s.OK, wantOK, s.Errors)
			}
		})
	}
}

// Cancelling (SIGINT) stops every goroutine promptly and is not a failure.
func TestRunCancelled(t *testing.T) {
	clipPath, _ := writeTestClip(t)
	f := rtmptest.NewServer(t, rtmptest.Options{FlashVer: flashVer})
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	began := time.Now()
	s, err := run(ctx, config{url: f.URL("live"), n: 2, prefix: "c", clipPath: clipPath, duration: time.Minute, loop: true}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Errorf("run took %s after cancel", d)
	}
	if s.Publishers.Failed+s.Publishers.DisconnectedEarly != 0 || s.Publishers.Interrupted != 2 {
		t.Errorf("summary %+v errors %q", s.Publishers, s.Errors)
	}
}

func TestParseFlags(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{[]string{"-clip", "c.flv"}, ""},
		{[]string{}, "-clip is required"},
		{[]string{"-clip", "c.flv", "-n", "0"}, "-n 0 out of range"},
		{[]string{"-clip", "c.flv", "-viewers", "5"}, "-viewers needs -http"},
		{[]string{"-clip", "c.flv", "-duration", "0s"}, "must be positive"},
		{[]string{"-clip", "c.flv", "extra"}, "unexpected argument"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseFlags(tc.args, io.Discard)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
		})
	}
	if _, err := run(context.Background(), config{url: "http://x/live", n: 1, clipPath: "c.flv", duration: time.Second}, io.Discard); err == nil {
		t.Error("run with an http:// URL: want an error")
	}
	if _, err := run(context.Background(), config{url: "rtmp://x/live", n: 1, clipPath: "/nonexistent.flv", duration: time.Second}, io.Discard); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing clip: %v", err)
	}
}

// A batch step groups the tags into one write per step, never ahead of their
// time: the server sees each message at or after its timestamp (from the
// session's first message) and no later than one step plus scheduling slack,
// and the arrivals fall into about one group per step instead of one per frame.
func TestBatchPacing(t *testing.T) {
	clipPath, cl := writeTestClip(t)
	for _, tc := range []struct {
		batch     time.Duration
		maxGroups int
	}{
		{time.Millisecond, 10000},       // a write per frame: ~77 groups in the 1 s clip
		{250 * time.Millisecond, 4 + 2}, // 1 s of clip in 250 ms steps
	} {
		t.Run(tc.batch.String(), func(t *testing.T) {
			f := rtmptest.NewServer(t, rtmptest.Options{Keep: true, FlashVer: flashVer})
			cfg := config{url: f.URL("live"), n: 1, prefix: "b", clipPath: clipPath, duration: 5 * time.Second, batch: tc.batch}
			s, err := run(context.Background(), cfg, io.Discard)
			if err != nil || !s.OK {
				t.Fatalf("run: %v %q", err, s.Errors)
			}
			var first time.Time
			var media []rtmptest.Message
			for _, m := range f.Messages() {
				if m.Type == 8 || m.Type == 9 {
					media = append(media, m)
				}
			}
			if len(media) != cl.Video+cl.Audio {
				t.Fatalf("%d media messages, clip has %d tags", len(media), cl.Video+cl.Audio)
			}
			first = media[0].Received
			groups := 0
			var last time.Time
			const slack = 15 * time.Millisecond // the fake server's reads and the timer's wakeup
			const gap = 5 * time.Millisecond    // between arrival groups
			for _, m := range media {
				at := m.Received.Sub(first)
				ts := time.Duration(m.Timestamp) * time.Millisecond
				if at < ts-slack {
					t.Fatalf("ts %v arrived at %v: early", ts, at)
				}
				if at > ts+tc.batch+100*time.Millisecond {
					t.Fatalf("ts %v arrived at %v: later than a step", ts, at)
				}
				if m.Received.Sub(last) > gap {
					groups++
				}
				last = m.Received
			}
			if groups > tc.maxGroups {
				t.Errorf("%d arrival groups, want at most %d", groups, tc.maxGroups)
			}
			if tc.batch == time.Millisecond && groups < 20 {
				t.Errorf("%d arrival groups at a 1 ms step: the frames were not paced", groups)
			}
			t.Logf("batch %v: %d messages in %d arrival groups", tc.batch, len(media), groups)
		})
	}
}
