package flv

import "errors"

// errBitsExhausted is returned by bitReader reads past the end. Callers wrap it
// with the field they were reading, so one static value keeps the reader free of
// allocations.
var errBitsExhausted = errors.New("out of bits")

// bitReader reads big-endian bit fields and exp-Golomb codes (H.264 7.2, 9.1).
// Every read is bounds-checked: after the first failure the reader stays failed,
// so a parser may read several fields and check the error once.
type bitReader struct {
	buf []byte
	pos int // bit position in buf
	err error
}

func newBitReader(b []byte) bitReader { return bitReader{buf: b} }

// left is the number of unread bits.
func (r *bitReader) left() int { return len(r.buf)*8 - r.pos }

// bits reads n <= 32 bits as an unsigned value.
func (r *bitReader) bits(n int) uint32 {
	if r.err != nil {
		return 0
	}
	if n < 0 || n > 32 || n > r.left() {
		r.err = errBitsExhausted
		return 0
	}
	var v uint32
	for i := 0; i < n; i++ {
		b := r.buf[r.pos>>3] >> (7 - uint(r.pos&7)) & 1
		v = v<<1 | uint32(b)
		r.pos++
	}
	return v
}

func (r *bitReader) flag() bool { return r.bits(1) == 1 }

// ue reads an unsigned exp-Golomb code. Codes longer than 32 bits of prefix
// cannot be valid in any field we read, so they fail rather than overflow.
func (r *bitReader) ue() uint32 {
	if r.err != nil {
		return 0
	}
	zeros := 0
	for {
		if r.left() < 1 {
			r.err = errBitsExhausted
			return 0
		}
		if r.bits(1) == 1 {
			break
		}
		zeros++
		if zeros > 31 {
			r.err = errExpGolombTooLong
			return 0
		}
	}
	if zeros == 0 {
		return 0
	}
	rest := uint64(r.bits(zeros))
	return uint32(uint64(1)<<zeros - 1 + rest)
}

var errExpGolombTooLong = errors.New("exp-Golomb code longer than 32 bits")

// se reads a signed exp-Golomb code: 1, -1, 2, -2, ... for 1, 2, 3, 4, ...
func (r *bitReader) se() int64 {
	k := int64(r.ue())
	if k&1 == 1 {
		return (k + 1) / 2
	}
	return -k / 2
}
