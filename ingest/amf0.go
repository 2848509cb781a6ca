package ingest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// AMF0 type markers (AMF0 spec, section 2.1). Markers outside this subset (movie
// clip, reference, XML document, typed object, AVM+ switch) are refused: no RTMP
// encoder we accept sends them in commands or metadata.
const (
	amf0Number      = 0x00
	amf0Boolean     = 0x01
	amf0String      = 0x02
	amf0Object      = 0x03
	amf0Null        = 0x05
	amf0Undefined   = 0x06
	amf0ECMAArray   = 0x08
	amf0ObjectEnd   = 0x09
	amf0StrictArray = 0x0a
	amf0Date        = 0x0b
	amf0LongString  = 0x0c
)

// Decoding limits. Depth bounds recursion (stack); maxAMFValues bounds the number
// of values one message may expand to, since a strict array of nulls turns each
// input byte into a 16-byte interface value.
const (
	maxAMFDepth  = 16
	maxAMFValues = 1 << 16
)

var errAMFTruncated = errors.New("truncated")

// Decoded AMF0 values are Go values: float64 (number), bool, string (string and
// long string), nil (null), amfUndefined, amfObject, amfECMAArray, []any (strict
// array) and amfDate.
type (
	amfUndefined struct{}
	amfProperty  struct {
		Key   string
		Value any
	}
	// amfObject keeps property order so that replies encode as written.
	amfObject    []amfProperty
	amfECMAArray []amfProperty
	amfDate      struct {
		Millis float64
		TZ     int16 // reserved by the spec, kept for round trips
	}
)

// get returns the value of the first property named key.
func (o amfObject) get(key string) (any, bool) { return amfProps(o).get(key) }

type amfProps []amfProperty

func (p amfProps) get(key string) (any, bool) {
	for _, kv := range p {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// amfDecoder decodes a sequence of AMF0 values from one message body.
type amfDecoder struct {
	b      []byte
	off    int
	values int
}

// decodeAMF0 decodes every value in b.
func decodeAMF0(b []byte) ([]any, error) {
	d := amfDecoder{b: b}
	var out []any
	for d.off < len(d.b) {
		v, err := d.value(0)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *amfDecoder) fail(err error) error {
	return fmt.Errorf("ingest: amf0 at byte %d: %w", d.off, err)
}

func (d *amfDecoder) need(n int) error {
	if n < 0 || len(d.b)-d.off < n {
		return d.fail(errAMFTruncated)
	}
	return nil
}

func (d *amfDecoder) u16() (int, error) {
	if err := d.need(2); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint16(d.b[d.off:])
	d.off += 2
	return int(v), nil
}

func (d *amfDecoder) u32() (uint32, error) {
	if err := d.need(4); err != nil {
		return 0, err
	}
	v := binary.BigEndian.Uint32(d.b[d.off:])
	d.off += 4
	return v, nil
}

func (d *amfDecoder) str(n int) (string, error) {
	if err := d.need(n); err != nil {
		return "", err
	}
	s := string(d.b[d.off : d.off+n])
	d.off += n
	return s, nil
}

func (d *amfDecoder) value(depth int) (any, error) {
	if depth > maxAMFDepth {
		return nil, d.fail(fmt.Errorf("nesting deeper than %d", maxAMFDepth))
	}
	d.values++
	if d.values > maxAMFValues {
		return nil, d.fail(fmt.Errorf("more than %d values", maxAMFValues))
	}
	if err := d.need(1); err != nil {
		return nil, err
	}
	marker := d.b[d.off]
	d.off++
	switch marker {
	case amf0Number:
		if err := d.need(8); err != nil {
			return nil, err
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
		d.off += 8
		return v, nil
	case amf0Boolean:
		if err := d.need(1); err != nil {
			return nil, err
		}
		v := d.b[d.off] != 0
		d.off++
		return v, nil
	case amf0String:
		n, err := d.u16()
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case amf0LongString:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		if uint64(n) > uint64(len(d.b)-d.off) {
			return nil, d.fail(errAMFTruncated)
		}
		return d.str(int(n))
	case amf0Null:
		return nil, nil
	case amf0Undefined:
		return amfUndefined{}, nil
	case amf0Object:
		p, err := d.props(depth)
		return amfObject(p), err
	case amf0ECMAArray:
		// The count is a hint that encoders get wrong; the end marker is what counts.
		if _, err := d.u32(); err != nil {
			return nil, err
		}
		p, err := d.props(depth)
		return amfECMAArray(p), err
	case amf0StrictArray:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		// Every element takes at least one byte: a count beyond the rest is a lie,
		// and checking it first keeps the allocation bounded by the input.
		if uint64(n) > uint64(len(d.b)-d.off) {
			return nil, d.fail(fmt.Errorf("strict array of %d elements: %w", n, errAMFTruncated))
		}
		arr := make([]any, 0, n)
		for i := uint32(0); i < n; i++ {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	case amf0Date:
		if err := d.need(10); err != nil {
			return nil, err
		}
		ms := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
		tz := int16(binary.BigEndian.Uint16(d.b[d.off+8:]))
		d.off += 10
		return amfDate{Millis: ms, TZ: tz}, nil
	case amf0ObjectEnd:
		return nil, d.fail(errors.New("object end marker outside an object"))
	}
	return nil, d.fail(fmt.Errorf("unsupported marker 0x%02x", marker))
}

// props reads key/value pairs up to and including the object end marker.
func (d *amfDecoder) props(depth int) ([]amfProperty, error) {
	var out []amfProperty
	for {
		n, err := d.u16()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if err := d.need(1); err != nil {
				return nil, err
			}
			if d.b[d.off] == amf0ObjectEnd {
				d.off++
				return out, nil
			}
		}
		key, err := d.str(n)
		if err != nil {
			return nil, err
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		out = append(out, amfProperty{Key: key, Value: v})
	}
}

// appendAMF0 appends the AMF0 encoding of v. It accepts the decoder's value types
// plus int, uint32 and map-free convenience forms used in replies; anything else
// encodes as undefined so that a reply never fails half-written.
func appendAMF0(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, amf0Null)
	case amfUndefined:
		return append(dst, amf0Undefined)
	case float64:
		dst = append(dst, amf0Number)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(v))
	case int:
		return appendAMF0(dst, float64(v))
	case uint32:
		return appendAMF0(dst, float64(v))
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(dst, amf0Boolean, b)
	case string:
		if len(v) > math.MaxUint16 {
			dst = append(dst, amf0LongString)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
			return append(dst, v...)
		}
		dst = append(dst, amf0String)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
		return append(dst, v...)
	case amfObject:
		dst = append(dst, amf0Object)
		return appendAMFProps(dst, v)
	case amfECMAArray:
		dst = append(dst, amf0ECMAArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		return appendAMFProps(dst, v)
	case []any:
		dst = append(dst, amf0StrictArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		for _, e := range v {
			dst = appendAMF0(dst, e)
		}
		return dst
	case amfDate:
		dst = append(dst, amf0Date)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(v.Millis))
		return binary.BigEndian.AppendUint16(dst, uint16(v.TZ))
	}
	return append(dst, amf0Undefined)
}

func appendAMFProps(dst []byte, props []amfProperty) []byte {
	for _, p := range props {
		key := p.Key
		if len(key) > math.MaxUint16 {
			key = key[:math.MaxUint16]
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
		dst = append(dst, key...)
		dst = appendAMF0(dst, p.Value)
	}
	return append(dst, 0, 0, amf0ObjectEnd)
}
