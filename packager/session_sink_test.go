package packager

import (
	"bytes"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/rtmpgate/rtmpgate/remux"
)

// fakeSink records what a session hands its stream, in order.
type fakeSink struct {
	owner    *session
	calls    []string // "tracks", "open", "segment", "end": the order of the calls
	tracks   []*remux.Track
	inits    [2]*initSeg
	opens    []*openSeg
	segments []*segment
	parts    int // partDone calls
	frames   int
	bytes    int
	target   int64
}

func (f *fakeSink) setTracks(owner *session, tracks []*remux.Track, inits [2]*initSeg) {
	f.calls = append(f.calls, "tracks")
	f.owner, f.tracks, f.inits = owner, tracks, inits
}

func (f *fakeSink) setOpen(owner *session, o *openSeg) {
	f.calls = append(f.calls, "open")
	f.opens = append(f.opens, o)
}

func (f *fakeSink) partDone(int64) { f.parts++ }

func (f *fakeSink) publishSegment(owner *session, seg *segment) (int64, bool) {
	f.calls = append(f.calls, "segment")
	f.segments = append(f.segments, seg)
	return f.target, true
}

func (f *fakeSink) endPublish(owner *session) bool {
	f.calls = append(f.calls, "end")
	return true
}

func (f *fakeSink) received(n int) { f.frames, f.bytes = f.frames+1, f.bytes+n }
func (f *fakeSink) key() string    { return "live/fake" }

// TestSessionIntoSink drives a session without a hub: 7 s of AAC frames into a
// fake sink, then Close. The sink must see the track set announced once with
// its CMAF init segment, every frame counted, segments that tile the media
// time with TS bytes and a CMAF fragment whose bytes are the styp and the
// parts it was announced with, parts listed as they were cut (each open
// segment extending the last), and the end last.
func TestSessionIntoSink(t *testing.T) {
	start := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cfg := Config{Now: func() time.Time { return start }}.withDefaults()
	out := &fakeSink{target: 2}
	s := newSession(&cfg, out, zerolog.Nop(), newTSMuxer, 0, "192.0.2.1:50000", nil, start)
	aac := &remux.Track{
		ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 48000,
		Config: []byte{0x11, 0x90}, CodecString: "mp4a.40.2", AudioObjectType: 2, SampleRate: 48000, Channels: 2,
	}
	if err := s.WriteMetadata(&remux.Metadata{HasAudio: true}); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteTrack(aac); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 64)
	var n, end int64
	for ; n*1024*1000/48000 < 7000; n++ {
		if err := s.WriteFrame(&remux.Frame{Track: aac, DTS: n * 1024 * 1000 / 48000, Key: true, Data: payload}); err != nil {
			t.Fatal(err)
		}
	}
	end = n * 1024 * 1000 / 48000 // where the last frame ends, within a ms
	if err := s.Close(nil); err != nil {
		t.Fatal(err)
	}

	if out.frames != int(n) || out.bytes != int(n)*len(payload) {
		t.Errorf("received %d frames, %d bytes; sent %d, %d", out.frames, out.bytes, n, n*int64(len(payload)))
	}
	if out.owner != s {
		t.Fatalf("tracks announced by %p, not the session", out.owner)
	}
	if len(out.tracks) != 1 || out.tracks[0] != aac || out.inits[vIdx] != nil || out.inits[aIdx] == nil ||
		!bytes.Equal(out.inits[aIdx].data[4:8], []byte("ftyp")) || out.inits[aIdx].track != aac {
		t.Fatalf("tracks %v, inits %v: want the AAC track alone with its ftyp+moov", out.tracks, out.inits)
	}
	// Calls: tracks first, end last, nothing after the end.
	if out.calls[0] != "tracks" || out.calls[len(out.calls)-1] != "end" {
		t.Fatalf("calls %v: want tracks first and end last", out.calls)
	}
	for i, c := range out.calls {
		if c == "tracks" && i > 0 || c == "end" && i != len(out.calls)-1 {
			t.Fatalf("calls %v: one tracks first, one end last", out.calls)
		}
	}
	if len(out.segments) != 4 {
		t.Fatalf("%d segments of 7 s at 2 s, want 4", len(out.segments))
	}
	var next int64
	for k, seg := range out.segments {
		if seg.dts != next || seg.dur <= 0 {
			t.Errorf("segment %d: DTS %d, duration %d; want it to start at %d", k, seg.dts, seg.dur, next)
		}
		next = seg.dts + seg.dur
		if len(seg.data) == 0 || seg.data[0] != 0x47 || len(seg.data)%188 != 0 {
			t.Errorf("segment %d: %d bytes that are not TS packets", k, len(seg.data))
		}
		f := seg.frag[aIdx]
		if f == nil || seg.frag[vIdx] != nil || seg.init[aIdx] != out.inits[aIdx] {
			t.Fatalf("segment %d: fragments %v, init %p; want the audio fragment of the announced set", k, seg.frag, seg.init[aIdx])
		}
		if !f.key || f.start != seg.dts || len(seg.parts[aIdx]) == 0 {
			t.Errorf("segment %d: fragment key %v start %d, %d parts", k, f.key, f.start, len(seg.parts[aIdx]))
		}
		body := f.data[StypSize:]
		var parts []byte
		var partDur int64
		for _, p := range seg.parts[aIdx] {
			parts = append(parts, p.Data...)
			partDur += p.Dur
		}
		if !bytes.Equal(body, parts) {
			t.Errorf("segment %d: fragment bytes after styp (%d) are not its parts (%d)", k, len(body), len(parts))
		}
		if d := partDur - f.dur; d < -1 || d > 1 {
			t.Errorf("segment %d: parts last %d ms, the fragment %d", k, partDur, f.dur)
		}
	}
	if d := next - end; d < -1 || d > 1 {
		t.Errorf("segments end at %d ms, the media at %d", next, end)
	}
	if !out.segments[len(out.segments)-1].ends {
		t.Error("the last segment does not end its Period")
	}
	// Each open segment lists what the previous one did and more, until a
	// segment is published.
	if len(out.opens) == 0 || out.parts == 0 {
		t.Fatalf("%d open segments, %d parts: low latency is on", len(out.opens), out.parts)
	}
	var last []*part
	for _, o := range out.opens {
		if o.init[aIdx] != out.inits[aIdx] {
			t.Fatalf("open segment with init %p, not the announced one", o.init[aIdx])
		}
		ps := o.parts[aIdx]
		if len(last) > 0 && len(ps) > 0 && ps[0] == last[0] { // the same segment, grown
			if len(ps) < len(last) {
				t.Fatalf("the open segment lost parts: %d after %d", len(ps), len(last))
			}
			for i, p := range last {
				if ps[i] != p {
					t.Fatalf("part %d of the open segment changed", i)
				}
			}
		}
		last = ps
	}
}
