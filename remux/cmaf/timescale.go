package cmaf

import (
	"math"
	"math/bits"
)

// toTimescale converts milliseconds to ticks of timescale, rounding half away from
// zero: round(ms * timescale / 1000). Sample times are always converted from the
// absolute millisecond timeline and durations taken as differences of converted
// times, so rounding never accumulates (44100 Hz has no integer ticks per ms).
// The product is computed in 128 bits; ok is false when the result does not fit
// an int64.
func toTimescale(ms int64, timescale uint32) (ticks int64, ok bool) {
	neg := ms < 0
	abs := uint64(ms)
	if neg {
		abs = -abs // two's complement; also right for math.MinInt64
	}
	hi, lo := bits.Mul64(abs, uint64(timescale))
	var carry uint64
	lo, carry = bits.Add64(lo, 500, 0)
	hi += carry
	if hi >= 1000 {
		return 0, false
	}
	q, _ := bits.Div64(hi, lo, 1000)
	switch {
	case neg && q == 1<<63:
		return math.MinInt64, true
	case q > math.MaxInt64:
		return 0, false
	case neg:
		return -int64(q), true
	}
	return int64(q), true
}
