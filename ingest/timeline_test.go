package ingest

import (
	"fmt"
	"testing"
)

func TestTimeline(t *testing.T) {
	type in struct {
		track int // 0 video, 1 audio
		ts    uint32
	}
	tests := []struct {
		name           string
		in             []in
		want           []int64
		clamped, jumps int
	}{
		{"steady", []in{{0, 0}, {0, 33}, {0, 67}}, []int64{0, 33, 67}, 0, 0},
		{"starts late", []in{{0, 5000}, {0, 5033}}, []int64{5000, 5033}, 0, 0},
		{"rollover at 2^32", []in{{0, 0xfffffff0}, {0, 0x10}, {0, 0x30}}, []int64{0xfffffff0, 0x100000010, 0x100000030}, 0, 0},
		{"small step back clamped", []in{{0, 1000}, {0, 990}, {0, 1033}}, []int64{1000, 1000, 1033}, 1, 0},
		{"1 s back is still clamped", []in{{0, 5000}, {0, 4000}}, []int64{5000, 5000}, 1, 0},
		{"large step back bridged", []in{{0, 100000}, {0, 100040}, {0, 0}, {0, 40}}, []int64{100000, 100040, 100080, 100120}, 0, 1},
		{"large step forward bridged", []in{{0, 0}, {0, 20}, {0, 60000}, {0, 60020}}, []int64{0, 20, 40, 60}, 0, 1},
		{"10 s forward is a pause, kept", []in{{0, 0}, {0, 10000}}, []int64{0, 10000}, 0, 0},
		{"jump without a known step uses 33 ms", []in{{0, 100000}, {0, 0}}, []int64{100000, 100033}, 0, 1},
		{
			"audio and video restart together keep their offset",
			[]in{{0, 100000}, {1, 100010}, {0, 100033}, {1, 100033}, {0, 0}, {1, 20}, {0, 33}},
			[]int64{100000, 100010, 100033, 100033, 100066, 100086, 100099}, 0, 1,
		},
		{
			"tracks unwrap independently across rollover",
			[]in{{0, 0xffffffe0}, {1, 0xfffffff0}, {0, 0x00000010}, {1, 0x00000020}},
			[]int64{0xffffffe0, 0xfffffff0, 0x100000010, 0x100000020}, 0, 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var tl timeline
			for i, x := range tc.in {
				if got := tl.dts(x.track, x.ts); got != tc.want[i] {
					t.Fatalf("step %d (track %d, ts %d): DTS %d, want %d", i, x.track, x.ts, got, tc.want[i])
				}
			}
			if tl.Clamped != tc.clamped || tl.Jumps != tc.jumps {
				t.Fatalf("clamped %d jumps %d, want %d %d", tl.Clamped, tl.Jumps, tc.clamped, tc.jumps)
			}
		})
	}
}

func ExampleProtocolError() {
	err := protoErr(KindChunk, "chunk stream %d: message length %d > limit %d", 6, 9000000, 8388608)
	fmt.Println(err)
	// Output: ingest: chunk protocol error: chunk stream 6: message length 9000000 > limit 8388608
}
