package flv_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

func TestCheckNALUs(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		lengthSize int
		msg        string // empty: valid
	}{
		{"one 4-byte unit", []byte{0, 0, 0, 2, 0x65, 0x88}, 4, ""},
		{"two 4-byte units", []byte{0, 0, 0, 1, 0x09, 0, 0, 0, 2, 0x65, 0x88}, 4, ""},
		{"2-byte units", []byte{0, 1, 0x09, 0, 3, 0x41, 1, 2}, 2, ""},
		{"1-byte units", []byte{1, 0x09, 2, 0x41, 0x9a}, 1, ""},
		{"large unit", append([]byte{0, 0, 1, 0}, make([]byte, 256)...), 4, ""},

		{"empty", nil, 4, "no NAL units"},
		{"length size 3", []byte{0, 0, 1, 0x65}, 3, "length size 3"},
		{"length size 0", []byte{1, 0x65}, 0, "length size 0"},
		{"length size 8", []byte{1, 0x65}, 8, "length size 8"},
		{"length past end", []byte{0, 0, 0, 3, 0x65, 0x88}, 4, "NAL unit 0 at byte 0: length 3, 2 bytes left"},
		{"second length past end", []byte{0, 0, 0, 1, 0x09, 0, 0, 0, 9, 0x65}, 4, "NAL unit 1 at byte 5: length 9, 1 bytes left"},
		{"prefix truncated", []byte{0, 0, 0, 1, 0x09, 0, 0}, 4, "NAL unit 1 at byte 5: length prefix truncated"},
		{"zero length", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0x09}, 4, "NAL unit 0 at byte 0: length 0"},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff, 0x65}, 4, "length 4294967295"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := flv.CheckNALUs(tc.data, tc.lengthSize)
			if tc.msg == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, flv.ErrMalformed) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("error %v, want ErrMalformed with %q", err, tc.msg)
			}
		})
	}
}
