package flv

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/fixture"
	"github.com/rtmpgate/rtmpgate/remux"
)

// The fuzz targets check invariants beyond "no panic": an error wraps exactly one
// sentinel and comes with a zero Packet; a frame's Data aliases the end of the
// body; a track is internally consistent and owns its bytes.

func fixtureBodies(tb testing.TB, ext string) map[string][]byte {
	tb.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*"+ext))
	if err != nil {
		tb.Fatal(err)
	}
	m := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		m[strings.TrimSuffix(filepath.Base(f), ext)] = b
	}
	return m
}

func videoSeeds(tb testing.TB) map[string][]byte {
	m := map[string][]byte{
		"nalu":          {0x27, 1, 0xff, 0xff, 0xdf, 0, 0, 0, 2, 0x41, 0x9a},
		"eos":           {0x17, 2, 0, 0, 0},
		"command":       {0x57, 0},
		"hevc-id":       {0x1c, 0, 0, 0, 0},
		"ex-hvc1":       []byte("\x90hvc1\x01"),
		"ex-avc1-x":     []byte("\xa3avc1\x00\x00\x00\x01\x41"),
		"ex-modex":      []byte("\xa7\x03\x00\x00\x00\x09\x01avc1\x00\x00\x00\x00\x00\x00\x01\x41"),
		"ex-multitrack": []byte("\x96\x01avc1"),
	}
	for name, b := range fixtureBodies(tb, ".video") {
		m[name] = b
		m[name+"-ex"] = append([]byte("\x90avc1"), b[5:]...)
	}
	for name, b := range fixtureBodies(tb, ".frame") {
		m[name+"-frame"] = b
	}
	return m
}

func audioSeeds(tb testing.TB) map[string][]byte {
	m := map[string][]byte{
		"raw":       {0xaf, 1, 0x21, 0x10},
		"he-aac":    {0xaf, 0, 0x2b, 0x11, 0x88, 0x00},
		"explicit":  {0xaf, 0, 0x17, 0x80, 0x2b, 0x11, 0x10},
		"escape":    {0xaf, 0, 0xf9, 0x46, 0x40},
		"mp3":       {0x2f, 0xff, 0xfb},
		"ex-opus":   []byte("\x90Opus\x01"),
		"ex-mp4a":   []byte("\x90mp4a\x12\x10"),
		"ex-modex":  []byte("\x97\x00\x00\x01mp4a\x21"),
		"multichan": []byte("\x94mp4a\x00\x02"),
	}
	for name, b := range fixtureBodies(tb, ".audio") {
		m[name] = b
	}
	return m
}

func avcConfigSeeds(tb testing.TB) map[string][]byte {
	m := map[string][]byte{}
	for name, b := range fixtureBodies(tb, ".video") {
		m[name] = b[5:]
	}
	scaling := spsFields{profile: 100, chroma: 1, widthMBs: 40, heightMapUnits: 23,
		scaling: [][]int64{flatList(16, 3), nil, {-8}, nil, nil, nil, flatList(64, 1), nil}}.encode()
	poc1 := spsFields{profile: 77, pocType: 1, pocCycle: []int64{1, -1}, widthMBs: 22, heightMapUnits: 18, fieldCoding: true}.encode()
	for name, sps := range map[string][]byte{"scaling": scaling, "poc1": poc1} {
		rec := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1, 0, byte(len(sps))}
		rec = append(rec, sps...)
		m["synthetic-"+name] = append(rec, 1, 0, 2, 0x68, 0xce)
	}
	return m
}

func ascSeeds() map[string][]byte {
	return map[string][]byte{
		"lc-44100-stereo": {0x12, 0x10},
		"lc-48000-mono":   {0x11, 0x88, 0x56, 0xe5, 0x00},
		"he-aac":          {0x2b, 0x11, 0x88, 0x00},
		"he-aac-v2":       {0xeb, 0x09, 0x88, 0x00},
		"explicit":        {0x17, 0x80, 0x2b, 0x11, 0x10},
		"escape":          {0xf9, 0x46, 0x40},
		"pce":             {0x12, 0x00},
	}
}

type nalSeed struct {
	data       []byte
	lengthSize int
}

func naluSeeds(tb testing.TB) map[string]nalSeed {
	m := map[string]nalSeed{
		"two-units": {[]byte{0, 0, 0, 1, 0x09, 0, 0, 0, 2, 0x65, 0x88}, 4},
		"size-2":    {[]byte{0, 1, 0x09, 0, 3, 0x41, 1, 2}, 2},
		"size-1":    {[]byte{1, 0x09, 2, 0x41, 0x9a}, 1},
		"past-end":  {[]byte{0, 0, 0, 9, 0x65}, 4},
		"size-3":    {[]byte{0, 0, 1, 0x65}, 3},
	}
	for name, b := range fixtureBodies(tb, ".frame") {
		m[name] = nalSeed{b[5:], 4}
	}
	return m
}

func FuzzParseVideo(f *testing.F) {
	for _, b := range videoSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		in := bytes.Clone(body)
		pkt, err := ParseVideo(body)
		checkResult(t, body, pkt, err)
		if !bytes.Equal(in, body) {
			t.Fatal("ParseVideo modified its input")
		}
		if pkt.Track != nil {
			checkVideoTrack(t, pkt.Track)
		}
	})
}

func FuzzParseAudio(f *testing.F) {
	for _, b := range audioSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkt, err := ParseAudio(body)
		checkResult(t, body, pkt, err)
		if pkt.Type == PacketFrame && !pkt.Key {
			t.Fatal("audio frame without Key")
		}
		if pkt.Track != nil {
			checkAudioTrack(t, pkt.Track)
		}
	})
}

func FuzzAVCConfig(f *testing.F) {
	for _, b := range avcConfigSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		// The same bytes as an SPS, so that the fuzzer reaches the SPS parser
		// without having to build a valid avcC around it.
		if s, err := parseSPS(rec); err == nil {
			if s.width <= 0 || s.height <= 0 || s.width > maxMBs*16 || s.height > maxMBs*16 {
				t.Fatalf("SPS size %dx%d", s.width, s.height)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("parseSPS: %v does not wrap ErrMalformed", err)
		}
		tr, err := parseAVCConfig(rec)
		if err != nil {
			checkError(t, err)
			return
		}
		if !bytes.Equal(tr.Config, rec) {
			t.Fatal("Config differs from the record")
		}
		checkVideoTrack(t, tr)
	})
}

func FuzzASC(f *testing.F) {
	for _, b := range ascSeeds() {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, asc []byte) {
		tr, err := parseASC(asc)
		if err != nil {
			checkError(t, err)
			return
		}
		if !bytes.Equal(tr.Config, asc) {
			t.Fatal("Config differs from the ASC")
		}
		checkAudioTrack(t, tr)
	})
}

func FuzzCheckNALUs(f *testing.F) {
	for _, s := range naluSeeds(f) {
		f.Add(s.data, s.lengthSize)
	}
	f.Fuzz(func(t *testing.T, data []byte, lengthSize int) {
		err := CheckNALUs(data, lengthSize)
		if want := naluWalk(data, lengthSize); (err == nil) != want {
			t.Fatalf("CheckNALUs = %v, reference walk says valid=%v", err, want)
		}
		if err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("%v does not wrap ErrMalformed", err)
		}
	})
}

// naluWalk is CheckNALUs written the plain way, as the fuzzer's oracle.
func naluWalk(data []byte, lengthSize int) bool {
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 || len(data) == 0 {
		return false
	}
	for len(data) > 0 {
		if len(data) < lengthSize {
			return false
		}
		n := 0
		for _, b := range data[:lengthSize] {
			n = n<<8 | int(b)
		}
		data = data[lengthSize:]
		if n == 0 || n > len(data) {
			return false
		}
		data = data[n:]
	}
	return true
}

func checkError(t *testing.T, err error) {
	t.Helper()
	malformed, unsupported := errors.Is(err, ErrMalformed), errors.Is(err, ErrUnsupportedCodec)
	if malformed == unsupported {
		t.Fatalf("error %q: wraps ErrMalformed %v, ErrUnsupportedCodec %v", err, malformed, unsupported)
	}
	if !strings.HasPrefix(err.Error(), "flv: ") {
		t.Fatalf("error %q lacks the package prefix", err)
	}
}

func checkResult(t *testing.T, body []byte, pkt Packet, err error) {
	t.Helper()
	if err != nil {
		checkError(t, err)
		if pkt.Type != 0 || pkt.Track != nil || pkt.Data != nil {
			t.Fatalf("packet %+v with error %v", pkt, err)
		}
		return
	}
	switch pkt.Type {
	case PacketFrame:
		if pkt.Data == nil || len(pkt.Data) > len(body) {
			t.Fatalf("frame Data of %d bytes from a body of %d", len(pkt.Data), len(body))
		}
		if len(pkt.Data) > 0 && &pkt.Data[len(pkt.Data)-1] != &body[len(body)-1] {
			t.Fatal("frame Data does not alias the end of the body")
		}
	case PacketSequenceHeader:
		if pkt.Track == nil {
			t.Fatal("sequence header without a track")
		}
		if len(pkt.Track.Config) > 0 && len(body) > 0 && &pkt.Track.Config[0] == &body[len(body)-len(pkt.Track.Config)] {
			t.Fatal("Config aliases the body")
		}
	case PacketEndOfSequence, PacketCommand:
	default:
		t.Fatalf("packet type %d", pkt.Type)
	}
	if pkt.Type != PacketSequenceHeader && pkt.Track != nil {
		t.Fatalf("%v with a track", pkt.Type)
	}
}

func checkVideoTrack(t *testing.T, tr *remux.Track) {
	t.Helper()
	if tr.ID != remux.TrackVideo || tr.Codec != remux.CodecH264 || tr.Timescale != 90000 {
		t.Fatalf("video track %+v", tr)
	}
	if tr.Width <= 0 || tr.Height <= 0 || tr.Width > maxMBs*16 || tr.Height > maxMBs*16 {
		t.Fatalf("video size %dx%d", tr.Width, tr.Height)
	}
	if tr.NALULengthSize != 1 && tr.NALULengthSize != 2 && tr.NALULengthSize != 4 {
		t.Fatalf("NAL unit length size %d", tr.NALULengthSize)
	}
	if len(tr.SPS) == 0 || len(tr.PPS) == 0 || len(tr.SPS) > 31 || len(tr.PPS) > 255 {
		t.Fatalf("%d SPS, %d PPS", len(tr.SPS), len(tr.PPS))
	}
	if s, err := parseSPS(tr.SPS[0]); err != nil || s.width != tr.Width || s.height != tr.Height {
		t.Fatalf("SPS reparse: %v", err)
	}
	if want := fmt.Sprintf("avc1.%02x%02x%02x", tr.SPS[0][1], tr.SPS[0][2], tr.SPS[0][3]); tr.CodecString != want && !bytes.Contains(tr.SPS[0][:4], []byte{0, 0}) {
		t.Fatalf("codec string %q, SPS starts % x", tr.CodecString, tr.SPS[0][:4])
	}
}

func checkAudioTrack(t *testing.T, tr *remux.Track) {
	t.Helper()
	if tr.ID != remux.TrackAudio || tr.Codec != remux.CodecAAC {
		t.Fatalf("audio track %+v", tr)
	}
	if tr.SampleRate <= 0 || int(tr.Timescale) != tr.SampleRate || tr.SampleRate >= 1<<24 {
		t.Fatalf("sample rate %d, timescale %d", tr.SampleRate, tr.Timescale)
	}
	if tr.Channels <= 0 || tr.Channels > 24 {
		t.Fatalf("%d channels", tr.Channels)
	}
	if aot := tr.AudioObjectType; !aacCoreObjectType(aot) && aot != 5 && aot != 29 {
		t.Fatalf("audio object type %d", aot)
	}
	if tr.CodecString != "mp4a.40."+strconv.Itoa(tr.AudioObjectType) {
		t.Fatalf("codec string %q", tr.CodecString)
	}
}

// TestFuzzCorpus keeps the committed seed corpus under testdata/fuzz in step
// with the seeds above: with -update it writes them, otherwise it checks that
// each is there.
func TestFuzzCorpus(t *testing.T) {
	write := false
	if f := flag.Lookup("update"); f != nil {
		write = f.Value.String() == "true"
	}
	corpus := map[string]map[string]string{
		"FuzzParseVideo": bytesCorpus(videoSeeds(t)),
		"FuzzParseAudio": bytesCorpus(audioSeeds(t)),
		"FuzzAVCConfig":  bytesCorpus(avcConfigSeeds(t)),
		"FuzzASC":        bytesCorpus(ascSeeds()),
		"FuzzCheckNALUs": {},
		"FuzzSplitVideo": bytesCorpus(splitSeeds(t, 9)),
		"FuzzSplitAudio": bytesCorpus(splitSeeds(t, 8)),
	}
	for name, s := range naluSeeds(t) {
		corpus["FuzzCheckNALUs"][name] = fmt.Sprintf("go test fuzz v1\n[]byte(%s)\nint(%d)\n", strconv.Quote(string(s.data)), s.lengthSize)
	}
	for target, files := range corpus {
		fixture.CorpusFiles(t, write, target, files)
	}
}

func bytesCorpus(seeds map[string][]byte) map[string]string {
	m := map[string]string{}
	for name, b := range seeds {
		m[name] = fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(b)))
	}
	return m
}

// splitSeeds are the first tags of each kind of the Enhanced RTMP fixtures,
// cut to 48 bytes (a sequence header or frame start is enough to reach every
// branch; the fuzzer grows them), and a few crafted multitrack and ModEx
// forms.
func splitSeeds(tb testing.TB, typ byte) map[string][]byte {
	m := map[string][]byte{}
	for _, name := range []string{"hevc-aac", "av1-opus", "vp9-opus", "multitrack-h264", "multitrack-hevc-h264"} {
		seen := map[string]bool{}
		for _, tag := range fixture.Tags(tb, name+".flv") {
			if tag.Type != typ || len(tag.Body) < 2 {
				continue
			}
			kind := fmt.Sprintf("%02x%02x", tag.Body[0]&0x8f, tag.Body[1])
			if seen[kind] {
				continue
			}
			seen[kind] = true
			m[name+"-"+kind] = tag.Body[:min(len(tag.Body), 48)]
		}
	}
	if typ == 9 {
		m["many-tracks-many-codecs"] = []byte("\x96\x21hvc1\x00\x00\x00\x06\x00\x00\x01\x26\x01\xafav01\x01\x00\x00\x02\x12\x00")
		m["modex-nano"] = []byte("\x97\x02\x07\xa1\x20\x03avc1\x00\x00\x00\x02\x26\x01")
		m["command"] = []byte("\xd0\x00")
	} else {
		m["many-tracks-many-codecs"] = []byte("\x95\x21Opus\x00\x00\x00\x01\xf8ac-3\x02\x00\x00\x02\x0b\x77")
		m["modex-nano"] = []byte("\x97\x02\x00\x00\x09\x01fLaC\xff\xf8")
	}
	return m
}

func FuzzSplitVideo(f *testing.F) { fuzzSplit(f, SplitVideo, ParseVideo) }

func FuzzSplitAudio(f *testing.F) { fuzzSplit(f, SplitAudio, ParseAudio) }

// fuzzSplit checks that a split never panics, returns packets only without an
// error, at most MaxTracks of them with distinct track ids, each Data inside
// the body, an offset under a millisecond, and that the single-track parser
// agrees with it on frames.
func fuzzSplit(f *testing.F, split func([]TrackPacket, []byte) (Message, error), parse func([]byte) (Packet, error)) {
	f.Fuzz(func(t *testing.T, body []byte) {
		var buf [MaxTracks]TrackPacket
		m, err := split(buf[:0], body)
		if err != nil {
			checkError(t, err)
			if m.Packets != nil {
				t.Fatal("packets with an error")
			}
			return
		}
		if len(m.Packets) == 0 || len(m.Packets) > MaxTracks || m.TimestampOffsetNano > 999999 {
			t.Fatalf("%d packets, offset %d", len(m.Packets), m.TimestampOffsetNano)
		}
		ids := map[uint8]bool{}
		for _, p := range m.Packets {
			if ids[p.TrackID] {
				t.Fatalf("track %d twice", p.TrackID)
			}
			ids[p.TrackID] = true
			if len(p.Data) > 0 && !within(body, p.Data) {
				t.Fatal("Data outside the body")
			}
			if !m.Multitrack && p.TrackID != 0 {
				t.Fatalf("track %d outside multitrack", p.TrackID)
			}
		}
		pkt, perr := parse(body)
		if perr == nil && pkt.Type == PacketFrame {
			p := m.Packets[0]
			if len(m.Packets) != 1 || p.Type != PacketFrame || !bytes.Equal(p.Data, pkt.Data) || p.CTS != pkt.CTS || p.Key != pkt.Key {
				t.Fatalf("split %+v, parse %+v", m, pkt)
			}
		}
	})
}

// within reports whether b lies inside body's memory.
func within(body, b []byte) bool {
	for i := range body {
		if &body[i] == &b[0] {
			return len(body)-i >= len(b)
		}
	}
	return false
}
