package testkit_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// flvFile builds an FLV file from tags with correct PreviousTagSize fields.
func flvFile(tags ...testkit.FLVTag) []byte {
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	for _, t := range tags {
		n := len(t.Body)
		b = append(b, t.Type, byte(n>>16), byte(n>>8), byte(n), byte(t.TS>>16), byte(t.TS>>8), byte(t.TS), byte(t.TS>>24), 0, 0, 0)
		b = append(b, t.Body...)
		b = binary.BigEndian.AppendUint32(b, uint32(n+11))
	}
	return b
}

func TestFLVTags(t *testing.T) {
	want := []testkit.FLVTag{
		{Type: 18, TS: 0, Body: []byte("meta")},
		{Type: 9, TS: 0x01020304, Body: []byte{0x17, 0, 0, 0, 0}},
		{Type: 8, TS: 40, Body: nil},
	}
	file := flvFile(want...)
	got, err := testkit.FLVTags(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d tags, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Type != want[i].Type || got[i].TS != want[i].TS || !bytes.Equal(got[i].Body, want[i].Body) {
			t.Errorf("tag %d: %+v, want %+v", i, got[i], want[i])
		}
	}

	badPrev := bytes.Clone(file)
	badPrev[len(badPrev)-1]++
	for name, b := range map[string][]byte{
		"not FLV":          append([]byte("FLX"), file[3:]...),
		"short header":     file[:12],
		"truncated header": file[:13+5],
		"truncated body":   file[:len(file)-5],
		"PreviousTagSize":  badPrev,
	} {
		if _, err := testkit.FLVTags(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestBoxes(t *testing.T) {
	box := func(typ string, body ...byte) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(8+len(body))), append([]byte(typ), body...)...)
	}
	moof := box("moof", box("mfhd", 0, 0, 0, 0, 0, 0, 0, 7)...)
	b := append(box("styp", 'c', 'm', 'f', 'c'), moof...)
	got, err := testkit.Boxes(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Type != "styp" || got[1].Type != "moof" || got[1].Start != 12 || string(got[0].Body) != "cmfc" {
		t.Fatalf("boxes %+v", got)
	}
	inner, err := testkit.Boxes(got[1].Body)
	if err != nil || len(inner) != 1 || inner[0].Type != "mfhd" || len(inner[0].Body) != 8 {
		t.Fatalf("moof children %+v, %v", inner, err)
	}
	for name, bad := range map[string][]byte{
		"stray bytes":    append(bytes.Clone(b), 0, 0, 0),
		"size past end":  b[:len(b)-1],
		"size below 8":   {0, 0, 0, 7, 'f', 'r', 'e', 'e'},
		"size past end2": {0, 0, 0, 9, 'f', 'r', 'e', 'e'},
	} {
		if _, err := testkit.Boxes(bad); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestNeedToolShort checks the rule make check relies on: under -short a test
// that needs a tool is skipped before the tool is looked up, unless CI=true.
func TestNeedToolShort(t *testing.T) {
	if !testing.Short() {
		t.Skip("checks -short")
	}
	t.Setenv("CI", "")
	ran := false
	t.Run("inner", func(t *testing.T) {
		testkit.NeedTool(t, "sh")
		ran = true
	})
	if ran {
		t.Error("NeedTool did not skip under -short")
	}
}

func TestRun(t *testing.T) {
	sh := "/bin/sh"
	out, errOut := testkit.Run(t, sh, "-c", "echo out; echo err >&2")
	if out != "out\n" || errOut != "err\n" {
		t.Errorf("Run: stdout %q stderr %q", out, errOut)
	}
}

func FuzzFLVTags(f *testing.F) {
	f.Add(flvFile(testkit.FLVTag{Type: 9, TS: 33, Body: []byte{0x17, 1, 0, 0, 0}}))
	f.Add([]byte("FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00\x08"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tags, err := testkit.FLVTags(b)
		if err != nil {
			return
		}
		n := int(binary.BigEndian.Uint32(b[5:9])) + 4
		for _, tag := range tags {
			n += 11 + len(tag.Body) + 4
		}
		if n != len(b) {
			t.Errorf("tags %+v cover %d of %d bytes", tags, n, len(b))
		}
	})
}

func FuzzBoxes(f *testing.F) {
	f.Add([]byte{0, 0, 0, 12, 's', 't', 'y', 'p', 'c', 'm', 'f', 'c'})
	f.Add([]byte{0, 0, 0, 7, 'f', 'r', 'e', 'e'})
	f.Fuzz(func(t *testing.T, b []byte) {
		boxes, err := testkit.Boxes(b)
		if err != nil {
			return
		}
		n := 0
		for _, x := range boxes {
			if x.Start != n {
				t.Fatalf("box at %d, want %d", x.Start, n)
			}
			n += 8 + len(x.Body)
		}
		if n != len(b) {
			t.Fatalf("boxes cover %d of %d bytes", n, len(b))
		}
	})
}

// ToneLevels finds the tone a sine carries and not another.
func TestToneLevels(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ffmpeg")
	}
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	path := t.TempDir() + "/sine.m4a"
	testkit.Run(t, ffmpeg, "-v", "error", "-f", "lavfi", "-i", "sine=frequency=660:sample_rate=48000:duration=2", "-c:a", "aac", path)
	lv, secs := testkit.ToneLevels(t, path, 440, 660)
	t.Logf("440 Hz %.3f, 660 Hz %.3f over %.2f s", lv[0], lv[1], secs)
	if lv[1] < 0.8 || lv[0] > 0.05 || secs < 1.9 {
		t.Errorf("levels %v over %.2f s, want 660 Hz alone", lv, secs)
	}
}
