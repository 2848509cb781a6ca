package ingest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
)

// colorInfoBody is the AMF0 body of an Enhanced RTMP v2 colorInfo Metadata
// packet: BT.2020 / PQ / BT.2020 non-constant luminance, 10 bits, with content
// light levels maxCLL and maxFall.
func colorInfoBody(primaries, transfer, matrix float64, maxCLL, maxFall float64) []byte {
	b := rtmp.AppendAMF0(nil, "colorInfo")
	return rtmp.AppendAMF0(b, rtmp.Object{
		{Key: "colorConfig", Value: rtmp.Object{
			{Key: "bitDepth", Value: 10.0}, {Key: "colorPrimaries", Value: primaries},
			{Key: "transferCharacteristics", Value: transfer}, {Key: "matrixCoefficients", Value: matrix},
		}},
		{Key: "hdrCll", Value: rtmp.Object{{Key: "maxFall", Value: maxFall}, {Key: "maxCLL", Value: maxCLL}}},
		{Key: "hdrMdcv", Value: rtmp.Object{{Key: "redX", Value: 0.708}}},
	})
}

// A colorInfo Metadata packet before the sequence start gives the announced
// track its colour; the same colorInfo again changes nothing; a different one
// after the track announces a copy with the new colour, the record unchanged.
func TestColorInfoApplied(t *testing.T) {
	fp := loadParts(t)
	h := newRecHandler()
	addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})
	c := dialClient(t, addr)
	c.publish("live", "hdr")
	w := h.next(t)
	pq := colorInfoBody(9, 16, 9, 1000, 400)
	msgs := []rawMsg{
		video(exVideo(5, 4, "hvc1", pq)),
		video(exVideo(1, 0, "hvc1", fp.hvcC)),
		video(exVideo(1, 1, "hvc1", fp.hevcFrames[0].Data)),
		video(exVideo(5, 4, "hvc1", pq)),
		video(exVideo(2, 1, "hvc1", fp.hevcFrames[1].Data)),
		video(exVideo(5, 4, "hvc1", colorInfoBody(9, 18, 9, 0, 0))), // HLG
		video(exVideo(2, 1, "hvc1", fp.hevcFrames[2].Data)),
		video(exVideo(5, 4, "hvc1", []byte("not AMF"))),
	}
	for i, m := range msgs {
		if err := c.send(m.typ, 1, uint32(i*40), m.payload); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFrames(3)
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.tracks) != 2 {
		t.Fatalf("%d tracks announced, want 2 (the colorInfo change)", len(w.tracks))
	}
	want := remux.Color{Primaries: 9, Transfer: 16, Matrix: 9, MaxCLL: 1000, MaxFALL: 400}
	if c := w.tracks[0].Color; c == nil || *c != want || w.tracks[0].Color.HDR() != "PQ" {
		t.Errorf("first track colour %+v, want %+v", c, want)
	}
	if c := w.tracks[1].Color; c == nil || c.Transfer != 18 || c.MaxCLL != 0 || string(w.tracks[1].Config) != string(w.tracks[0].Config) {
		t.Errorf("second track colour %+v, want HLG and the same record", c)
	}
	if w.cause != nil {
		t.Errorf("closed: %v", w.cause)
	}
}

func TestParseColorInfo(t *testing.T) {
	ci, ok := parseColorInfo(colorInfoBody(9, 16, 9, 1000, 400))
	if !ok || ci.bitDepth != 10 || ci.color != (remux.Color{Primaries: 9, Transfer: 16, Matrix: 9, MaxCLL: 1000, MaxFALL: 400}) {
		t.Fatalf("%+v %v", ci, ok)
	}
	for name, b := range map[string][]byte{
		"empty":        nil,
		"other name":   append(rtmp.AppendAMF0(nil, "hdrInfo"), rtmp.AppendAMF0(nil, rtmp.Object{})...),
		"no object":    rtmp.AppendAMF0(nil, "colorInfo"),
		"out of range": append(rtmp.AppendAMF0(nil, "colorInfo"), rtmp.AppendAMF0(nil, rtmp.Object{{Key: "colorConfig", Value: rtmp.Object{{Key: "colorPrimaries", Value: 300.0}}}})...),
		"truncated":    colorInfoBody(9, 16, 9, 1, 1)[:20],
	} {
		if _, ok := parseColorInfo(b); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseColorInfo(f *testing.F) {
	f.Add(colorInfoBody(9, 16, 9, 1000, 400))
	f.Fuzz(func(t *testing.T, b []byte) {
		ci, ok := parseColorInfo(b)
		if ok && ci.bitDepth > 16 {
			t.Fatalf("%+v", ci)
		}
	})
}

// A VP9 key frame of another size, without a new sequence start, announces
// the track again with that size (a new init segment for the outputs); key
// frames of the same size announce nothing.
func TestVP9SizeChange(t *testing.T) {
	fp := loadParts(t)
	small := testkit.EncodeVideo(t, 40, "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=0.12",
		"-c:v", "libvpx-vp9", "-deadline", "realtime", "-g", "1")
	if small.Entry != "vp09" || len(small.Frames) < 2 {
		t.Fatalf("encoded %q with %d frames, want vp09 and at least 2", small.Entry, len(small.Frames))
	}
	h := newRecHandler()
	addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})
	c := dialClient(t, addr)
	c.publish("live", "vp9size")
	w := h.next(t)
	msgs := [][]byte{
		exVideo(1, 0, "vp09", fp.vpcC),
		exVideo(1, 1, "vp09", fp.vp9Frames[0].Data),
		exVideo(1, 1, "vp09", small.Frames[0]),
		exVideo(1, 1, "vp09", small.Frames[1]),
		exVideo(1, 1, "vp09", fp.vp9Frames[0].Data),
	}
	for i, m := range msgs {
		if err := c.send(rtmp.MsgVideo, 1, uint32(i*40), m); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFrames(len(msgs) - 1)
	w.mu.Lock()
	defer w.mu.Unlock()
	var sizes []string
	for _, tr := range w.tracks {
		sizes = append(sizes, fmt.Sprintf("%dx%d", tr.Width, tr.Height))
	}
	if len(w.frames) != len(msgs)-1 || strings.Join(sizes, " ") != "640x360 160x120 640x360" {
		t.Fatalf("%d frames, tracks announced %v: want 4 frames and 640x360 160x120 640x360", len(w.frames), sizes)
	}
	if w.cause != nil {
		t.Errorf("closed: %v", w.cause)
	}
}
