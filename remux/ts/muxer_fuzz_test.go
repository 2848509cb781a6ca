package ts_test

import (
	"bytes"
	"testing"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/ts"
)

// FuzzAppendFrame feeds arbitrary frame bytes, NAL length sizes and timestamps.
// The muxer must never panic; on success its output must be whole, well-formed
// TS packets carrying exactly the expected elementary stream; on error dst must be
// untouched.
func FuzzAppendFrame(f *testing.F) {
	f.Add(lp(4, sei, idr), uint8(4), int64(0), int32(0), true, false)
	f.Add(lp(4, aud, slice), uint8(4), int64(1000), int32(66), false, false)
	f.Add(lp(2, sps2, pps2, idr), uint8(2), int64(33), int32(-40), true, false)
	f.Add(lp(1, slice, []byte{}, slice), uint8(1), int64(-5), int32(0), false, false)
	f.Add([]byte{0, 0, 0, 200, 1}, uint8(4), int64(1<<40), int32(1<<23), false, false)
	f.Add(bytes.Repeat([]byte{0x21}, 300), uint8(0), int64(23), int32(0), true, true)
	f.Add([]byte{}, uint8(3), int64(1<<63-1), int32(1<<31-1), true, true)
	f.Fuzz(func(t *testing.T, data []byte, lsize uint8, dts int64, cts int32, key, audio bool) {
		v, a := testVideo(int(lsize%6)), testAudio()
		m := ts.NewMuxer(v, a)
		fr := &remux.Frame{Track: v, DTS: dts, CTS: cts, Key: key, Data: data}
		if audio {
			fr.Track = a
		}
		d, ok := checkAppend(t, m, fr, referenceES)
		if ok && d.pes[0].pts < d.pes[0].dts && d.pes[0].dts-d.pes[0].pts < 1<<32 {
			t.Fatalf("pts %d before dts %d", d.pes[0].pts, d.pes[0].dts)
		}
	})
}

// referenceES converts a frame the slow, obvious way; ok is false when the muxer
// must refuse it.
func referenceES(f *remux.Frame) (es []byte, ok bool) {
	t := f.Track
	if t.Codec == remux.CodecAAC {
		if len(f.Data) > 8191-7 {
			return nil, false
		}
		n := 7 + len(f.Data)
		return append([]byte{0xFF, 0xF1, 0x50, 0x80 | byte(n>>11), byte(n >> 3), byte(n<<5) | 0x1F, 0xFC}, f.Data...), true
	}
	nals, ok := splitNALUs(f.Data, t.NALULengthSize)
	if !ok {
		return nil, false
	}
	hasPS := false
	for _, n := range nals {
		typ := n[0] & 0x1F
		hasPS = hasPS || typ == 7 || typ == 8
	}
	var out [][]byte
	if len(nals) > 0 && nals[0][0]&0x1F == 9 {
		out, nals = append(out, nals[0]), nals[1:]
	} else {
		out = append(out, aud)
	}
	if f.Key && !hasPS {
		out = append(out, t.SPS...)
		out = append(out, t.PPS...)
	}
	return annexB(append(out, nals...)...), true
}

// FuzzAppendFrameHEVC is FuzzAppendFrame for the codecs added with Enhanced
// RTMP: arbitrary HEVC frames (NAL length size, key flag, timestamps) and, with
// audio set, AC-3 frames. The muxer must never panic, must emit exactly the
// reference elementary stream (an HEVC AUD first, VPS/SPS/PPS after it on a
// key frame without them; AC-3 syncframes as they are) or refuse the frame and
// leave dst alone.
func FuzzAppendFrameHEVC(f *testing.F) {
	f.Add(lp(4, hevcIDR), uint8(4), int64(0), int32(80), true, false)
	f.Add(lp(4, hevcAUD, hevcTrail), uint8(4), int64(40), int32(0), false, false)
	f.Add(lp(2, hevcVPS, hevcSPS, hevcPPS, hevcIDR), uint8(2), int64(1000), int32(-40), true, false)
	f.Add(lp(1, hevcTrail, []byte{}, hevcTrail), uint8(1), int64(5), int32(0), false, false)
	f.Add([]byte{0x0B, 0x77, 1, 2, 3}, uint8(0), int64(32), int32(0), true, true)
	f.Add([]byte{0x0B, 0x76}, uint8(0), int64(32), int32(0), true, true)
	f.Fuzz(func(t *testing.T, data []byte, lsize uint8, dts int64, cts int32, key, audio bool) {
		v := &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecHEVC, Timescale: 90000, NALULengthSize: int(lsize % 6),
			VPS: [][]byte{hevcVPS}, SPS: [][]byte{hevcSPS}, PPS: [][]byte{hevcPPS}}
		a := &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAC3, Timescale: 48000, SampleRate: 48000, Channels: 2}
		m := ts.NewMuxer(v, a)
		fr := &remux.Frame{Track: v, DTS: dts, CTS: cts, Key: key, Data: data}
		if audio {
			fr.Track = a
		}
		checkAppend(t, m, fr, referenceHEVC)
	})
}

var (
	hevcAUD   = []byte{0x46, 0x01, 0x50}
	hevcVPS   = []byte{0x40, 0x01, 0x0C}
	hevcSPS   = []byte{0x42, 0x01, 0x01}
	hevcPPS   = []byte{0x44, 0x01, 0xC1}
	hevcIDR   = []byte{0x26, 0x01, 0xAF, 0x00, 0x00, 0x03}
	hevcTrail = []byte{0x02, 0x01, 0xD0}
)

// referenceHEVC converts an HEVC or AC-3 frame the slow, obvious way; ok is
// false when the muxer must refuse it.
func referenceHEVC(f *remux.Frame) (es []byte, ok bool) {
	t := f.Track
	if t.Codec == remux.CodecAC3 {
		if len(f.Data) < 2 || f.Data[0] != 0x0B || f.Data[1] != 0x77 || len(f.Data) > 0xFFFF-8 {
			return nil, false
		}
		return f.Data, true
	}
	nals, ok := splitNALUs(f.Data, t.NALULengthSize)
	if !ok {
		return nil, false
	}
	hasPS := false
	for _, n := range nals {
		typ := n[0] >> 1 & 0x3F
		hasPS = hasPS || typ >= 32 && typ <= 34
	}
	var out [][]byte
	if len(nals) > 0 && nals[0][0]>>1&0x3F == 35 {
		out, nals = append(out, nals[0]), nals[1:]
	} else {
		out = append(out, hevcAUD)
	}
	if f.Key && !hasPS {
		out = append(out, t.VPS[0], t.SPS[0], t.PPS[0])
	}
	return annexB(append(out, nals...)...), true
}

// checkAppend appends fr to a new segment and holds the result to the reference
// conversion: the input unchanged, a refused frame leaving dst alone, an
// accepted one as whole sync-byte packets whose one PES is the reference's
// elementary stream. ok reports whether the frame was accepted.
func checkAppend(t *testing.T, m *ts.Muxer, fr *remux.Frame, reference func(*remux.Frame) ([]byte, bool)) (d *demuxed, ok bool) {
	t.Helper()
	orig := bytes.Clone(fr.Data)
	start := m.AppendSegmentStart(nil)
	out, err := m.AppendFrame(start, fr)
	if !bytes.Equal(fr.Data, orig) {
		t.Fatal("input modified")
	}
	want, wantOK := reference(fr)
	if err != nil {
		if wantOK {
			t.Fatalf("refused a valid frame: %v", err)
		}
		if !bytes.Equal(out, start) {
			t.Fatal("dst changed on error")
		}
		return nil, false
	}
	if !wantOK {
		t.Fatal("accepted an invalid frame")
	}
	if len(out)%188 != 0 {
		t.Fatalf("output length %d", len(out))
	}
	for i := 0; i < len(out); i += 188 {
		if out[i] != 0x47 {
			t.Fatalf("packet %d: sync byte %#x", i/188, out[i])
		}
	}
	d, err = demux(out, map[uint16]int{})
	if err != nil {
		t.Fatal(err)
	}
	if len(d.pes) != 1 || !bytes.Equal(d.pes[0].es, want) {
		t.Fatalf("ES differs from reference conversion")
	}
	return d, true
}

// splitNALUs splits length-prefixed NAL units the slow, obvious way, leaving out
// empty ones; ok is false for a bad length size or a length past the end.
func splitNALUs(d []byte, ls int) (nals [][]byte, ok bool) {
	if ls < 1 || ls > 4 {
		return nil, false
	}
	for len(d) > 0 {
		if len(d) < ls {
			return nil, false
		}
		n := 0
		for _, b := range d[:ls] {
			n = n<<8 | int(b)
		}
		d = d[ls:]
		if n > len(d) {
			return nil, false
		}
		if n > 0 {
			nals = append(nals, d[:n])
		}
		d = d[n:]
	}
	return nals, true
}
