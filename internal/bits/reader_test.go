package bits

import "testing"

func TestReader(t *testing.T) {
	// 1 | 010 | 011 | 00100 | 0000 1: ue 0, 1, 2, 3; then a 4-bit field.
	r := New([]byte{0b1010_0110, 0b0100_0000, 0b1000_0000})
	for want := uint32(0); want < 4; want++ {
		if got := r.UE(); got != want {
			t.Fatalf("UE %d, want %d", got, want)
		}
	}
	if r.Pos() != 12 || r.Left() != 12 {
		t.Fatalf("pos %d left %d", r.Pos(), r.Left())
	}
	if v := r.Bits(5); v != 0b00001 || r.Err() != nil {
		t.Fatalf("Bits %b, %v", v, r.Err())
	}
	r.Skip(8)
	if r.Err() == nil {
		t.Fatal("skip past the end: no error")
	}
	if r.Flag() || r.UE() != 0 || r.Err() != ErrExhausted {
		t.Fatal("reader did not stay failed")
	}
	long := New([]byte{0, 0, 0, 0, 0x80})
	if long.UE(); long.Err() != ErrGolombTooLong {
		t.Fatalf("33-bit code: %v", long.Err())
	}
	s := New([]byte{0b0100_1100, 0b1000_0000}) // ue 1, 2 -> se 1, -1; ue 3 (00100) -> se 2
	if a, b, c := s.SE(), s.SE(), s.SE(); a != 1 || b != -1 || c != 2 {
		t.Fatalf("SE %d %d %d", a, b, c)
	}
}
