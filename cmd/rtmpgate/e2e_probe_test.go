package main

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// packet is one demuxed access unit, times in milliseconds.
type packet struct {
	pts, dts float64
	key      bool
}

// media is what ffprobe found in a file.
type media struct {
	video, audio             []packet
	videoFrames, audioFrames int // decoded frames, when probed with decode
}

// probe lists a file's packets with ffprobe and, with decode, counts the frames
// that actually decode.
func probe(t testing.TB, path string, decode bool) media {
	t.Helper()
	args := []string{"-show_entries", "stream=index,codec_type,time_base,nb_read_frames:packet=stream_index,pts,dts,flags"}
	if decode {
		args = append(args, "-count_frames")
	}
	var doc struct {
		Streams []struct {
			Index        int    `json:"index"`
			CodecType    string `json:"codec_type"`
			TimeBase     string `json:"time_base"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
		Packets []struct {
			StreamIndex int    `json:"stream_index"`
			PTS         *int64 `json:"pts"`
			DTS         *int64 `json:"dts"`
			Flags       string `json:"flags"`
		} `json:"packets"`
	}
	testkit.Probe(t, &doc, path, args...)
	var m media
	kind := map[int]string{}
	scale := map[int]float64{}
	for _, s := range doc.Streams {
		kind[s.Index] = s.CodecType
		num, den, _ := strings.Cut(s.TimeBase, "/")
		n, _ := strconv.ParseFloat(num, 64)
		d, _ := strconv.ParseFloat(den, 64)
		if d > 0 {
			scale[s.Index] = 1000 * n / d
		}
		frames, _ := strconv.Atoi(s.NbReadFrames)
		switch s.CodecType {
		case "video":
			m.videoFrames += frames
		case "audio":
			m.audioFrames += frames
		}
	}
	for _, p := range doc.Packets {
		if p.PTS == nil || p.DTS == nil {
			t.Fatalf("%s: packet without pts/dts in stream %d", path, p.StreamIndex)
		}
		pk := packet{pts: float64(*p.PTS) * scale[p.StreamIndex], dts: float64(*p.DTS) * scale[p.StreamIndex], key: strings.Contains(p.Flags, "K")}
		switch kind[p.StreamIndex] {
		case "video":
			m.video = append(m.video, pk)
		case "audio":
			m.audio = append(m.audio, pk)
		}
	}
	return m
}

// frameDuration estimates a track's frame spacing from its decode times.
func frameDuration(pk []packet) float64 {
	if len(pk) < 2 {
		return 0
	}
	return (pk[len(pk)-1].dts - pk[0].dts) / float64(len(pk)-1)
}

// checkHLS judges a finished HLS rendition against its source: every frame arrived
// and decodes, each segment starts on a keyframe, timestamps run on across segments,
// audio and video start together, EXTINF matches the media, and presentation times
// (B-frames) equal the source's.
func checkHLS(t testing.TB, pl mediaPlaylist, segs []media, src media) {
	t.Helper()
	if len(segs) < 2 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	var all media
	for _, s := range segs {
		all.video = append(all.video, s.video...)
		all.audio = append(all.audio, s.audio...)
		all.videoFrames += s.videoFrames
		all.audioFrames += s.audioFrames
	}
	if len(all.video) != len(src.video) || len(all.audio) != len(src.audio) {
		t.Errorf("packets: video %d audio %d, source has video %d audio %d", len(all.video), len(all.audio), len(src.video), len(src.audio))
	}
	if all.videoFrames != len(src.video) {
		t.Errorf("decoded video frames %d, source has %d", all.videoFrames, len(src.video))
	}
	if all.audioFrames != len(src.audio) {
		t.Errorf("decoded audio frames %d, source has %d", all.audioFrames, len(src.audio))
	}
	vdur, adur := frameDuration(src.video), frameDuration(src.audio)
	for i, s := range segs {
		if len(src.video) > 0 {
			if len(s.video) == 0 {
				t.Errorf("segment %d has no video", i)
				continue
			}
			if !s.video[0].key {
				t.Errorf("segment %d does not start with a keyframe", i)
			}
		}
		if len(src.video) > 0 && len(src.audio) > 0 {
			if len(s.audio) == 0 {
				t.Errorf("segment %d has no audio", i)
			} else if off := math.Abs(s.audio[0].pts - s.video[0].pts); off > 100 {
				t.Errorf("segment %d: audio starts %.1f ms from video", i, off)
			}
		}
		// The media a segment holds: from its first decode time to the next segment's.
		main, dur := s.video, vdur
		if len(src.video) == 0 {
			main, dur = s.audio, adur
		}
		if len(main) == 0 {
			continue
		}
		var span float64
		if i+1 < len(segs) {
			nextMain := segs[i+1].video
			if len(src.video) == 0 {
				nextMain = segs[i+1].audio
			}
			if len(nextMain) > 0 {
				gap := nextMain[0].dts - main[len(main)-1].dts
				if math.Abs(gap-dur) > dur {
					t.Errorf("segment %d→%d: decode time jumps %.1f ms, frame is %.1f ms", i, i+1, gap, dur)
				}
				span = nextMain[0].dts - main[0].dts
			}
		} else {
			span = main[len(main)-1].dts + dur - main[0].dts
		}
		if extinf := pl.segments[i].duration * 1000; math.Abs(extinf-span) > dur+0.5 {
			t.Errorf("segment %d: EXTINF %.3f s but media spans %.3f s", i, extinf/1000, span/1000)
		}
		if math.Round(pl.segments[i].duration) > float64(pl.targetDuration) {
			t.Errorf("segment %d: EXTINF %.3f rounds above TARGETDURATION %d", i, pl.segments[i].duration, pl.targetDuration)
		}
	}
	// Presentation times relative to the first decode time equal the source's.
	if len(all.video) == len(src.video) && len(src.video) > 0 {
		for i := range src.video {
			got := all.video[i].pts - all.video[0].dts
			want := src.video[i].pts - src.video[0].dts
			if math.Abs(got-want) > 0.5 {
				t.Errorf("video packet %d: pts %.2f ms after start, source %.2f ms", i, got, want)
				break
			}
		}
	}
}

// tailOf cuts src to as many trailing packets per track as segs hold, for a relay
// that joined late; the video tail must begin on a keyframe.
func tailOf(t testing.TB, src media, segs []media) media {
	t.Helper()
	var nv, na int
	for _, s := range segs {
		nv += len(s.video)
		na += len(s.audio)
	}
	if nv == 0 || nv > len(src.video) || na > len(src.audio) {
		t.Fatalf("got %d video and %d audio packets from a source of %d and %d", nv, na, len(src.video), len(src.audio))
	}
	out := media{video: src.video[len(src.video)-nv:], audio: src.audio[len(src.audio)-na:]}
	if !out.video[0].key {
		t.Fatalf("the relayed stream starts %d frames into the clip, not on a keyframe", len(src.video)-nv)
	}
	t.Logf("relay joined %d video frames into the clip", len(src.video)-nv)
	return out
}
