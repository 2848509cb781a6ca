// Package bits reads big-endian bit fields and exp-Golomb codes for the FLV and
// codec parsers. Every read is bounds-checked: after the first failure the reader
// stays failed, so a parser reads several fields and checks Err once.
package bits

import "errors"

// ErrExhausted is the error of a read past the end.
var ErrExhausted = errors.New("out of bits")

// ErrGolombTooLong is the error of an exp-Golomb code over 32 bits.
var ErrGolombTooLong = errors.New("exp-Golomb code longer than 32 bits")

// Reader reads bits from a byte slice it does not modify.
type Reader struct {
	buf []byte
	pos int
	err error
}

// New returns a reader at the first bit of b.
func New(b []byte) Reader { return Reader{buf: b} }

// Err is the first error met, or nil.
func (r *Reader) Err() error { return r.err }

// Left is the number of unread bits.
func (r *Reader) Left() int { return len(r.buf)*8 - r.pos }

// Pos is the number of bits read.
func (r *Reader) Pos() int { return r.pos }

// Bits reads n <= 32 bits as an unsigned value.
func (r *Reader) Bits(n int) uint32 {
	if r.err != nil {
		return 0
	}
	if n < 0 || n > 32 || n > r.Left() {
		r.err = ErrExhausted
		return 0
	}
	var v uint32
	for i := 0; i < n; i++ {
		v = v<<1 | uint32(r.buf[r.pos>>3]>>(7-uint(r.pos&7))&1)
		r.pos++
	}
	return v
}

// Flag reads one bit.
func (r *Reader) Flag() bool { return r.Bits(1) == 1 }

// Skip skips n bits.
func (r *Reader) Skip(n int) {
	if r.err != nil {
		return
	}
	if n < 0 || n > r.Left() {
		r.err = ErrExhausted
		return
	}
	r.pos += n
}

// UE reads an unsigned exp-Golomb code (H.264 9.1, H.265 9.2).
func (r *Reader) UE() uint32 {
	zeros := 0
	for r.err == nil && !r.Flag() {
		zeros++
		if zeros > 31 {
			r.err = ErrGolombTooLong
		}
	}
	if r.err != nil {
		return 0
	}
	return uint32(uint64(1)<<zeros - 1 + uint64(r.Bits(zeros)))
}

// SE reads a signed exp-Golomb code.
func (r *Reader) SE() int64 {
	k := int64(r.UE())
	if k&1 == 1 {
		return (k + 1) / 2
	}
	return -k / 2
}
