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
		orig := bytes.Clone(data)
		start := m.AppendSegmentStart(nil)
		out, err := m.AppendFrame(start, fr)
		if !bytes.Equal(data, orig) {
			t.Fatal("input modified")
		}
		want, wantOK := referenceES(fr)
		if err != nil {
			if wantOK {
				t.Fatalf("refused a valid frame: %v", err)
			}
			if !bytes.Equal(out, start) {
				t.Fatal("dst changed on error")
			}
			return
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
		d, err := demux(out, map[uint16]int{})
		if err != nil {
			t.Fatal(err)
		}
		if len(d.pes) != 1 || !bytes.Equal(d.pes[0].es, want) {
			t.Fatalf("ES differs from reference conversion")
		}
		if d.pes[0].pts < d.pes[0].dts && d.pes[0].dts-d.pes[0].pts < 1<<32 {
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
	ls := t.NALULengthSize
	if ls < 1 || ls > 4 {
		return nil, false
	}
	var nals [][]byte
	hasPS := false
	for d := f.Data; len(d) > 0; {
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
			typ := d[0] & 0x1F
			hasPS = hasPS || typ == 7 || typ == 8
		}
		d = d[n:]
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
