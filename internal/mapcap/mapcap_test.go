package mapcap

import "testing"

func TestDropQuarter(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 8, 101} {
		m := make(map[int]bool, n)
		for i := range n {
			m[i] = true
		}
		DropQuarter(m)
		if want := n - n/4; len(m) != want {
			t.Errorf("%d entries: %d left, want %d", n, len(m), want)
		}
	}
}
