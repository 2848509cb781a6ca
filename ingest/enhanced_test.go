package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
)

// publishFixture sends an Enhanced RTMP fixture's tags unchanged, each FLV tag
// body one RTMP message at its tag timestamp, over a real connection made by
// rtmpclient, and unpublishes.
func publishFixture(t *testing.T, addr, name, file string, opts rtmpclient.Options) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := rtmpclient.Dial(ctx, "rtmp://"+addr+"/live/"+name, opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range fixture.Tags(t, file) {
		switch tag.Type {
		case rtmpclient.TagScript:
			err = p.WriteMetadata(tag.Body)
		case rtmpclient.TagVideo:
			err = p.WriteVideo(tag.TS, tag.Body)
		case rtmpclient.TagAudio:
			err = p.WriteAudio(tag.TS, tag.Body)
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestEnhancedFixtures publishes each fixture (FFmpeg 8's enhanced FLV muxer)
// and checks what the Writer got: the tracks with their codec, codecs string
// and size, every frame of track 0 of each kind with the keys the bitstream
// shows, and DTS that never go back.
func TestEnhancedFixtures(t *testing.T) {
	type want struct {
		file                string
		video, audio        remux.Codec
		vcodecs, acodecs    string
		width, height       int
		audioFrames         int
		sampleRate, channel int
		vfourcc, afourcc    string // from onMetaData
	}
	for _, tc := range []want{
		{"hevc-aac.flv", remux.CodecHEVC, remux.CodecAAC, "hvc1.1.6.L63.90", "mp4a.40.2", 640, 360, 283, 48000, 1, "hvc1", ""},
		{"av1-opus.flv", remux.CodecAV1, remux.CodecOpus, "av01.0.01M.08", "opus", 640, 360, 301, 48000, 1, "av01", "Opus"},
		{"vp9-opus.flv", remux.CodecVP9, remux.CodecOpus, "vp09.00.21.08", "opus", 640, 360, 301, 48000, 1, "vp09", "Opus"},
		{"multitrack-h264.flv", remux.CodecH264, remux.CodecAAC, "avc1.64001f", "mp4a.40.2", 1280, 720, 283, 48000, 1, "", ""},
		{"multitrack-hevc-h264.flv", remux.CodecHEVC, remux.CodecAAC, "hvc1.1.6.L63.90", "mp4a.40.2", 640, 360, 283, 48000, 1, "hvc1", ""},
	} {
		t.Run(tc.file, func(t *testing.T) {
			h := newRecHandler()
			addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})
			publishFixture(t, addr, "fx", tc.file, rtmpclient.Options{})
			w := h.next(t)
			w.wait(t)
			if w.cause != nil {
				t.Fatalf("Close cause %v", w.cause)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			// FFmpeg's onMetaData gives the enhanced codecs as FourCC numbers.
			if len(w.metadata) != 1 || w.metadata[0].VideoFourCC != tc.vfourcc || w.metadata[0].AudioFourCC != tc.afourcc {
				t.Errorf("metadata %+v, want FourCCs %q and %q", w.metadata, tc.vfourcc, tc.afourcc)
			}
			if len(w.tracks) != 2 {
				t.Fatalf("%d tracks announced, want 2", len(w.tracks))
			}
			for _, tr := range w.tracks {
				switch tr.ID {
				case remux.TrackVideo:
					if tr.Codec != tc.video || tr.CodecString != tc.vcodecs || tr.Width != tc.width || tr.Height != tc.height {
						t.Errorf("video track %v %q %dx%d, want %v %q %dx%d", tr.Codec, tr.CodecString, tr.Width, tr.Height,
							tc.video, tc.vcodecs, tc.width, tc.height)
					}
				case remux.TrackAudio:
					if tr.Codec != tc.audio || tr.CodecString != tc.acodecs || tr.SampleRate != tc.sampleRate || tr.Channels != tc.channel {
						t.Errorf("audio track %v %q %d Hz %d ch, want %v %q %d Hz %d ch", tr.Codec, tr.CodecString, tr.SampleRate, tr.Channels,
							tc.audio, tc.acodecs, tc.sampleRate, tc.channel)
					}
				}
			}
			var n, keys [3]int
			var last [3]int64
			for i, f := range w.frames {
				n[f.Track]++
				if f.Key {
					keys[f.Track]++
				}
				if n[f.Track] > 1 && f.DTS < last[f.Track] {
					t.Fatalf("frame %d of track %d: DTS %d after %d", i, f.Track, f.DTS, last[f.Track])
				}
				last[f.Track] = f.DTS
				if f.Track == remux.TrackVideo && n[f.Track] == 1 && !f.Key {
					t.Fatalf("first video frame is not a key frame")
				}
			}
			if n[remux.TrackVideo] != 150 || keys[remux.TrackVideo] != 3 {
				t.Errorf("%d video frames, %d keys; want 150 with 3 keys", n[remux.TrackVideo], keys[remux.TrackVideo])
			}
			if n[remux.TrackAudio] != tc.audioFrames || keys[remux.TrackAudio] != tc.audioFrames {
				t.Errorf("%d audio frames (%d keys), want %d", n[remux.TrackAudio], keys[remux.TrackAudio], tc.audioFrames)
			}
			// 6 s of 25 fps video: the last frame's DTS is 5.96 s after the first.
			if d := last[remux.TrackVideo] - w.frames[0].DTS; d < 5800 || d > 6100 {
				t.Errorf("video spans %d ms", d)
			}
		})
	}
}

// FLAC, AC-3 and E-AC-3 encoded by Debian's ffmpeg, wrapped per Enhanced RTMP
// v2 by the test publisher (FLAC with its STREAMINFO as sequence start, AC-3
// and E-AC-3 with none, as the specification defines none) and published over
// a real connection: the Writer gets one audio track described as the sample
// entry writers expect and every frame.
func TestEnhancedAudioCodecs(t *testing.T) {
	for _, tc := range []struct {
		codec   string
		want    remux.Codec
		codecs  string
		cfgSize int // dfLa: one STREAMINFO block; dac3; dec3 of one substream
	}{
		{"flac", remux.CodecFLAC, "fLaC", 38},
		{"ac3", remux.CodecAC3, "ac-3", 3},
		{"eac3", remux.CodecEAC3, "ec-3", 5},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			es := testkit.EncodeAudio(t, tc.codec, 2)
			h := newRecHandler()
			addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			p, err := rtmpclient.Dial(ctx, "rtmp://"+addr+"/live/"+tc.codec, rtmpclient.Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, tag := range rtmpclient.ExAudioTags(es.FourCC, es.Config, es.Frames, es.SamplesPerFrame, es.Rate) {
				if err := p.WriteAudio(tag.Timestamp, tag.Body); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			w := h.next(t)
			w.wait(t)
			if w.cause != nil {
				t.Fatalf("Close cause %v", w.cause)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.tracks) != 1 {
				t.Fatalf("%d tracks, want 1", len(w.tracks))
			}
			tr := w.tracks[0]
			if tr.ID != remux.TrackAudio || tr.Codec != tc.want || tr.CodecString != tc.codecs || tr.SampleRate != 48000 ||
				tr.Channels != 2 || tr.Timescale != 48000 || len(tr.Config) != tc.cfgSize {
				t.Errorf("track %+v", tr)
			}
			if len(w.frames) != len(es.Frames) {
				t.Errorf("%d frames, want %d", len(w.frames), len(es.Frames))
			}
			for i, f := range w.frames {
				if !f.Key || i > 0 && f.DTS < w.frames[i-1].DTS {
					t.Fatalf("frame %d: key %v, DTS %d", i, f.Key, f.DTS)
				}
			}
		})
	}
}
