package ac3_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/rtmpgate/rtmpgate/remux/codec/ac3"
)

// The frames are the first syncframes of Debian ffmpeg 5.1's ac3 and eac3
// encoders (stereo, 48 kHz, 192 kbit/s); the expected dac3 and dec3 payloads
// are those ffmpeg's MP4 muxer writes for the same streams.
func TestParseFrameFFmpeg(t *testing.T) {
	for _, tc := range []struct {
		file, codec string
		eac3        bool
		samples     int
		config      []byte
	}{
		{"testdata/ffmpeg-ac3-stereo.bin", "ac-3", false, 1536, []byte{0x10, 0x11, 0x40}},
		{"testdata/ffmpeg-eac3-stereo.bin", "ec-3", true, 1536, []byte{0x06, 0x00, 0x20, 0x04, 0x00}},
	} {
		t.Run(tc.codec, func(t *testing.T) {
			b, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			f, err := ac3.ParseFrame(b)
			if err != nil {
				t.Fatal(err)
			}
			if f.EAC3 != tc.eac3 || f.SampleRate != 48000 || f.Channels != 2 || f.Size != 768 || f.Samples != tc.samples {
				t.Fatalf("frame %+v", f)
			}
			if got := f.Config(nil); !bytes.Equal(got, tc.config) {
				t.Fatalf("config %x, want %x", got, tc.config)
			}
			if f.CodecString() != tc.codec {
				t.Fatalf("codec string %q", f.CodecString())
			}
		})
	}
}

// An E-AC-3 access unit of an independent substream and a dependent one
// (7.1 as 5.1 plus Lrs/Rrs) is described in dec3 with num_dep_sub 1 and the
// dependent substream's chan_loc.
func TestEAC3DependentSubstream(t *testing.T) {
	ind := []byte{0x0b, 0x77, 0x00, 0x07, 0x3f, 0x80, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0}
	// strmtyp 1, frmsiz 7 (16 bytes), fscod 0, numblkscod 3, acmod 2, lfe 0,
	// bsid 16, dialnorm 0, compre 0, chanmape 1, chanmap 0x0200 (Lrs/Rrs).
	dep := []byte{0x0b, 0x77, 0x40, 0x07, 0x34, 0x80, 0x10, 0x20, 0x00, 0, 0, 0, 0, 0, 0, 0}
	f, err := ac3.ParseFrame(append(append([]byte(nil), ind...), dep...))
	if err != nil {
		t.Fatal(err)
	}
	cfg := f.Config(nil)
	if len(cfg) != 6 || cfg[4]>>1&15 != 1 {
		t.Fatalf("dec3 %x: want num_dep_sub 1 and chan_loc", cfg)
	}
	if loc := int(cfg[4]&1)<<8 | int(cfg[5]); loc != 0x0200>>2 {
		t.Fatalf("chan_loc %#x", loc)
	}
}

func TestParseFrameErrors(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":        nil,
		"no syncword":  {0, 0, 0, 0, 0, 0, 0, 0},
		"bsid 10":      {0x0b, 0x77, 0, 0, 0, 10 << 3, 0},
		"ac3 fscod 3":  {0x0b, 0x77, 0, 0, 0xc0, 8 << 3, 0},
		"ac3 frmsize":  {0x0b, 0x77, 0, 0, 38, 8 << 3, 0},
		"eac3 short":   {0x0b, 0x77, 0, 0, 0x00, 16 << 3},
		"eac3 strm 3":  {0x0b, 0x77, 0xc0, 0x07, 0x3f, 0x80, 0, 0},
		"eac3 dep 1st": {0x0b, 0x77, 0x40, 0x07, 0x34, 0x80, 0x00, 0x40, 0x10, 0},
	} {
		if _, err := ac3.ParseFrame(b); !errors.Is(err, ac3.ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func FuzzParseFrame(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		fr, err := ac3.ParseFrame(b)
		if err != nil {
			if !errors.Is(err, ac3.ErrMalformed) {
				t.Fatal(err)
			}
			return
		}
		if fr.SampleRate < 16000 || fr.Channels < 1 || fr.Channels > 6 || fr.Samples%256 != 0 || fr.Size <= 0 {
			t.Fatalf("frame %+v", fr)
		}
		if n := len(fr.Config(nil)); n != 3 && n != 5 && n != 6 {
			t.Fatalf("config of %d bytes", n)
		}
	})
}
