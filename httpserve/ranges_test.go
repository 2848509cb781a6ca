package httpserve

import (
	"fmt"
	"strings"
	"testing"
)

func TestCoalesceRanges(t *testing.T) {
	for _, tc := range []struct {
		in   string
		size int64
		want string
		ok   bool
	}{
		{"bytes=0-99", 1000, "bytes=0-99", true},
		{"bytes=0-9,5-14", 1000, "bytes=0-14", true},
		{"bytes=10-19,0-9", 1000, "bytes=0-19", true},      // touching
		{"bytes=500-,-100", 1000, "bytes=500-999", true},   // suffix inside the open range
		{"bytes=0-0,2-2", 1000, "bytes=0-0,2-2", true},     // disjoint stay apart
		{"bytes=0-5000", 1000, "bytes=0-999", true},        // clipped
		{"bytes=2000-3000,0-1", 1000, "bytes=0-1", true},   // unsatisfiable part dropped
		{"bytes=2000-3000", 1000, "bytes=2000-3000", true}, // left for ServeContent's 416
		{"bytes=x-1", 1000, "bytes=x-1", true},             // unreadable: ServeContent decides
		{"items=0-1", 1000, "items=0-1", true},             // other unit: ignored by ServeContent
		{"bytes=" + strings.Repeat("0-0,", 16) + "1-1", 1000, "", false},
	} {
		got, ok := coalesceRanges(tc.in, tc.size)
		if got != tc.want || ok != tc.ok {
			t.Errorf("coalesceRanges(%q, %d) = %q, %v; want %q, %v", tc.in, tc.size, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzCoalesceRanges: whatever the Range value, the result asks for no byte
// twice, in ascending order, within the object, and for at most maxRanges.
func FuzzCoalesceRanges(f *testing.F) {
	f.Add("bytes=0-9,5-14,-3", int64(100))
	f.Add("bytes=,,,1-,-0", int64(10))
	f.Add("bytes=9223372036854775807-", int64(5))
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			return
		}
		out, ok := coalesceRanges(v, size)
		if !ok || out == v {
			return
		}
		spec, found := strings.CutPrefix(out, "bytes=")
		if !found {
			t.Fatalf("%q -> %q", v, out)
		}
		parts := strings.Split(spec, ",")
		if len(parts) > maxRanges {
			t.Fatalf("%q -> %d ranges", v, len(parts))
		}
		last := int64(-2)
		for _, p := range parts {
			var a, b int64
			if _, err := fmt.Sscanf(p, "%d-%d", &a, &b); err != nil || a > b || a <= last+1 || b >= size {
				t.Fatalf("%q (size %d) -> %q: bad part %q", v, size, out, p)
			}
			last = b
		}
	})
}
