package cmaf

import (
	"bytes"
	"encoding/binary"
	"github.com/rtmpgate/rtmpgate/internal/mp4dump"
	"math"
	"math/big"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/codec/av1"
)

// refTicks is the reference conversion, in arbitrary precision: round half away
// from zero of ms * timescale / 1000.
func refTicks(ms *big.Int, timescale uint32) (int64, bool) {
	n := new(big.Int).Mul(ms, new(big.Int).SetUint64(uint64(timescale)))
	q := new(big.Int).Abs(n)
	q.Add(q, big.NewInt(500))
	q.Quo(q, big.NewInt(1000))
	if n.Sign() < 0 {
		q.Neg(q)
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func TestToTimescale(t *testing.T) {
	tests := []struct {
		ms    int64
		ts    uint32
		want  int64
		valid bool
	}{
		{0, 90000, 0, true},
		{1, 90000, 90, true},
		{33, 90000, 2970, true},
		{1, 44100, 44, true},   // 44.1
		{10, 44100, 441, true}, // exact
		{5, 44100, 221, true},  // 220.5 rounds up
		{-5, 44100, -221, true},
		{23, 44100, 1014, true}, // 1014.3
		{24, 44100, 1058, true}, // 1058.4
		{1, 1, 0, true},         // 0.001
		{500, 1, 1, true},       // 0.5 rounds up
		{math.MaxInt64, 1000, math.MaxInt64, true},
		{math.MinInt64, 1000, math.MinInt64, true},
		{math.MaxInt64, 1001, 0, false},
		{math.MaxInt64/90 + 1, 90000, 0, false},
		{math.MaxInt64 / 90, 90000, math.MaxInt64 / 90 * 90, true},
		{math.MaxInt64 / 90 / 1000, 90000, math.MaxInt64 / 90 / 1000 * 90, true},
		{math.MinInt64, math.MaxUint32, 0, false},
	}
	for _, tt := range tests {
		got, ok := toTimescale(tt.ms, tt.ts)
		if ok != tt.valid || (ok && got != tt.want) {
			t.Errorf("toTimescale(%d, %d) = %d, %v; want %d, %v", tt.ms, tt.ts, got, ok, tt.want, tt.valid)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		ms := int64(rng.Uint64()) >> rng.IntN(64)
		ts := rng.Uint32() >> rng.IntN(32)
		want, wok := refTicks(big.NewInt(ms), ts)
		got, ok := toTimescale(ms, ts)
		if ok != wok || got != want {
			t.Fatalf("toTimescale(%d, %d) = %d, %v; reference %d, %v", ms, ts, got, ok, want, wok)
		}
	}
}

// TestDurationsSumAcrossFragments feeds 10 minutes of 44.1 kHz AAC with
// millisecond timestamps through fragments of varying length and checks that
// no tick is lost or gained: each fragment starts where the previous ended and
// the total equals the converted end.
func TestDurationsSumAcrossFragments(t *testing.T) {
	for _, ts := range []uint32{44100, 48000, 22050, 90000, 11025} {
		tr := &remux.Track{ID: 2, Codec: remux.CodecAAC, Timescale: ts, Config: []byte{0x12, 0x10}, SampleRate: int(ts), Channels: 2}
		f, err := NewFragmenter(tr)
		if err != nil {
			t.Fatal(err)
		}
		const frames = 10 * 60 * 44100 / 1024
		frameMs := func(i int) int64 { return 1000 + (int64(i)*1024*1000+int64(ts)/2)/int64(ts) }
		var out []byte
		var total, expectBase uint64
		expectBase = uint64(frameMs(0) * int64(ts) / 1000)
		for i := 0; i < frames; i++ {
			if err := f.Add(&remux.Frame{Track: tr, DTS: frameMs(i), Key: true, Data: []byte{1}}); err != nil {
				t.Fatal(err)
			}
			if i%(37+i%11) != 0 && i != frames-1 {
				continue
			}
			out, err = f.Flush(out[:0], uint32(i), frameMs(i+1))
			if err != nil {
				t.Fatal(err)
			}
			fi, err := parseFragment(out)
			if err != nil {
				t.Fatal(err)
			}
			if fi.base != expectBase+total {
				t.Fatalf("ts %d: fragment %d starts at %d, previous ended at %d", ts, i, fi.base, expectBase+total)
			}
			for _, s := range fi.samples {
				total += uint64(s.duration)
			}
		}
		end, _ := refTicks(big.NewInt(frameMs(frames)), ts)
		start, _ := refTicks(big.NewInt(frameMs(0)), ts)
		if total != uint64(end-start) {
			t.Errorf("ts %d: durations add up to %d, want %d", ts, total, end-start)
		}
	}
}

func FuzzFragment(f *testing.F) {
	f.Add([]byte{}, uint32(90000), true, int64(0), uint16(33))
	// I P B B at 30 fps, then a flush before the next I.
	f.Add([]byte{
		0, 100, 0, 0, 0, 67, 1,
		0, 20, 0, 33, 0, 100, 0,
		0, 5, 0, 33, 0, 0, 0,
		0, 5, 0, 34, 0, 0, 0,
		0, 100, 0, 33, 0, 67, 0x81,
	}, uint32(90000), true, int64(1000), uint16(33))
	f.Add([]byte{0, 200, 0, 23, 0, 0, 1, 0, 200, 0, 24, 0, 0, 1, 0, 200, 0, 23, 0, 0, 0x81}, uint32(44100), false, int64(5), uint16(23))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x80, 0, 0x40}, uint32(math.MaxUint32), true, int64(math.MaxInt64-100), uint16(0xffff))
	f.Fuzz(checkFrameSequence)
}

// checkFrameSequence decodes recs as 7-byte frame records (size, DTS increment,
// CTS, key/flush flags), feeds them to a Fragmenter and checks every fragment
// against an independent reference: which frames Add must accept, durations,
// sizes, composition offsets, flags, payload bytes, data_offset and box sizes.
func checkFrameSequence(t *testing.T, recs []byte, timescale uint32, video bool, start int64, tail uint16) {
	if timescale == 0 {
		timescale = 90000
	}
	// Two hundred frames reach every path; longer inputs only slow the fuzzer
	// (minimizing a long interesting input stalls it for seconds).
	if len(recs) > 7*200 {
		recs = recs[:7*200]
	}
	tr := &remux.Track{ID: 2, Codec: remux.CodecAAC, Timescale: timescale, Config: []byte{0x12, 0x10}}
	if video {
		tr = &remux.Track{ID: 1, Codec: remux.CodecH264, Timescale: timescale, Config: []byte{1}, Width: 16, Height: 16}
	}
	fr, err := NewFragmenter(tr)
	if err != nil {
		t.Fatal(err)
	}
	fr.MaxSamples, fr.MaxBytes = 64, 1<<16
	if start < 0 {
		start = -start / 2 // keep most inputs valid; negative DTS is tested elsewhere
	}

	var pending []remux.Frame // accepted frames of the open fragment, data copied
	var pendingBytes int
	var prevEnd *int64
	seq := uint32(0)
	data := make([]byte, 0, 4096)
	dts := start
	prefix := []byte("pre")

	flush := func(end int64, chunk bool) {
		seq++
		wantLen := fr.FragmentSize()
		flushFn, parse := fr.Flush, parseFragment
		if chunk {
			flushFn, parse, wantLen = fr.FlushChunk, parseChunk, wantLen-StypSize
		}
		out, err := flushFn(append([]byte(nil), prefix...), seq, end)
		last := pending[len(pending)-1]
		endT, endOK := refTicks(big.NewInt(end), timescale)
		lastT, _ := refTicks(big.NewInt(last.DTS), timescale)
		wantOK := end >= last.DTS && endOK && endT-lastT <= math.MaxUint32
		if (err == nil) != wantOK {
			t.Fatalf("Flush(end %d) after DTS %d: err %v, want ok %v", end, last.DTS, err, wantOK)
		}
		if err != nil {
			if fr.Len() != len(pending) || !bytes.Equal(out, prefix) {
				t.Fatalf("failed Flush changed state: %d samples, out %q", fr.Len(), out)
			}
			fr.Reset()
			pending, pendingBytes = pending[:0], 0
			return
		}
		if !bytes.Equal(out[:len(prefix)], prefix) || len(out)-len(prefix) != wantLen {
			t.Fatalf("Flush appended %d bytes after %q, FragmentSize said %d", len(out)-len(prefix), out[:len(prefix)], wantLen)
		}
		b := out[len(prefix):]
		fi, err := parse(b)
		if err != nil {
			t.Fatalf("%v\n%s", err, mp4dump.Dump(b))
		}
		if seq == 1 { // Dump is slow; once per input is enough
			if d := mp4dump.Dump(b); strings.Contains(d, "error") {
				t.Fatalf("dump reports an error:\n%s", d)
			}
		}
		if fi.seq != seq || fi.trackID != uint32(tr.ID) || len(fi.samples) != len(pending) {
			t.Fatalf("seq %d track %d samples %d; want %d %d %d", fi.seq, fi.trackID, len(fi.samples), seq, tr.ID, len(pending))
		}
		firstT, _ := refTicks(big.NewInt(pending[0].DTS), timescale)
		if fi.base != uint64(firstT) {
			t.Fatalf("baseMediaDecodeTime %d, want %d", fi.base, firstT)
		}
		if prevEnd != nil && *prevEnd == pending[0].DTS {
			// The previous fragment ended where this one starts.
			if pt, _ := refTicks(big.NewInt(*prevEnd), timescale); uint64(pt) != fi.base {
				t.Fatalf("gap: previous end %d ticks, base %d", pt, fi.base)
			}
		}
		var sum uint64
		var payload []byte
		for i, s := range fi.samples {
			p := pending[i]
			dT, _ := refTicks(big.NewInt(p.DTS), timescale)
			nextT := endT
			if i+1 < len(pending) {
				nextT, _ = refTicks(big.NewInt(pending[i+1].DTS), timescale)
			}
			pT, _ := refTicks(new(big.Int).Add(big.NewInt(p.DTS), big.NewInt(int64(p.CTS))), timescale)
			if !video {
				pT = dT // composition offsets are written for H.264 and HEVC only
			}
			wantFlags := uint32(0x02000000)
			if video && !p.Key {
				wantFlags = 0x01010000
			}
			if int64(s.duration) != nextT-dT || int(s.size) != len(p.Data) || int64(s.cto) != pT-dT || s.flags != wantFlags {
				t.Fatalf("sample %d: %+v; want duration %d size %d cto %d flags 0x%08x", i, s, nextT-dT, len(p.Data), pT-dT, wantFlags)
			}
			sum += uint64(s.duration)
			payload = append(payload, p.Data...)
		}
		if sum != uint64(endT-firstT) {
			t.Fatalf("durations add up to %d, want %d", sum, endT-firstT)
		}
		if !bytes.Equal(fi.payload, payload) {
			t.Fatal("mdat payload differs from the frames' data")
		}
		if fr.Len() != 0 || fr.Size() != 0 {
			t.Fatalf("after Flush: %d samples, %d bytes buffered", fr.Len(), fr.Size())
		}
		prevEnd = &end
		pending, pendingBytes = pending[:0], 0
	}

	for len(recs) >= 7 {
		r := recs[:7]
		recs = recs[7:]
		size := 1 + int(binary.BigEndian.Uint16(r[0:]))%4096
		inc := int64(binary.BigEndian.Uint16(r[2:]))
		if r[6]&0x40 != 0 {
			inc <<= 20
		}
		if dts > math.MaxInt64-inc {
			break
		}
		if len(pending) > 0 {
			dts += inc
		}
		if r[6]&0x80 != 0 && len(pending) > 0 {
			flush(dts, r[6]&0x20 != 0)
		}
		frame := remux.Frame{Track: tr, DTS: dts, CTS: int32(int16(binary.BigEndian.Uint16(r[4:]))), Key: r[6]&1 != 0}
		data = data[:size]
		for i := range data {
			data[i] = byte(i) ^ r[1]
		}
		frame.Data = data

		dT, dOK := refTicks(big.NewInt(dts), timescale)
		pT, pOK := refTicks(new(big.Int).Add(big.NewInt(dts), big.NewInt(int64(frame.CTS))), timescale)
		wantOK := len(pending) < fr.MaxSamples && pendingBytes+size <= fr.MaxBytes && dOK && pOK &&
			pT-dT >= math.MinInt32 && pT-dT <= math.MaxInt32
		if len(pending) > 0 {
			prevT, _ := refTicks(big.NewInt(pending[len(pending)-1].DTS), timescale)
			wantOK = wantOK && dT-prevT <= math.MaxUint32
		}
		err := fr.Add(&frame)
		if (err == nil) != wantOK {
			t.Fatalf("Add(DTS %d CTS %d size %d) with %d samples: err %v, want ok %v", dts, frame.CTS, size, len(pending), err, wantOK)
		}
		if err != nil {
			if fr.Len() != len(pending) || fr.Size() != pendingBytes {
				t.Fatalf("refused Add changed state: %d samples %d bytes, want %d %d", fr.Len(), fr.Size(), len(pending), pendingBytes)
			}
			continue
		}
		kept := frame
		kept.Data = append([]byte(nil), data...)
		pending = append(pending, kept)
		pendingBytes += size
		for i := range data {
			data[i] = 0xee // the Fragmenter must have copied the bytes
		}
	}
	if len(pending) > 0 {
		last := pending[len(pending)-1].DTS
		if last <= math.MaxInt64-int64(tail) {
			flush(last+int64(tail), tail&1 != 0)
		}
	}
	if _, err := fr.Flush(nil, 0, 0); fr.Len() == 0 && err == nil {
		t.Fatal("Flush with no samples succeeded")
	}
}

func FuzzDump(f *testing.F) {
	tr := &remux.Track{ID: 1, Codec: remux.CodecH264, Timescale: 90000, Config: []byte{1, 2, 3}, Width: 2, Height: 2}
	init, _ := AppendInit(nil, tr)
	f.Add(init)
	fr, _ := NewFragmenter(tr)
	_ = fr.Add(&remux.Frame{DTS: 0, CTS: 40, Data: []byte{1, 2}})
	_ = fr.Add(&remux.Frame{DTS: 40, Key: true, Data: []byte{3}})
	frag, _ := fr.Flush(nil, 1, 80)
	f.Add(frag)
	_ = fr.Add(&remux.Frame{DTS: 80, Key: true, Data: []byte{4}})
	fr.SetProducerTime(time.Unix(1767323045, 0))
	chunk, _ := fr.FlushChunk(nil, 2, 120) // with a prft box
	f.Add(chunk)
	f.Add([]byte{0, 0, 0, 1, 'm', 'o', 'o', 'v', 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	// The sample entries and colour boxes of the other codecs.
	for _, tr := range []*remux.Track{
		{ID: 1, Codec: remux.CodecHEVC, Timescale: 90000, Config: []byte{1, 2}, Width: 2, Height: 2,
			Color: &remux.Color{Primaries: 9, Transfer: 16, Matrix: 9, FullRange: true, MaxCLL: 1000, MaxFALL: 400}},
		{ID: 1, Codec: remux.CodecAV1, Timescale: 90000, Config: []byte{0x81, 0, 0, 0}, Width: 2, Height: 2},
		{ID: 1, Codec: remux.CodecVP9, Timescale: 90000, Config: []byte{1, 0, 0, 0, 0, 10, 0x82, 1, 1, 1, 0, 0}, Width: 2, Height: 2},
		{ID: 2, Codec: remux.CodecOpus, Timescale: 48000, Config: []byte("OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00")},
		{ID: 2, Codec: remux.CodecFLAC, Timescale: 48000, Config: []byte{0x80, 0, 0, 2, 0, 0}},
		{ID: 2, Codec: remux.CodecEAC3, Timescale: 48000, Config: []byte{1, 2, 3}},
	} {
		b, err := AppendInit(nil, tr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		d := mp4dump.Dump(b)
		if len(b) > 0 && d == "" {
			t.Fatal("empty dump of non-empty input")
		}
	})
}

func TestFrameSequenceTime(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	recs := make([]byte, 1<<16)
	for i := range recs {
		recs[i] = byte(rng.Uint32())
	}
	checkFrameSequence(t, recs, 90000, true, 0, 33)
}

// FuzzAV1Sample feeds arbitrary bytes to an AV1 track's Fragmenter as one
// temporal unit: dropTemporalDelimiters may only cut whole temporal delimiter
// OBUs off the front, and the sample the fragment carries is exactly what is
// left, or Add refuses an empty one.
func FuzzAV1Sample(f *testing.F) {
	f.Add([]byte{0x12, 0x00, 0x32, 0x03, 1, 2, 3})    // TD, then a frame OBU
	f.Add([]byte{0x12, 0x00, 0x12, 0x00})             // only TDs
	f.Add([]byte{0x10})                               // a TD without size field: the rest
	f.Add([]byte{0x12, 0xff, 0xff, 0xff, 0xff, 0xff}) // TD with a truncated leb128
	f.Add([]byte{0x16, 0x08, 0x00, 0x0a, 0x01, 0x00}) // TD with an extension header
	f.Add([]byte{0x0a, 0x0b, 0x00, 0x00, 0x00, 0x0c}) // a sequence header, no TD
	f.Fuzz(func(t *testing.T, tu []byte) {
		out := dropTemporalDelimiters(tu)
		if !bytes.HasSuffix(tu, out) {
			t.Fatalf("%x: result %x is not a suffix", tu, out)
		}
		for rest := tu[:len(tu)-len(out)]; len(rest) > 0; {
			o, r, err := av1.ReadOBU(rest)
			if err != nil || o.Type != av1.OBUTemporalDelimiter {
				t.Fatalf("%x: dropped %x, which is not whole TD OBUs (%v)", tu, tu[:len(tu)-len(out)], err)
			}
			rest = r
		}
		tr := &remux.Track{ID: 1, Codec: remux.CodecAV1, Timescale: 90000, Config: []byte{0x81, 0, 0, 0}, Width: 16, Height: 16}
		fr, err := NewFragmenter(tr)
		if err != nil {
			t.Fatal(err)
		}
		err = fr.Add(&remux.Frame{Track: tr, Key: true, CTS: 40, Data: tu})
		if len(out) == 0 {
			if err == nil {
				t.Fatal("empty sample accepted")
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		frag, err := fr.Flush(nil, 1, 40)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasSuffix(frag, out) || binary.BigEndian.Uint32(frag[len(frag)-len(out)-8:]) != uint32(8+len(out)) {
			t.Fatalf("%x: mdat does not hold exactly %x", tu, out)
		}
		if bytes.Contains(frag, []byte("trun")) && frag[bytes.Index(frag, []byte("trun"))+6]&0x08 != 0 {
			t.Fatal("AV1 fragment has composition offsets")
		}
	})
}
