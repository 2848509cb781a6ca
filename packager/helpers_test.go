package packager_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"

	"github.com/rtmpgate/rtmpgate/packager"
	"github.com/rtmpgate/rtmpgate/remux"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// clock is a fake Config.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeMuxer writes one record per frame, which decodeSegment reads back:
// "SEG" at every segment start, then kind, key, DTS and payload length.
type fakeMuxer struct{ video, audio *remux.Track }

func newFakeMuxer(video, audio *remux.Track) packager.Muxer { return &fakeMuxer{video, audio} }

func (m *fakeMuxer) AppendSegmentStart(dst []byte) []byte { return append(dst, "SEG"...) }

func (m *fakeMuxer) AppendFrame(dst []byte, f *remux.Frame) ([]byte, error) {
	k := f.Track.Kind()
	if (k == remux.KindVideo && m.video == nil) || (k == remux.KindAudio && m.audio == nil) {
		return dst, fmt.Errorf("fake: no %v track", k)
	}
	key := byte(0)
	if f.Key {
		key = 1
	}
	dst = append(dst, byte(k), key)
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.DTS))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(f.Data)))
	return append(dst, f.Data...), nil
}

type rec struct {
	kind remux.Kind
	key  bool
	dts  int64
	size int
}

func decodeSegment(t *testing.T, b []byte) []rec {
	t.Helper()
	if !strings.HasPrefix(string(b), "SEG") {
		t.Fatalf("segment does not start with the segment start marker")
	}
	b = b[3:]
	var out []rec
	for len(b) > 0 {
		if len(b) < 14 {
			t.Fatalf("truncated record")
		}
		r := rec{kind: remux.Kind(b[0]), key: b[1] == 1, dts: int64(binary.BigEndian.Uint64(b[2:])), size: int(binary.BigEndian.Uint32(b[10:]))}
		b = b[14:]
		if r.size > len(b) {
			t.Fatalf("truncated payload")
		}
		b = b[r.size:]
		out = append(out, r)
	}
	return out
}

func newHub(t *testing.T, cfg packager.Config) (*packager.Hub, *clock) {
	t.Helper()
	c := newClock()
	if cfg.Now == nil {
		cfg.Now = c.Now
	}
	if cfg.SweepInterval == 0 {
		// Tests sweep by hand at chosen fake times; a janitor pass in between
		// would make byte counts read at two instants disagree.
		cfg.SweepInterval = time.Hour
	}
	h := packager.NewHub(cfg, zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel))
	packager.SetMuxer(h, newFakeMuxer)
	t.Cleanup(h.Close)
	return h, c
}

var (
	videoA = &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000, Config: []byte{1, 0x64, 0, 0x1f}, CodecString: "avc1.64001f", Width: 640, Height: 360, NALULengthSize: 4}
	videoB = &remux.Track{ID: remux.TrackVideo, Codec: remux.CodecH264, Timescale: 90000, Config: []byte{1, 0x64, 0, 0x28}, CodecString: "avc1.640028", Width: 1280, Height: 720, NALULengthSize: 4}
	audioA = &remux.Track{ID: remux.TrackAudio, Codec: remux.CodecAAC, Timescale: 48000, Config: []byte{0x11, 0x90}, CodecString: "mp4a.40.2", AudioObjectType: 2, SampleRate: 48000, Channels: 2}
)

// media describes synthetic frames: video at a fixed interval with keyframes at
// the listed GOP lengths (repeating the last), AAC at 48 kHz, both from start.
type media struct {
	video, audio *remux.Track
	vStep        int64   // ms
	gops         []int64 // frames per GOP, cycled; one GOP of everything if empty
	start, until int64   // DTS range, ms
}

func (m media) frames() []remux.Frame {
	var out []remux.Frame
	vt, gi, inGOP := m.start, 0, int64(0)
	an := int64(0)
	at := func() int64 { return m.start + an*1024*1000/48000 }
	for {
		vOK := m.video != nil && vt < m.until
		aOK := m.audio != nil && at() < m.until
		if !vOK && !aOK {
			return out
		}
		if vOK && (!aOK || vt <= at()) {
			key := inGOP == 0
			out = append(out, remux.Frame{Track: m.video, DTS: vt, CTS: 80, Key: key, Data: []byte{0, 0, 0, 1, 0x65}})
			inGOP++
			if len(m.gops) > 0 && inGOP >= m.gops[gi%len(m.gops)] {
				inGOP = 0
				gi++
			}
			vt += m.vStep
			continue
		}
		out = append(out, remux.Frame{Track: m.audio, DTS: at(), Key: true, Data: []byte{0x21, 0x10}})
		an++
	}
}

// publish feeds the tracks and frames of m to w.
func publish(t *testing.T, w remux.Writer, m media) {
	t.Helper()
	md := &remux.Metadata{HasVideo: m.video != nil, HasAudio: m.audio != nil}
	if err := w.WriteMetadata(md); err != nil {
		t.Fatal(err)
	}
	for _, tr := range []*remux.Track{m.video, m.audio} {
		if tr != nil {
			if err := w.WriteTrack(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	writeFrames(t, w, m.frames())
}

func writeFrames(t *testing.T, w remux.Writer, frames []remux.Frame) {
	t.Helper()
	for i := range frames {
		if err := w.WriteFrame(&frames[i]); err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
	}
}

// playlist is a parsed media playlist.
type playlist struct {
	target, msn, discSeq int64
	segs                 []plSeg
	ended                bool
}

type plSeg struct {
	dur  int64 // ms
	name string
	disc bool
	pdt  time.Time
}

func parsePlaylist(t *testing.T, b []byte) playlist {
	t.Helper()
	var (
		p    playlist
		cur  plSeg
		seen = map[string]bool{}
	)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) < 3 || lines[0] != "#EXTM3U" || lines[1] != "#EXT-X-VERSION:3" {
		t.Fatalf("bad playlist header:\n%s", b)
	}
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("playlist: %v\n%s", err, b)
		}
		return n
	}
	for _, l := range lines[2:] {
		tag, val, _ := strings.Cut(l, ":")
		switch {
		case p.ended:
			t.Fatalf("line after ENDLIST: %q", l)
		case tag == "#EXT-X-TARGETDURATION":
			p.target = num(val)
		case tag == "#EXT-X-MEDIA-SEQUENCE":
			p.msn = num(val)
		case tag == "#EXT-X-DISCONTINUITY-SEQUENCE":
			p.discSeq = num(val)
		case tag == "#EXT-X-DISCONTINUITY":
			cur.disc = true
		case tag == "#EXT-X-PROGRAM-DATE-TIME":
			pdt, err := time.Parse(time.RFC3339Nano, val)
			if err != nil {
				t.Fatal(err)
			}
			cur.pdt = pdt
		case tag == "#EXTINF":
			sec, frac, ok := strings.Cut(strings.TrimSuffix(val, ","), ".")
			if !ok || len(frac) != 3 {
				t.Fatalf("EXTINF %q: want 3 decimals", val)
			}
			cur.dur = num(sec)*1000 + num(frac)
		case tag == "#EXT-X-ENDLIST":
			p.ended = true
		case !strings.HasPrefix(l, "#") && l != "":
			if cur.dur == 0 || cur.pdt.IsZero() {
				t.Fatalf("segment %q without EXTINF or PROGRAM-DATE-TIME", l)
			}
			if seen[l] {
				t.Fatalf("segment %q listed twice", l)
			}
			seen[l] = true
			cur.name = l
			p.segs = append(p.segs, cur)
			cur = plSeg{}
		default:
			t.Fatalf("unexpected line %q", l)
		}
	}
	for _, s := range p.segs {
		if r := (s.dur + 500) / 1000; r > p.target {
			t.Fatalf("EXTINF %d ms rounds to %d > target %d\n%s", s.dur, r, p.target, b)
		}
	}
	return p
}

func snapshotPlaylist(t *testing.T, st *packager.Stream) playlist {
	t.Helper()
	b := st.Snapshot().TSPlaylist
	if b == nil {
		t.Fatal("no playlist")
	}
	return parsePlaylist(t, b)
}

// segmentRecords decodes every segment listed in the playlist.
func segmentRecords(t *testing.T, st *packager.Stream, p playlist) [][]rec {
	t.Helper()
	var out [][]rec
	for _, s := range p.segs {
		obj, ok := st.Object("ts/" + s.name)
		if !ok {
			t.Fatalf("segment %s not served", s.name)
		}
		if obj.ContentType != packager.ContentTypeTS {
			t.Fatalf("content type %q", obj.ContentType)
		}
		out = append(out, decodeSegment(t, obj.Data))
	}
	return out
}

func mustStream(t *testing.T, h *packager.Hub, app, name string) *packager.Stream {
	t.Helper()
	st, err := h.Stream(app, name)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustPublish(t *testing.T, h *packager.Hub, app, name string) remux.Writer {
	t.Helper()
	w, err := h.Publish(app, name, "127.0.0.1:5000", nil)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func closeWriter(t *testing.T, w remux.Writer) {
	t.Helper()
	if err := w.Close(nil); err != nil {
		t.Fatal(err)
	}
}
