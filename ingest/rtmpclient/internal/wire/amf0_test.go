package wire

import (
	"reflect"
	"strings"
	"testing"
)

func TestAMF0RoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   []any
		want []any
	}{
		{"command", []any{"connect", 1, []Field{{"app", "live"}, {"tcUrl", "rtmp://h/live"}}},
			[]any{"connect", float64(1), map[string]any{"app": "live", "tcUrl": "rtmp://h/live"}}},
		{"null and bool", []any{"publish", 5.5, nil, true, false}, []any{"publish", 5.5, nil, true, false}},
		{"nested object", []any{[]Field{{"a", []Field{{"b", 2}}}}}, []any{map[string]any{"a": map[string]any{"b": float64(2)}}}},
		{"empty string", []any{""}, []any{""}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			for _, v := range tc.in {
				b = AppendAMF0(b, v)
			}
			got, err := DecodeAMF0(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v\nwant %#v", got, tc.want)
			}
		})
	}
}

// What servers send that we never do: ECMA arrays, strict arrays, long strings,
// undefined and dates decode; broken input is an error, never a panic.
func TestAMF0Decode(t *testing.T) {
	tests := []struct {
		name    string
		in      []byte
		want    []any
		wantErr string
	}{
		{"ecma array", []byte{0x08, 0, 0, 0, 1, 0, 1, 'k', 0x02, 0, 1, 'v', 0, 0, 9}, []any{map[string]any{"k": "v"}}, ""},
		{"strict array", []byte{0x0a, 0, 0, 0, 2, 0x05, 0x01, 1}, []any{[]any{nil, true}}, ""},
		{"long string", []byte{0x0c, 0, 0, 0, 2, 'h', 'i'}, []any{"hi"}, ""},
		{"undefined", []byte{0x06}, []any{nil}, ""},
		{"date", []byte{0x0b, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, []any{nil}, ""},
		{"truncated number", []byte{0x00, 1, 2}, nil, "8 bytes needed"},
		{"string past the end", []byte{0x02, 0, 9, 'a'}, nil, "9 bytes needed"},
		{"unterminated object", []byte{0x03, 0, 1, 'k', 0x05}, nil, "bytes needed"},
		{"huge strict array", []byte{0x0a, 0xff, 0xff, 0xff, 0xff}, nil, "strict array of"},
		{"unknown marker", []byte{0x11}, nil, "unsupported marker 0x11"},
		{"too deep", []byte(strings.Repeat("\x0a\x00\x00\x00\x01", 20) + "\x05"), nil, "nested deeper"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeAMF0(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, %v; want %#v", got, err, tc.want)
			}
		})
	}
}
