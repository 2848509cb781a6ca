package rtmp

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestAMF0RoundTrip(t *testing.T) {
	long := strings.Repeat("x", 70000)
	tests := []struct {
		name string
		v    any
		enc  []byte // expected encoding, when short enough to write down
	}{
		{"number", 1.5, []byte{0, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0}},
		{"boolean", true, []byte{1, 1}},
		{"string", "ab", []byte{2, 0, 2, 'a', 'b'}},
		{"empty string", "", []byte{2, 0, 0}},
		{"long string", long, nil},
		{"null", nil, []byte{5}},
		{"undefined", Undefined{}, []byte{6}},
		{"date", Date{Millis: 1.7e12, TZ: -60}, nil},
		{"object", Object{{"a", 1.0}, {"b", "c"}}, []byte{3, 0, 1, 'a', 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0, 0, 1, 'b', 2, 0, 1, 'c', 0, 0, 9}},
		{"empty object", Object(nil), []byte{3, 0, 0, 9}},
		{"ECMA array", ECMAArray{{"width", 640.0}, {"encoder", "Lavf"}}, nil},
		{"strict array", []any{"avc1", "hvc1", nil, true}, nil},
		{"nested", Object{{"o", Object{{"arr", []any{ECMAArray{{"k", false}}}}}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			enc := AppendAMF0(nil, tc.v)
			if tc.enc != nil && !bytes.Equal(enc, tc.enc) {
				t.Fatalf("encoded % x, want % x", enc, tc.enc)
			}
			vals, err := DecodeAMF0(enc)
			if err != nil {
				t.Fatal(err)
			}
			if len(vals) != 1 || !reflect.DeepEqual(vals[0], tc.v) {
				t.Fatalf("decoded %#v, want %#v", vals, tc.v)
			}
		})
	}
	if enc := AppendAMF0(nil, long); enc[0] != AMF0LongString {
		t.Fatalf("a %d-byte string encoded with marker %d", len(long), enc[0])
	}
}

func nest(depth int) []byte {
	var b []byte
	for i := 0; i < depth; i++ {
		b = append(b, AMF0Object, 0, 1, 'k')
	}
	b = append(b, AMF0Null)
	for i := 0; i < depth; i++ {
		b = append(b, 0, 0, AMF0ObjectEnd)
	}
	return b
}

func TestAMF0Limits(t *testing.T) {
	nulls := append([]byte{AMF0StrictArray, 0, 1, 0, 1}, bytes.Repeat([]byte{AMF0Null}, 1<<16+1)...)
	tests := []struct {
		name string
		in   []byte
		ok   bool
		want string
	}{
		{"depth 16 decodes", nest(16), true, ""},
		{"depth 17 refused", nest(17), false, "nesting deeper than 16"},
		{"truncated number", []byte{0, 1, 2}, false, "truncated"},
		{"truncated string", []byte{2, 0, 10, 'a'}, false, "truncated"},
		{"long string longer than input", []byte{0x0c, 0xff, 0xff, 0xff, 0xff, 'a'}, false, "truncated"},
		{"strict array count past input", []byte{0x0a, 0xff, 0xff, 0xff, 0xff, 5}, false, "strict array of 4294967295"},
		{"truncated ECMA array", []byte{8, 0, 0, 0, 2, 0, 1, 'a', 1, 1}, false, "truncated"},
		{"ECMA array without end marker", append([]byte{8, 0, 0, 0, 1, 0, 1, 'a'}, AppendAMF0(nil, 1.0)...), false, "truncated"},
		{"ECMA array with a wrong count", []byte{8, 0, 0, 0, 9, 0, 1, 'a', 5, 0, 0, 9}, true, ""},
		{"object end at top level", []byte{9}, false, "object end marker outside"},
		{"unsupported marker", []byte{0x0d}, false, "unsupported marker 0x0d"},
		{"AMF3 switch marker", []byte{0x11, 1}, false, "unsupported marker 0x11"},
		{"too many values", nulls, false, "more than 65536 values"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeAMF0(tc.in)
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}

func TestAMF0Sequence(t *testing.T) {
	var b []byte
	for _, v := range []any{"connect", 1.0, Object{{"app", "live"}}, nil, math.Inf(1)} {
		b = AppendAMF0(b, v)
	}
	vals, err := DecodeAMF0(b)
	if err != nil || len(vals) != 5 || vals[0] != "connect" || !math.IsInf(vals[4].(float64), 1) {
		t.Fatalf("%v %v", vals, err)
	}
	if _, err := DecodeAMF0(b[:len(b)-1]); !errors.Is(err, ErrTruncated) {
		t.Fatalf("cut sequence: %v", err)
	}
}
