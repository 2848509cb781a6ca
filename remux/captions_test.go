package remux

import (
	"bytes"
	"testing"
)

// avcc prefixes each NAL unit with a 4-byte length.
func avcc(nals ...[]byte) []byte {
	var b []byte
	for _, n := range nals {
		b = append(b, byte(len(n)>>24), byte(len(n)>>16), byte(len(n)>>8), byte(len(n)))
		b = append(b, n...)
	}
	return b
}

// a53SEI is an SEI NAL unit holding one A/53 caption message (two cc_data
// triplets), after a user_data_unregistered message like the one x264 writes.
func a53SEI() []byte {
	unreg := append(bytes.Repeat([]byte{0x11}, 16), []byte("x264 - core 164")...)
	sei := []byte{6, 5, byte(len(unreg))}
	sei = append(sei, unreg...)
	cc := []byte{0xB5, 0x00, 0x31, 'G', 'A', '9', '4', 0x03, 0xC2, 0xFF, 0xFC, 0x94, 0x20, 0xFC, 0x00, 0x00, 0xFF}
	sei = append(sei, 4, byte(len(cc)))
	sei = append(sei, cc...)
	return append(sei, 0x80)
}

func TestCarriesCaptions(t *testing.T) {
	slice := []byte{0x65, 0x88, 0x84, 0x00, 0x33}
	unreg := append([]byte{6, 5, 20}, bytes.Repeat([]byte{0x22}, 20)...)
	unreg = append(unreg, 0x80)
	for _, tc := range []struct {
		name string
		data []byte
		ls   int
		want bool
	}{
		{"captions", avcc([]byte{9, 0xF0}, a53SEI(), slice), 4, true},
		{"no SEI", avcc([]byte{9, 0xF0}, slice), 4, false},
		{"other SEI only", avcc(unreg, slice), 4, false},
		{"other provider", avcc(bytes.Replace(a53SEI(), []byte{0x00, 0x31, 'G'}, []byte{0x00, 0x2F, 'G'}, 1), slice), 4, false},
		{"truncated length", avcc(a53SEI())[:10], 4, false},
		{"bad length size", avcc(a53SEI()), 0, false},
		{"empty", nil, 4, false},
	} {
		if got := CarriesCaptions(tc.data, tc.ls); got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
		}
	}
	// Emulation prevention is undone before the messages are walked: a first
	// message of 4 bytes 00 00 00 01 is 5 bytes in the NAL unit (00 00 03 00 01);
	// read without undoing it, the caption message after it would be missed.
	escaped := append([]byte{6, 5, 4, 0, 0, 3, 0, 1}, a53SEI()[1:]...)
	if !CarriesCaptions(avcc(escaped, slice), 4) {
		t.Error("captions after an escaped message not found")
	}
}

func FuzzCarriesCaptions(f *testing.F) {
	f.Add(avcc(a53SEI()), 4)
	f.Add(avcc([]byte{6, 0xFF, 0xFF, 0x01, 0x00}), 4)
	f.Add([]byte{0, 3, 6, 4, 9}, 2)
	f.Fuzz(func(t *testing.T, data []byte, ls int) {
		CarriesCaptions(data, ls) // must not panic or read out of bounds
	})
}
