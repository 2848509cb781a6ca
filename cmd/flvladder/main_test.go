package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

// TestRun merges three single-track files into one multitrack file whose
// video reads back as tracks 0, 1 and 2 with each file's frames, in both
// forms, and refuses a bad command line.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	var ins []string
	for i := range 3 {
		nal := byte(0x10 + i)
		tags := []rtmpclient.Tag{
			{Type: rtmpclient.TagVideo, Body: []byte{0x17, 0, 0, 0, 0, 1, 0x64, 0, 0x1f}},
			{Type: rtmpclient.TagVideo, Body: []byte{0x17, 1, 0, 0, 0, 0, 0, 0, 2, 0x65, nal}},
			{Type: rtmpclient.TagAudio, Body: []byte{0xaf, 0, 0x11, 0x90}},
			{Type: rtmpclient.TagVideo, Timestamp: 33, Body: []byte{0x27, 1, 0, 0, 0, 0, 0, 0, 2, 0x41, nal}},
		}
		p := filepath.Join(dir, "r"+string(rune('0'+i))+".flv")
		if err := os.WriteFile(p, rtmpclient.FLVFile(nil, tags), 0o644); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, p)
	}
	for form, perMessage := range map[string]int{"onetrack": 1, "manytracks": 3} {
		out := filepath.Join(dir, form+".flv")
		var stderr bytes.Buffer
		if rc := run(append([]string{"-o", out, "-form", form}, ins...), &stderr); rc != 0 {
			t.Fatalf("%s: exit %d: %s", form, rc, stderr.String())
		}
		c, err := rtmpclient.ReadFLV(out)
		if err != nil {
			t.Fatal(err)
		}
		var buf [flv.MaxTracks]flv.TrackPacket
		frames := map[uint8][]byte{}
		multitrack := 0
		for _, tag := range c.Tags {
			if tag.Type != rtmpclient.TagVideo {
				continue
			}
			m, err := flv.SplitVideo(buf[:], tag.Body)
			if err != nil {
				t.Fatal(err)
			}
			if m.Multitrack {
				multitrack++
				if len(m.Packets) != perMessage {
					t.Errorf("%s: %d packets in a multitrack message, want %d", form, len(m.Packets), perMessage)
				}
			}
			for _, p := range m.Packets {
				if p.Type == flv.PacketFrame {
					frames[p.TrackID] = append(frames[p.TrackID], p.Data[len(p.Data)-1])
				}
			}
		}
		for id := range uint8(3) {
			if want := []byte{0x10 + id, 0x10 + id}; !bytes.Equal(frames[id], want) {
				t.Errorf("%s: track %d frames end in %x, want %x", form, id, frames[id], want)
			}
		}
		if multitrack == 0 {
			t.Errorf("%s: no multitrack message", form)
		}
		if c.Audio != 1 {
			t.Errorf("%s: %d audio tags, want the first file's 1", form, c.Audio)
		}
	}
	for _, args := range [][]string{{}, {"-o", filepath.Join(dir, "x.flv")}, {"-o", "x", "-form", "other", ins[0]}} {
		if rc := run(args, &bytes.Buffer{}); rc != 2 {
			t.Errorf("%q: exit %d, want 2", args, rc)
		}
	}
	if rc := run([]string{"-o", filepath.Join(dir, "y.flv"), filepath.Join(dir, "missing.flv")}, &bytes.Buffer{}); rc != 1 {
		t.Errorf("a missing input: exit %d, want 1", rc)
	}
}
