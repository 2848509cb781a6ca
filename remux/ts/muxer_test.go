package ts_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

var update = flag.Bool("update", false, "rewrite testdata/golden files")

func testVideo(lsize int) *remux.Track {
	return &remux.Track{
		ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000, NALULengthSize: lsize,
		SPS: [][]byte{{0x67, 0x64, 0x00, 0x1F, 0xAC}},
		PPS: [][]byte{{0x68, 0xEE, 0x3C, 0x80}},
	}
}

func testAudio() *remux.Track {
	return &remux.Track{
		ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 44100,
		Config: []byte{0x12, 0x10}, AudioObjectType: 2, SampleRate: 44100, Channels: 2,
	}
}

// ffmpegPSI is what ffmpeg 5.1's mpegts muxer writes for H.264 + AAC with its
// defaults (the same PIDs and numbering): an oracle independent of this package.
const ffmpegPSI = "474000100000b00d0001c100000001f0002ab104b2" + "|" +
	"475000100002b0170001c10000e100f0001be100f0000fe101f0002f44b99b"

func TestSegmentStartGolden(t *testing.T) {
	tests := []struct {
		name         string
		video, audio *remux.Track
	}{
		{"av", testVideo(4), testAudio()},
		{"video", testVideo(4), nil},
		{"audio", nil, testAudio()},
		{"none", nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ts.NewMuxer(tc.video, tc.audio).AppendSegmentStart(nil)
			if len(got) != 2*188 {
				t.Fatalf("%d bytes, want 376", len(got))
			}
			if _, err := demux(got, map[uint16]int{}); err != nil {
				t.Fatal(err)
			}
			var dump strings.Builder
			for i := 0; i < len(got); i += 188 {
				p := got[i : i+188]
				for len(p) > 0 && p[len(p)-1] == 0xFF {
					p = p[:len(p)-1]
				}
				dump.WriteString(hex.EncodeToString(p) + "\n")
			}
			path := filepath.Join("testdata", "golden", "psi_"+tc.name+".hex")
			if *update {
				if err := os.WriteFile(path, []byte(dump.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if dump.String() != string(want) {
				t.Errorf("PAT/PMT\n got %s\nwant %s", dump.String(), want)
			}
			if tc.name == "av" {
				if g := strings.ReplaceAll(strings.TrimSpace(dump.String()), "\n", "|"); g != ffmpegPSI {
					t.Errorf("PAT/PMT differ from ffmpeg's\n got %s\nwant %s", g, ffmpegPSI)
				}
			}
		})
	}
}

func TestSegmentStartContinuity(t *testing.T) {
	m := ts.NewMuxer(testVideo(4), testAudio())
	cc := map[uint16]int{}
	var buf []byte
	for i := range 40 { // past the 4-bit wrap
		buf = m.AppendSegmentStart(buf[:0])
		var err error
		if buf, err = m.AppendFrame(buf, &remux.Frame{Track: testAudio(), DTS: int64(i) * 23, Key: true, Data: []byte{1, 2, 3}}); err != nil {
			t.Fatal(err)
		}
		if _, err := demux(buf, cc); err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
	}
}

// lp builds length-prefixed NAL units with the given prefix size.
func lp(size int, nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		for i := size - 1; i >= 0; i-- {
			b = append(b, byte(len(n)>>(8*i)))
		}
		b = append(b, n...)
	}
	return b
}

func annexB(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(append(b, 0, 0, 0, 1), n...)
	}
	return b
}

var (
	aud   = []byte{0x09, 0xF0}
	idr   = []byte{0x65, 0x88, 0x84, 0x00, 0x00, 0x03}
	slice = []byte{0x41, 0x9A, 0x02}
	sei   = []byte{0x06, 0x05, 0x01, 0x80}
	sps2  = []byte{0x67, 0x42, 0xC0, 0x1E}
	pps2  = []byte{0x68, 0xCE, 0x06}
)

func TestAppendFrameVideo(t *testing.T) {
	v := testVideo(4)
	ps := [][]byte{v.SPS[0], v.PPS[0]}
	tests := []struct {
		name  string
		lsize int
		key   bool
		nals  [][]byte
		want  [][]byte
	}{
		{"idr gets AUD and parameter sets", 4, true, [][]byte{sei, idr}, append(append([][]byte{aud}, ps...), sei, idr)},
		{"non-key gets only AUD", 4, false, [][]byte{slice}, [][]byte{aud, slice}},
		{"AUD in frame not duplicated", 4, false, [][]byte{aud, slice}, [][]byte{aud, slice}},
		{"parameter sets go after the frame's AUD", 4, true, [][]byte{aud, idr}, append(append([][]byte{aud}, ps...), idr)},
		{"frame's own parameter sets kept, none added", 4, true, [][]byte{sps2, pps2, idr}, [][]byte{aud, sps2, pps2, idr}},
		{"1-byte lengths", 1, false, [][]byte{slice, slice}, [][]byte{aud, slice, slice}},
		{"2-byte lengths", 2, true, [][]byte{idr}, append(append([][]byte{aud}, ps...), idr)},
		{"empty NAL units skipped", 4, false, [][]byte{{}, slice, {}}, [][]byte{aud, slice}},
		{"big frame spans packets", 4, false, [][]byte{append([]byte{0x41}, bytes.Repeat([]byte{0xAB}, 5000)...)}, [][]byte{aud, append([]byte{0x41}, bytes.Repeat([]byte{0xAB}, 5000)...)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := testVideo(tc.lsize)
			m := ts.NewMuxer(tr, nil)
			in := lp(tc.lsize, tc.nals...)
			orig := bytes.Clone(in)
			out, err := m.AppendFrame(nil, &remux.Frame{Track: tr, DTS: 1000, CTS: 66, Key: tc.key, Data: in})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(in, orig) {
				t.Error("input modified")
			}
			d, err := demux(out, map[uint16]int{})
			if err != nil {
				t.Fatal(err)
			}
			if len(d.pes) != 1 {
				t.Fatalf("%d PES", len(d.pes))
			}
			u := d.pes[0]
			if want := annexB(tc.want...); !bytes.Equal(u.es, want) {
				t.Errorf("ES\n got % x\nwant % x", u.es, want)
			}
			if u.pts != 1066*90 || u.dts != 1000*90 || !u.hasDTS || u.streamID != 0xE0 || u.pid != ts.PIDVideo {
				t.Errorf("PES pts %d dts %d sid %#x pid %#x", u.pts, u.dts, u.streamID, u.pid)
			}
			if u.pcr != 1000*90*300 || u.rai != tc.key {
				t.Errorf("pcr %d rai %v", u.pcr, u.rai)
			}
			if want := (len(u.es) + 19 + 8 + 183) / 184; d.packets > want {
				t.Errorf("%d packets for %d ES bytes, want at most %d", d.packets, len(u.es), want)
			}
		})
	}
}

func TestAppendFrameTimestamps(t *testing.T) {
	tests := []struct {
		name               string
		dts                int64
		cts                int32
		wantPTS, wantDTS   int64
		wantDTSField, pcr0 bool
	}{
		{"zero", 0, 0, 0, 0, false, true},
		{"b-frame offset", 100, 67, 167 * 90, 100 * 90, true, false},
		{"negative dts clamped", -50, 0, 0, 0, false, true},
		{"negative cts raises pts to dts", 100, -40, 100 * 90, 100 * 90, false, false},
		{"33-bit wrap", 1<<33/90 + 10, 0, (1<<33/90 + 10) * 90 & (1<<33 - 1), (1<<33/90 + 10) * 90 & (1<<33 - 1), false, false},
		{"huge dts does not panic", 1<<63 - 1, 1000, (1<<63 - 1) * 90 & (1<<33 - 1), (1<<63 - 1) * 90 & (1<<33 - 1), false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := testVideo(4)
			out, err := ts.NewMuxer(tr, nil).AppendFrame(nil, &remux.Frame{Track: tr, DTS: tc.dts, CTS: tc.cts, Data: lp(4, slice)})
			if err != nil {
				t.Fatal(err)
			}
			d, err := demux(out, map[uint16]int{})
			if err != nil {
				t.Fatal(err)
			}
			u := d.pes[0]
			if u.pts != tc.wantPTS || u.dts != tc.wantDTS || u.hasDTS != tc.wantDTSField {
				t.Errorf("pts %d dts %d (field %v), want %d %d (%v)", u.pts, u.dts, u.hasDTS, tc.wantPTS, tc.wantDTS, tc.wantDTSField)
			}
			if u.pcr != u.dts*300 {
				t.Errorf("pcr %d, want dts×300 = %d", u.pcr, u.dts*300)
			}
		})
	}
}

func TestAppendFrameAudio(t *testing.T) {
	heAAC := &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC,
		// Explicit SBR: object type 5, core 22050 Hz (index 7), stereo, extension
		// 44100 Hz (index 4), then object type 2.
		Config: []byte{0x2B, 0x92, 0x08, 0x00}, AudioObjectType: 5, SampleRate: 44100, Channels: 2}
	configOnly := &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC, Config: []byte{0x11, 0x88}} // LC 48000 mono
	tests := []struct {
		name     string
		track    *remux.Track
		size     int
		wantADTS string // first 4 bytes: profile, rate index and channels live here
	}{
		{"lc 44100 stereo", testAudio(), 300, "fff15080"},
		{"he-aac written as its lc core", heAAC, 300, "fff15c80"},
		{"fields missing: from config", configOnly, 10, "fff14c40"},
		{"one byte", testAudio(), 1, "fff15080"},
		{"exactly fills first packet", testAudio(), 184 - 4 - 14 - 7 - 8, "fff15080"},
		{"one past first packet", testAudio(), 184 - 14 - 7 - 8 + 1 - 4, "fff15080"},
		{"largest", testAudio(), 8191 - 7, "fff15083"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data := bytes.Repeat([]byte{0x21}, tc.size)
			out, err := ts.NewMuxer(nil, tc.track).AppendFrame(nil, &remux.Frame{Track: tc.track, DTS: 500, Key: true, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			d, err := demux(out, map[uint16]int{})
			if err != nil {
				t.Fatal(err)
			}
			u := d.pes[0]
			if got := hex.EncodeToString(u.es[:4]); got != tc.wantADTS {
				t.Errorf("ADTS starts %s, want %s", got, tc.wantADTS)
			}
			flen := int(u.es[3]&3)<<11 | int(u.es[4])<<3 | int(u.es[5]>>5)
			if flen != 7+tc.size || !bytes.Equal(u.es[7:], data) {
				t.Errorf("frame_length %d for %d bytes, or payload differs", flen, tc.size)
			}
			if u.pesLength != 3+5+7+tc.size || u.hasDTS || u.pts != 500*90 || u.pcr != 500*90*300 || !u.rai {
				t.Errorf("PES length %d pts %d dts field %v pcr %d rai %v", u.pesLength, u.pts, u.hasDTS, u.pcr, u.rai)
			}
			if want := (u.pesLength + 6 + 8 + 183) / 184; d.packets != want {
				t.Errorf("%d packets, want %d", d.packets, want)
			}
		})
	}
}

// Packet filling around every boundary: each size must come back intact, with
// stuffing only in the last packet.
func TestAppendFramePacketSizes(t *testing.T) {
	for _, withVideo := range []bool{false, true} {
		a := testAudio()
		var v *remux.Track
		if withVideo {
			v = testVideo(4) // audio PES then carry no PCR
		}
		m := ts.NewMuxer(v, a)
		cc := map[uint16]int{}
		for n := 1; n <= 600; n++ {
			data := bytes.Repeat([]byte{byte(n)}, n)
			out, err := m.AppendFrame(nil, &remux.Frame{Track: a, DTS: int64(n), Key: true, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			d, err := demux(out, cc)
			if err != nil {
				t.Fatalf("video=%v size %d: %v", withVideo, n, err)
			}
			if !bytes.Equal(d.pes[0].es[7:], data) {
				t.Fatalf("video=%v size %d: payload differs", withVideo, n)
			}
		}
	}
}

func TestAppendFrameErrors(t *testing.T) {
	v, a := testVideo(4), testAudio()
	noPS := testVideo(4)
	noPS.SPS, noPS.PPS = nil, nil
	badLen := testVideo(3)
	badLen.NALULengthSize = 0
	badRate := testAudio()
	badRate.SampleRate, badRate.Config = 12345, nil
	otherCodec := &remux.Track{Codec: remux.CodecUnknown}
	av1Track := &remux.Track{ID: 1, Codec: remux.CodecAV1}
	vp9Track := &remux.Track{ID: 1, Codec: remux.CodecVP9}
	opusTrack := &remux.Track{ID: 2, Codec: remux.CodecOpus}
	hevcTrack := &remux.Track{ID: 1, Codec: remux.CodecHEVC, NALULengthSize: 4}
	hevcNoVPS := &remux.Track{ID: 1, Codec: remux.CodecHEVC, NALULengthSize: 4, SPS: [][]byte{{0x42, 1}}, PPS: [][]byte{{0x44, 1}}}
	ac3Track := &remux.Track{ID: 2, Codec: remux.CodecAC3}
	tests := []struct {
		name         string
		video, audio *remux.Track
		f            *remux.Frame
		want         string
		is           error
	}{
		{"nil frame", v, a, nil, "without track", nil},
		{"nil track", v, a, &remux.Frame{}, "without track", nil},
		{"no video track", nil, a, &remux.Frame{Track: v, Data: lp(4, slice)}, "video frame", ts.ErrNoTrack},
		{"no audio track", v, nil, &remux.Frame{Track: a, Data: []byte{1}}, "audio frame", ts.ErrNoTrack},
		{"no tracks at all", nil, nil, &remux.Frame{Track: a, Data: []byte{1}}, "audio frame", ts.ErrNoTrack},
		{"unknown codec", v, a, &remux.Frame{Track: otherCodec, Data: []byte{1}}, "Codec(0)", ts.ErrCodec},
		{"AV1 not carried", av1Track, a, &remux.Frame{Track: av1Track, Key: true, Data: []byte{0x12, 0}}, "video frame at dts 0 ms: AV1", ts.ErrCodec},
		{"VP9 not carried", vp9Track, nil, &remux.Frame{Track: vp9Track, Data: []byte{0x82}}, "VP9", ts.ErrCodec},
		{"Opus not carried", v, opusTrack, &remux.Frame{Track: opusTrack, Data: []byte{0xf8}}, "audio frame at dts 0 ms: Opus", ts.ErrCodec},
		{"HEVC frame on an H.264 PID", v, a, &remux.Frame{Track: hevcTrack, Data: lp(4, slice)}, "codec HEVC, the PMT says H264", ts.ErrCodec},
		{"HEVC IRAP without VPS", hevcNoVPS, a, &remux.Frame{Track: hevcNoVPS, Key: true, Data: lp(4, []byte{0x26, 0x01, 0xaf})}, "without parameter sets", nil},
		{"AC-3 without syncword", v, ac3Track, &remux.Frame{Track: ac3Track, Data: []byte{1, 2, 3}}, "syncword", nil},
		{"NAL length past end", v, a, &remux.Frame{Track: v, DTS: 7, Data: []byte{0, 0, 0, 9, 0x41}}, "ts: video frame at dts 7 ms: NAL unit 0: length 9 > remaining 1 bytes", nil},
		{"partial length prefix", v, a, &remux.Frame{Track: v, Data: append(lp(4, slice), 0, 0)}, "NAL unit 1: 2 bytes left", nil},
		{"bad length size", badLen, a, &remux.Frame{Track: badLen, Data: lp(4, slice)}, "length size 0", nil},
		{"keyframe without parameter sets", noPS, a, &remux.Frame{Track: noPS, Key: true, Data: lp(4, idr)}, "without parameter sets", nil},
		{"audio too big for ADTS", v, a, &remux.Frame{Track: a, Data: make([]byte, 8185)}, "ADTS limit 8184", nil},
		{"sample rate not in ADTS", v, badRate, &remux.Frame{Track: badRate, Data: []byte{1}}, "audio config", nil},
		{"frame too big", v, a, &remux.Frame{Track: v, Data: make([]byte, ts.MaxFrameSize+1)}, "> limit 16777216", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := ts.NewMuxer(tc.video, tc.audio)
			cc := map[uint16]int{}
			before := m.AppendSegmentStart([]byte("keep"))
			if _, err := demux(before[4:], cc); err != nil {
				t.Fatal(err)
			}
			out, err := m.AppendFrame(before, tc.f)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
			if !bytes.Equal(out, before) {
				t.Error("dst changed on error")
			}
			// Counters did not move: the next segment start continues them.
			if _, err := demux(m.AppendSegmentStart(nil), cc); err != nil {
				t.Error(err)
			}
		})
	}
	// A valid frame after a refused one continues the PID's counter.
	m := ts.NewMuxer(v, nil)
	cc := map[uint16]int{}
	out, _ := m.AppendFrame(nil, &remux.Frame{Track: v, Data: lp(4, slice)})
	if _, err := m.AppendFrame(nil, &remux.Frame{Track: v, Data: []byte{9}}); err == nil {
		t.Fatal("want error")
	}
	out, _ = m.AppendFrame(out, &remux.Frame{Track: v, DTS: 33, Data: lp(4, slice)})
	if _, err := demux(out, cc); err != nil {
		t.Error(err)
	}
}

func TestAppendFrameNoAllocs(t *testing.T) {
	v, a := testVideo(4), testAudio()
	m := ts.NewMuxer(v, a)
	key := &remux.Frame{Track: v, Key: true, CTS: 66, Data: lp(4, sei, append([]byte{0x65}, make([]byte, 30000)...))}
	inter := &remux.Frame{Track: v, CTS: 33, Data: lp(4, append([]byte{0x41}, make([]byte, 3000)...))}
	au := &remux.Frame{Track: a, Key: true, Data: make([]byte, 400)}
	buf := make([]byte, 0, 1<<20)
	var err error
	allocs := testing.AllocsPerRun(100, func() {
		buf = m.AppendSegmentStart(buf[:0])
		for _, f := range []*remux.Frame{key, au, inter, au} {
			f.DTS += 33
			if buf, err = m.AppendFrame(buf, f); err != nil {
				t.Fatal(err)
			}
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per segment of 4 frames, want 0", allocs)
	}
}
