package testkit

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// VideoES is a video stream as an Enhanced RTMP publisher sends it: the
// configuration record of its sample entry and length-prefixed frames in
// decode order with their composition offsets.
type VideoES struct {
	Entry   string // sample entry type, e.g. "hvc1"
	Config  []byte // the configuration box's body, e.g. hvcC
	Frames  [][]byte
	CTS     []int32 // composition offsets in milliseconds
	FrameMs int
}

// EncodeVideo runs Debian's ffmpeg with args (the input and encoder options)
// into a fragmented MP4 and reads its single video track back: ffmpeg's MP4
// muxer writes the configuration record a publisher would send.
func EncodeVideo(tb testing.TB, frameMs int, args ...string) VideoES {
	tb.Helper()
	NeedTools(tb, "ffmpeg")
	out := filepath.Join(tb.TempDir(), "video.mp4")
	Run(tb, "ffmpeg", append(append([]string{"-nostdin", "-loglevel", "error"}, args...),
		"-an", "-movflags", "frag_keyframe+empty_moov+default_base_moof", "-f", "mp4", out)...)
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	es, err := readFragmentedMP4(b)
	if err != nil {
		tb.Fatalf("%s: %v", out, err)
	}
	es.FrameMs = frameMs
	return es
}

func child(b []byte, path ...string) ([]byte, error) {
	for _, typ := range path {
		boxes, err := Boxes(b)
		if err != nil {
			return nil, err
		}
		found := false
		for _, bx := range boxes {
			if bx.Type == typ {
				b, found = bx.Body, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("no %s box", typ)
		}
	}
	return b, nil
}

func readFragmentedMP4(b []byte) (VideoES, error) {
	var es VideoES
	top, err := Boxes(b)
	if err != nil {
		return es, err
	}
	stsd, err := child(b, "moov", "trak", "mdia", "minf", "stbl", "stsd")
	if err != nil || len(stsd) < 16 {
		return es, fmt.Errorf("stsd: %v", err)
	}
	var timescale uint32
	if mdhd, err := child(b, "moov", "trak", "mdia", "mdhd"); err == nil && len(mdhd) >= 16 {
		timescale = binary.BigEndian.Uint32(mdhd[12:])
	}
	entry := stsd[8:] // version/flags, entry_count
	es.Entry = string(entry[4:8])
	const visualEntry = 8 + 78 // box header, VisualSampleEntry fields
	if len(entry) < visualEntry {
		return es, fmt.Errorf("short sample entry")
	}
	entries, err := Boxes(entry[visualEntry:binary.BigEndian.Uint32(entry)])
	if err != nil || len(entries) == 0 {
		return es, fmt.Errorf("sample entry children: %v", err)
	}
	es.Config = entries[0].Body
	for i, bx := range top {
		if bx.Type != "moof" {
			continue
		}
		trun, err := child(bx.Body, "traf", "trun")
		if err != nil || len(trun) < 8 {
			return es, fmt.Errorf("moof %d: trun: %v", i, err)
		}
		defSize := tfhdDefaultSize(bx.Body)
		flags := binary.BigEndian.Uint32(trun) & 0xffffff
		n := int(binary.BigEndian.Uint32(trun[4:]))
		p := 8
		off := 0
		if flags&1 != 0 {
			off = int(int32(binary.BigEndian.Uint32(trun[p:])))
			p += 4
		}
		if flags&4 != 0 {
			p += 4
		}
		pos := bx.Start + off
		for range n {
			size := defSize
			var cto int32
			if flags&0x100 != 0 {
				p += 4
			}
			if flags&0x200 != 0 {
				size = int(binary.BigEndian.Uint32(trun[p:]))
				p += 4
			}
			if flags&0x400 != 0 {
				p += 4
			}
			if flags&0x800 != 0 {
				cto = int32(binary.BigEndian.Uint32(trun[p:]))
				p += 4
			}
			if size == 0 || pos+size > len(b) || p > len(trun) {
				return es, fmt.Errorf("moof %d: sample outside the file", i)
			}
			es.Frames = append(es.Frames, b[pos:pos+size])
			ms := int32(0)
			if timescale > 0 {
				ms = int32(int64(cto) * 1000 / int64(timescale))
			}
			es.CTS = append(es.CTS, ms)
			pos += size
		}
	}
	if len(es.Frames) == 0 {
		return es, fmt.Errorf("no samples")
	}
	return es, nil
}

// tfhdDefaultSize is the default_sample_size of a moof's tfhd, 0 when absent:
// ffmpeg writes a fragment's samples' size there when they are all alike (a
// fragment of one sample).
func tfhdDefaultSize(moof []byte) int {
	tfhd, err := child(moof, "traf", "tfhd")
	if err != nil || len(tfhd) < 8 {
		return 0
	}
	flags := binary.BigEndian.Uint32(tfhd) & 0xffffff
	p := 8
	for _, f := range []uint32{0x01, 0x02, 0x08} { // base_data_offset, sample_description_index, default_sample_duration
		if flags&f != 0 {
			p += 4
			if f == 0x01 {
				p += 4
			}
		}
	}
	if flags&0x10 == 0 || len(tfhd) < p+4 {
		return 0
	}
	return int(binary.BigEndian.Uint32(tfhd[p:]))
}
