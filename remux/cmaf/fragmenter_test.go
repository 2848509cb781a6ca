package cmaf_test

import (
	"bytes"
	"errors"
	"github.com/rtmpgate/rtmpgate/internal/mp4dump"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/cmaf"
)

func TestAppendInitErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(*remux.Track)
		want   string
	}{
		{"zero ID", func(tr *remux.Track) { tr.ID = 0 }, "track ID 0"},
		{"zero timescale", func(tr *remux.Track) { tr.Timescale = 0 }, "timescale 0"},
		{"no config", func(tr *remux.Track) { tr.Config = nil }, "codec config length 0"},
		{"huge config", func(tr *remux.Track) { tr.Config = make([]byte, cmaf.MaxConfigSize+1) }, "codec config length"},
		{"no size", func(tr *remux.Track) { tr.Width = 0 }, "video size 0x360"},
		{"too wide", func(tr *remux.Track) { tr.Width = 70000 }, "video size 70000x360"},
		{"unknown codec", func(tr *remux.Track) { tr.Codec = remux.CodecUnknown }, "unsupported codec"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := videoTrack()
			tt.modify(tr)
			dst := []byte("keep")
			out, err := cmaf.AppendInit(dst, tr)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
			if string(out) != "keep" {
				t.Fatalf("AppendInit changed dst on error: %q", out)
			}
			if _, err := cmaf.NewFragmenter(tr); err == nil {
				t.Fatal("NewFragmenter accepted the track")
			}
		})
	}
	if _, err := cmaf.AppendInit(nil, nil); err == nil {
		t.Fatal("AppendInit(nil track) succeeded")
	}
}

func TestAppendInitAppends(t *testing.T) {
	for _, tr := range []*remux.Track{videoTrack(), audioTrack()} {
		t.Run(tr.Kind().String(), func(t *testing.T) {
			prefix := []byte("prefix")
			out, err := cmaf.AppendInit(append([]byte(nil), prefix...), tr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(out, prefix) {
				t.Fatal("prefix lost")
			}
			d := mp4dump.Dump(out[len(prefix):])
			if strings.Contains(d, "error") || !strings.Contains(d, "cmfc") || !strings.Contains(d, "trex size=32 track_ID="+string(rune('0'+tr.ID))) {
				t.Fatalf("unexpected init:\n%s", d)
			}
		})
	}
}

func TestAudioSampleEntry(t *testing.T) {
	tests := []struct {
		name       string
		rate, ch   int
		wantFields string
	}{
		{"44100 stereo", 44100, 2, "channels=2 samplesize=16 samplerate=44100"},
		{"48000 mono", 48000, 1, "channels=1 samplesize=16 samplerate=48000"},
		{"96000 does not fit 16.16", 96000, 2, "channels=2 samplesize=16 samplerate=0"},
		{"unknown channels default to stereo", 44100, 0, "channels=2 samplesize=16 samplerate=44100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := audioTrack()
			tr.SampleRate, tr.Channels, tr.Timescale = tt.rate, tt.ch, uint32(tt.rate)
			b, err := cmaf.AppendInit(nil, tr)
			if err != nil {
				t.Fatal(err)
			}
			d := mp4dump.Dump(b)
			if !strings.Contains(d, tt.wantFields) || !strings.Contains(d, "mdhd size=32 v0 timescale="+itoa(tt.rate)) {
				t.Fatalf("want %q and mdhd timescale %d in:\n%s", tt.wantFields, tt.rate, d)
			}
		})
	}
}

// TestLongASCDescriptorSize checks the expandable descriptor sizes past 127 bytes.
func TestLongASCDescriptorSize(t *testing.T) {
	for _, n := range []int{1, 127, 128, 300, 16383, 16384} {
		tr := audioTrack()
		tr.Config = bytes.Repeat([]byte{0x12}, n)
		b, err := cmaf.AppendInit(nil, tr)
		if err != nil {
			t.Fatal(err)
		}
		d := mp4dump.Dump(b)
		if strings.Contains(d, "error") || !strings.Contains(d, "DecoderSpecificInfo("+strings.Repeat("12", n)+") SLConfig(predefined=2)") {
			t.Fatalf("ASC of %d bytes: bad esds:\n%.2000s", n, d)
		}
	}
}

func TestAddErrors(t *testing.T) {
	other := audioTrack()
	tests := []struct {
		name   string
		frames []remux.Frame // all but the last must be accepted
		want   string
	}{
		{"negative DTS", []remux.Frame{{DTS: -1, Data: []byte{1}}}, "DTS -1 is negative"},
		{"DTS backwards", []remux.Frame{{DTS: 100, Key: true, Data: []byte{1}}, {DTS: 99, Data: []byte{1}}}, "DTS 99 before previous DTS 100"},
		{"empty", []remux.Frame{{DTS: 0, Data: nil}}, "empty frame"},
		{"other track", []remux.Frame{{Track: other, DTS: 0, Data: []byte{1}}}, "frame of another track"},
		{"too many samples", []remux.Frame{{DTS: 0, Data: []byte{1}}, {DTS: 1, Data: []byte{1}}, {DTS: 2, Data: []byte{1}}}, "fragment full: 2 samples"},
		{"too many bytes", []remux.Frame{{DTS: 0, Data: make([]byte, 60)}, {DTS: 1, Data: make([]byte, 41)}}, "fragment size 60 + frame 41 > limit 100"},
		{"gap overflows a duration", []remux.Frame{{DTS: 0, Data: []byte{1}}, {DTS: 1 << 40, Data: []byte{1}}}, "too long for a sample duration"},
		{"DTS out of range", []remux.Frame{{DTS: 1 << 62, Data: []byte{1}}}, "out of range"},
		{"CTS too large", []remux.Frame{{DTS: 0, CTS: 1 << 30, Data: []byte{1}}}, "composition offset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := cmaf.NewFragmenter(videoTrack())
			if err != nil {
				t.Fatal(err)
			}
			f.MaxSamples, f.MaxBytes = 2, 100
			n := len(tt.frames)
			for i := range tt.frames[:n-1] {
				if err := f.Add(&tt.frames[i]); err != nil {
					t.Fatalf("frame %d: %v", i, err)
				}
			}
			before, size := f.Len(), f.Size()
			err = f.Add(&tt.frames[n-1])
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err %v, want it to contain %q", err, tt.want)
			}
			if f.Len() != before || f.Size() != size {
				t.Fatalf("refused frame changed the buffer: %d samples %d bytes, had %d %d", f.Len(), f.Size(), before, size)
			}
		})
	}
	f, _ := cmaf.NewFragmenter(videoTrack())
	if err := f.Add(nil); err == nil {
		t.Fatal("Add(nil) succeeded")
	}
}

func TestFlushErrors(t *testing.T) {
	f, err := cmaf.NewFragmenter(videoTrack())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Flush(nil, 1, 100); !errors.Is(err, cmaf.ErrNoSamples) {
		t.Fatalf("empty Flush: %v, want ErrNoSamples", err)
	}
	if err := f.Add(&remux.Frame{DTS: 100, Key: true, Data: []byte{1}}); err != nil {
		t.Fatal(err)
	}
	out, err := f.Flush([]byte("x"), 1, 99)
	if err == nil || string(out) != "x" || f.Len() != 1 {
		t.Fatalf("Flush before the last DTS: err %v, out %q, %d samples left", err, out, f.Len())
	}
	// The samples stay buffered: a retry with a good end succeeds.
	if out, err = f.Flush(nil, 1, 100); err != nil || f.Len() != 0 {
		t.Fatalf("retry: err %v, %d samples left", err, f.Len())
	}
	if d := mp4dump.Dump(out); !strings.Contains(d, "[0] duration=0 size=1") {
		t.Fatalf("zero-length last sample expected:\n%s", d)
	}
}

// TestNoCallerBufferRewrite: Add copies frame bytes (the caller may reuse them at
// once) and neither Add nor Flush writes into frame data or the existing dst.
func TestNoCallerBufferRewrite(t *testing.T) {
	tr := videoTrack()
	f, err := cmaf.NewFragmenter(tr)
	if err != nil {
		t.Fatal(err)
	}
	frames := gopFrames(tr, 0)
	orig := make([][]byte, len(frames))
	var want []byte
	for i := range frames {
		orig[i] = append([]byte(nil), frames[i].Data...)
		want = append(want, frames[i].Data...)
		if err := f.Add(&frames[i]); err != nil {
			t.Fatal(err)
		}
	}
	for i := range frames {
		if !bytes.Equal(frames[i].Data, orig[i]) {
			t.Fatalf("frame %d data changed by Add", i)
		}
		for j := range frames[i].Data {
			frames[i].Data[j] = 0xee // caller reuses its buffer
		}
	}
	dst := make([]byte, 5, 4096)
	copy(dst, "hello")
	size := f.FragmentSize()
	out, err := f.Flush(dst, 1, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if string(out[:5]) != "hello" || len(out)-5 != size {
		t.Fatalf("dst prefix %q, appended %d bytes, FragmentSize %d", out[:5], len(out)-5, size)
	}
	if !bytes.HasSuffix(out, want) {
		t.Fatal("mdat does not hold the bytes as they were at Add")
	}
}

// TestSampleFlagsLayout: shared flags go to tfhd, mixed flags and composition
// offsets to trun.
func TestSampleFlagsLayout(t *testing.T) {
	tests := []struct {
		name   string
		tr     *remux.Track
		frames []remux.Frame
		want   []string
	}{
		{"video GOP", videoTrack(), []remux.Frame{{DTS: 0, CTS: 66, Key: true, Data: []byte{1}}, {DTS: 33, Data: []byte{1}}},
			[]string{"tfhd size=16 flags=0x020000", "trun size=52 v1 flags=0x000f01", "[0] duration=2970 size=1 flags=0x02000000 cto=5940", "[1] duration=3060 size=1 flags=0x01010000 cto=0"}},
		{"video all key no B", videoTrack(), []remux.Frame{{DTS: 0, Key: true, Data: []byte{1}}, {DTS: 33, Key: true, Data: []byte{1}}},
			[]string{"tfhd size=20 flags=0x020020 track_ID=1 default_sample_flags=0x02000000", "trun size=36 v1 flags=0x000301", "[1] duration=3060 size=1"}},
		{"video non-key only", videoTrack(), []remux.Frame{{DTS: 0, Data: []byte{1}}},
			[]string{"default_sample_flags=0x01010000"}},
		{"audio ignores Key", audioTrack(), []remux.Frame{{DTS: 0, Data: []byte{1}}, {DTS: 23, Key: true, Data: []byte{1}}},
			[]string{"tfhd size=20 flags=0x020020 track_ID=2 default_sample_flags=0x02000000", "[0] duration=1014 size=1", "[1] duration=1015 size=1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := int64(67) // two video frames at 30 fps
			if tt.tr.Kind() == remux.KindAudio {
				end = 46 // two AAC frames at 44.1 kHz, ms-rounded
			}
			b := fragment(t, tt.tr, tt.frames, 1, end)
			d := mp4dump.Dump(b)
			for _, w := range tt.want {
				if !strings.Contains(d, w) {
					t.Errorf("missing %q in:\n%s", w, d)
				}
			}
		})
	}
}

// TestZeroAllocs: after the first fragment has sized the buffers, Add and Flush
// allocate nothing.
func TestZeroAllocs(t *testing.T) {
	tr := videoTrack()
	f, err := cmaf.NewFragmenter(tr)
	if err != nil {
		t.Fatal(err)
	}
	frames := gopFrames(tr, 0)
	dst := make([]byte, 0, 1<<16)
	dts := int64(0)
	cycle := func() {
		for i := range frames {
			fr := frames[i]
			fr.DTS += dts
			if err := f.Add(&fr); err != nil {
				t.Fatal(err)
			}
		}
		dts += 7 * 1000 / 30
		var err error
		if dst, err = f.Flush(dst[:0], 1, dts); err != nil {
			t.Fatal(err)
		}
	}
	cycle()
	if a := testing.AllocsPerRun(100, cycle); a != 0 {
		t.Fatalf("%.1f allocations per fragment, want 0", a)
	}
}

func itoa(n int) string {
	var b []byte
	for n >= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(append([]byte{byte('0' + n)}, b...))
}

// TestFlushChunk: a chunk is the fragment without its styp.
func TestFlushChunk(t *testing.T) {
	tr := videoTrack()
	frames := gopFrames(tr, 1000)
	var outs [2][]byte
	for i, chunk := range []bool{false, true} {
		f, err := cmaf.NewFragmenter(tr)
		if err != nil {
			t.Fatal(err)
		}
		for j := range frames {
			if err := f.Add(&frames[j]); err != nil {
				t.Fatal(err)
			}
		}
		size := f.FragmentSize()
		if chunk {
			outs[i], err = f.FlushChunk(nil, 3, 1300)
			size -= cmaf.StypSize
		} else {
			outs[i], err = f.Flush(nil, 3, 1300)
		}
		if err != nil || len(outs[i]) != size {
			t.Fatalf("chunk %v: err %v, %d bytes, FragmentSize says %d", chunk, err, len(outs[i]), size)
		}
	}
	if !bytes.Equal(outs[0][cmaf.StypSize:], outs[1]) || !strings.HasPrefix(mp4dump.Dump(outs[1]), "moof ") {
		t.Fatalf("chunk is not the fragment minus styp:\n%s", mp4dump.Dump(outs[1]))
	}
}

func TestZeroFragmenter(t *testing.T) {
	var f cmaf.Fragmenter
	if err := f.Add(&remux.Frame{Data: []byte{1}}); err == nil {
		t.Fatal("Add on a zero Fragmenter succeeded")
	}
	if _, err := f.Flush(nil, 1, 0); err == nil {
		t.Fatal("Flush on a zero Fragmenter succeeded")
	}
}

// TestProducerTime checks the prft box SetProducerTime adds before the next
// fragment's moof: its NTP time, the presentation time of the first sample in
// the track timescale, its size in FragmentSize, and that it is written once.
func TestProducerTime(t *testing.T) {
	f, err := cmaf.NewFragmenter(videoTrack())
	if err != nil {
		t.Fatal(err)
	}
	wall := time.Date(2026, 1, 2, 3, 4, 5, 250_000_000, time.UTC)
	for _, fr := range []remux.Frame{{DTS: 1000, CTS: 80, Key: true, Data: []byte{0, 0, 0, 1, 0x65}}, {DTS: 1040, CTS: 40, Data: []byte{0, 0, 0, 1, 0x41}}} {
		if err := f.Add(&fr); err != nil {
			t.Fatal(err)
		}
	}
	size := f.FragmentSize()
	f.SetProducerTime(wall)
	if got := f.FragmentSize(); got != size+cmaf.PrftSize {
		t.Fatalf("FragmentSize %d with prft, %d without", got, size)
	}
	out, err := f.Flush(nil, 1, 1080)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != size+cmaf.PrftSize {
		t.Fatalf("wrote %d bytes, FragmentSize said %d", len(out), size+cmaf.PrftSize)
	}
	// 2026-01-02T03:04:05.25Z is 3976311845 s after 1900; a quarter second is 2^30.
	want := "prft size=32 v1 flags=1 reference_track_ID=1 ntp_timestamp=0xed01b42540000000 media_time=97200"
	if d := mp4dump.Dump(out); !strings.Contains(d, want) || strings.Index(d, "prft") > strings.Index(d, "moof") {
		t.Fatalf("want %q before moof in:\n%s", want, d)
	}
	if err := f.Add(&remux.Frame{DTS: 1080, Key: true, Data: []byte{0, 0, 0, 1, 0x65}}); err != nil {
		t.Fatal(err)
	}
	out, err = f.FlushChunk(nil, 2, 1120)
	if err != nil {
		t.Fatal(err)
	}
	if d := mp4dump.Dump(out); strings.Contains(d, "prft") {
		t.Fatalf("prft written again:\n%s", d)
	}
}
