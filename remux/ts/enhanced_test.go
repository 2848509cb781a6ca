package ts_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixturemedia"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

type enhancedStream struct {
	CodecType    string `json:"codec_type"`
	CodecName    string `json:"codec_name"`
	Profile      string `json:"profile"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	SampleRate   string `json:"sample_rate"`
	Channels     int    `json:"channels"`
	NbReadFrames string `json:"nb_read_frames"`
}

// TestHEVCFixture muxes the HEVC+AAC Enhanced RTMP fixture (read with
// ingest/flv) into TS segments cut at key frames, and checks our bytes (PMT
// stream type 0x24, an AUD first in every PES, VPS/SPS/PPS after it on every
// IRAP and only there) and what ffmpeg makes of them: no decode error, HEVC
// Main 640x360, all 150 pictures and every audio frame decoded with the
// source's PTS, a key frame first in every segment, DTS continuous across
// segments. TS_KEEP=dir keeps the segments.
func TestHEVCFixture(t *testing.T) {
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	testkit.NeedTool(t, "ffprobe")
	clip := fixturemedia.Read(t, "hevc-aac.flv")
	if !ts.Carries(clip.Video.Codec) || !ts.Carries(clip.Audio.Codec) {
		t.Fatal("TS does not carry HEVC+AAC")
	}
	// A segment per GOP: its key frames have DTS 0, 1960 and 3960 ms (x265's
	// B-frames delay decode), which cut's 2 s rule would merge.
	var segs [][]remux.Frame
	for _, f := range clip.Frames {
		if len(segs) == 0 || f.Key && f.Track == clip.Video {
			segs = append(segs, nil)
		}
		segs[len(segs)-1] = append(segs[len(segs)-1], f)
	}
	if len(segs) != 3 {
		t.Fatalf("%d segments, want 3", len(segs))
	}
	dir := t.TempDir()
	if k := os.Getenv("TS_KEEP"); k != "" {
		dir = k
	}
	m := ts.NewMuxer(clip.Video, clip.Audio)
	var (
		buf, all []byte
		paths    []string
		err      error
	)
	for i, seg := range segs {
		buf = m.AppendSegmentStart(buf[:0])
		for j := range seg {
			if buf, err = m.AppendFrame(buf, &seg[j]); err != nil {
				t.Fatalf("segment %d frame %d: %v", i, j, err)
			}
		}
		p := filepath.Join(dir, fmt.Sprintf("hevc%d.ts", i))
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		all = append(all, buf...)
	}

	// Our bytes.
	d, err := demux(all, map[uint16]int{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.pmt) != 3 || d.pmt[0][12] != ts.StreamTypeHEVC || d.pmt[0][17] != ts.StreamTypeAACADTS {
		t.Fatalf("PMT %x: want HEVC (0x24) then AAC", d.pmt[0])
	}
	if len(d.pes) != len(clip.Frames) {
		t.Fatalf("%d PES for %d frames", len(d.pes), len(clip.Frames))
	}
	aud := []byte{0, 0, 0, 1, 0x46, 0x01, 0x50}
	vps := append([]byte{0, 0, 0, 1}, clip.Video.VPS[0]...)
	irap := 0
	for i, u := range d.pes {
		f := clip.Frames[i]
		if f.Track != clip.Video {
			continue
		}
		if !bytes.HasPrefix(u.es, aud) {
			t.Errorf("PES %d: does not start with an HEVC AUD: % x", i, u.es[:min(12, len(u.es))])
		}
		if has := bytes.HasPrefix(u.es[len(aud):], vps); has != f.Key {
			t.Errorf("PES %d: IRAP %v, VPS after the AUD %v", i, f.Key, has)
		}
		if f.Key {
			irap++
		}
		if u.rai != f.Key || u.pts != f.PTS()*90 || u.dts != f.DTS*90 {
			t.Errorf("PES %d: rai %v pts %d dts %d, want %v %d %d", i, u.rai, u.pts, u.dts, f.Key, f.PTS()*90, f.DTS*90)
		}
	}
	if irap != 3 {
		t.Errorf("%d IRAP pictures, want 3", irap)
	}

	// What ffmpeg makes of them.
	var nVideo, nAudio int
	for i, p := range paths {
		if msg := decodeErrors(t, ffmpeg, p); msg != "" {
			t.Errorf("segment %d: ffmpeg says:\n%s", i, msg)
		}
		// x265 writes open GOPs: the pictures after a later segment's CRA in
		// decode order but before it in output order (RASL) refer to the GOP
		// before, so a decoder starting at the segment drops them, as H.265
		// 8.1.3 has it. The whole stream below decodes them all.
		var wantV, gotV, wantA, gotA []int64
		keyPTS := int64(-1)
		for _, f := range segs[i] {
			if f.Track == clip.Video && f.Key && i > 0 {
				keyPTS = f.PTS()
			}
			if f.Track == clip.Video {
				if f.PTS() >= keyPTS {
					wantV = append(wantV, f.PTS()*90)
				}
			} else {
				wantA = append(wantA, f.PTS()*90)
			}
		}
		first := true
		for _, f := range probe(t, p, "frames") {
			if f.PTS == nil {
				t.Fatalf("segment %d: %s frame without pts", i, f.MediaType)
			}
			switch f.MediaType {
			case "video":
				if first && f.KeyFrame != 1 {
					t.Errorf("segment %d: first picture is not a key frame", i)
				}
				first = false
				gotV = append(gotV, *f.PTS)
			case "audio":
				gotA = append(gotA, *f.PTS)
			}
		}
		slices.Sort(wantV)
		slices.Sort(gotV)
		if !slices.Equal(gotV, wantV) || !slices.Equal(gotA, wantA) {
			t.Errorf("segment %d: decoded pts\nvideo %v\n want %v\naudio %v\n want %v", i, gotV, wantV, gotA, wantA)
		}
	}
	whole := filepath.Join(dir, "hevc-all.ts")
	if err := os.WriteFile(whole, all, 0o644); err != nil {
		t.Fatal(err)
	}
	if msg := decodeErrors(t, ffmpeg, whole); msg != "" {
		t.Errorf("segments back to back: ffmpeg says:\n%s", msg)
	}
	for _, f := range probe(t, whole, "frames") {
		if f.MediaType == "video" {
			nVideo++
		} else {
			nAudio++
		}
	}
	if nA := len(clip.AudioFrames()); nVideo != 150 || nAudio != nA {
		t.Errorf("decoded %d pictures and %d audio frames, want 150 and %d", nVideo, nAudio, nA)
	}
	var st struct {
		Streams []enhancedStream `json:"streams"`
	}
	testkit.Probe(t, &st, "concat:"+paths[0]+"|"+paths[1]+"|"+paths[2], "-show_entries", "stream=codec_type,codec_name,profile,width,height,sample_rate,channels")
	if len(st.Streams) != 2 || st.Streams[0].CodecName != "hevc" || st.Streams[0].Profile != "Main" ||
		st.Streams[0].Width != 640 || st.Streams[0].Height != 360 ||
		st.Streams[1].CodecName != "aac" || st.Streams[1].SampleRate != "48000" || st.Streams[1].Channels != 1 {
		t.Errorf("streams %+v, want HEVC Main 640x360 and AAC 48 kHz mono", st.Streams)
	}
	checkConcat(t, paths, len(clip.Frames))
}

// TestNotCarried checks that the AV1 and VP9 (with Opus) fixtures' tracks are
// refused: Carries says no, and the muxer made with them still writes a valid
// PAT/PMT and refuses every frame with ErrCodec.
func TestNotCarried(t *testing.T) {
	for _, file := range []string{"av1-opus.flv", "vp9-opus.flv"} {
		clip := fixturemedia.Read(t, file)
		if ts.Carries(clip.Video.Codec) || ts.Carries(clip.Audio.Codec) {
			t.Errorf("%s: Carries says yes to %v or %v", file, clip.Video.Codec, clip.Audio.Codec)
		}
		m := ts.NewMuxer(clip.Video, clip.Audio)
		start := m.AppendSegmentStart(nil)
		d, err := demux(start, map[uint16]int{})
		if err != nil || len(d.pmt) != 1 {
			t.Fatalf("%s: PSI %v", file, err)
		}
		for i := range clip.Frames[:10] {
			if _, err := m.AppendFrame(start, &clip.Frames[i]); err == nil {
				t.Errorf("%s: frame %d of %v muxed", file, i, clip.Frames[i].Track.Codec)
			}
		}
	}
}

// TestAC3 muxes AC-3 and E-AC-3 streams that ffmpeg encodes (one syncframe per
// frame, split where ffprobe's packets say) and checks that ffmpeg decodes
// every frame of them, with the right codec and PTS, from our TS.
func TestAC3(t *testing.T) {
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	testkit.NeedTool(t, "ffprobe")
	for _, tc := range []struct {
		codec remux.Codec
		name  string
		typ   byte
	}{{remux.CodecAC3, "ac3", ts.StreamTypeAC3}, {remux.CodecEAC3, "eac3", ts.StreamTypeEAC3}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			src := filepath.Join(dir, "src."+tc.name)
			testkit.Run(t, ffmpeg, "-v", "error", "-nostdin", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=2",
				"-ac", "2", "-c:a", tc.name, "-b:a", "192k", "-f", tc.name, src)
			raw, err := os.ReadFile(src)
			if err != nil {
				t.Fatal(err)
			}
			var pk struct {
				Packets []struct {
					Pos     string `json:"pos"`
					Size    string `json:"size"`
					PTSTime string `json:"pts_time"`
				} `json:"packets"`
			}
			testkit.Probe(t, &pk, src, "-show_entries", "packet=pos,size,pts_time")
			tr := &remux.Track{ID: remux.TrackAudio, Codec: tc.codec, Timescale: 48000, SampleRate: 48000, Channels: 2}
			m := ts.NewMuxer(nil, tr)
			out := m.AppendSegmentStart(nil)
			var want []int64
			for i, p := range pk.Packets {
				pos, _ := strconv.Atoi(p.Pos)
				size, _ := strconv.Atoi(p.Size)
				sec, _ := strconv.ParseFloat(p.PTSTime, 64)
				if pos+size > len(raw) || size == 0 {
					t.Fatalf("packet %d at %d size %d", i, pos, size)
				}
				f := remux.Frame{Track: tr, DTS: int64(sec*1000 + 0.5), Key: true, Data: raw[pos : pos+size]}
				want = append(want, f.DTS*90)
				if out, err = m.AppendFrame(out, &f); err != nil {
					t.Fatal(err)
				}
			}
			if len(want) < 50 {
				t.Fatalf("only %d frames", len(want))
			}
			d, err := demux(out, map[uint16]int{})
			if err != nil || d.pmt[0][12] != tc.typ {
				t.Fatalf("PMT %x (%v): want stream type %#x", d.pmt, err, tc.typ)
			}
			path := filepath.Join(dir, "a.ts")
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			if msg := decodeErrors(t, ffmpeg, path); msg != "" {
				t.Errorf("ffmpeg says:\n%s", msg)
			}
			var got []int64
			for _, f := range probe(t, path, "frames") {
				got = append(got, *f.PTS)
			}
			if !slices.Equal(got, want) {
				t.Errorf("decoded pts\n got %v\nwant %v", got, want)
			}
			var st struct {
				Streams []enhancedStream `json:"streams"`
			}
			testkit.Probe(t, &st, path, "-show_entries", "stream=codec_name,sample_rate,channels")
			if len(st.Streams) != 1 || st.Streams[0].CodecName != tc.name || st.Streams[0].Channels != 2 {
				t.Errorf("streams %+v, want %s stereo", st.Streams, tc.name)
			}
		})
	}
}
