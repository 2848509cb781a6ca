package rtmp

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
	AMF0Number      = 0x00
	AMF0Boolean     = 0x01
	AMF0String      = 0x02
	AMF0Object      = 0x03
	AMF0Null        = 0x05
	AMF0Undefined   = 0x06
	AMF0ECMAArray   = 0x08
	AMF0ObjectEnd   = 0x09
	AMF0StrictArray = 0x0a
	AMF0Date        = 0x0b
	AMF0LongString  = 0x0c
)

// Decoding limits. Depth bounds recursion (stack); maxAMFValues bounds the number
// of values one message may expand to, since a strict array of nulls turns each
// input byte into a 16-byte interface value.
const (
	maxAMFDepth  = 16
	maxAMFValues = 1 << 16
)

// ErrTruncated is wrapped by every decoding error where the input ended early.
var ErrTruncated = errors.New("truncated")

// Decoded AMF0 values are Go values: float64 (number), bool, string (string and
// long string), nil (null), Undefined, Object, ECMAArray, []any (strict array)
// and Date.
type (
	Undefined struct{}
	Property  struct {
		Key   string
		Value any
	}
	// Object keeps property order so that replies encode as written.
	Object    []Property
	ECMAArray []Property
	Date      struct {
		Millis float64
		TZ     int16 // reserved by the spec, kept for round trips
	}
)

// Get returns the value of the first property named key.
func (o Object) Get(key string) (any, bool) {
	for _, kv := range o {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return nil, false
}

// Get returns the value of the first property named key.
func (a ECMAArray) Get(key string) (any, bool) { return Object(a).Get(key) }

// GetString returns the value of the property named key if it is a string.
func (o Object) GetString(key string) (string, bool) {
	v, _ := o.Get(key)
	s, ok := v.(string)
	return s, ok
}

// amfDecoder decodes a sequence of AMF0 values from one message body.
type amfDecoder struct {
	b      []byte
	off    int
	values int
}

// DecodeAMF0 decodes every value in b, bounded in depth and count.
func DecodeAMF0(b []byte) ([]any, error) {
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
	return fmt.Errorf("rtmp: amf0 at byte %d: %w", d.off, err)
}

func (d *amfDecoder) need(n int) error {
	if n < 0 || len(d.b)-d.off < n {
		return d.fail(ErrTruncated)
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
	case AMF0Number:
		if err := d.need(8); err != nil {
			return nil, err
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
		d.off += 8
		return v, nil
	case AMF0Boolean:
		if err := d.need(1); err != nil {
			return nil, err
		}
		v := d.b[d.off] != 0
		d.off++
		return v, nil
	case AMF0String:
		n, err := d.u16()
		if err != nil {
			return nil, err
		}
		return d.str(n)
	case AMF0LongString:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		if uint64(n) > uint64(len(d.b)-d.off) {
			return nil, d.fail(ErrTruncated)
		}
		return d.str(int(n))
	case AMF0Null:
		return nil, nil
	case AMF0Undefined:
		return Undefined{}, nil
	case AMF0Object:
		p, err := d.props(depth)
		return Object(p), err
	case AMF0ECMAArray:
		// The count is a hint that encoders get wrong; the end marker is what counts.
		if _, err := d.u32(); err != nil {
			return nil, err
		}
		p, err := d.props(depth)
		return ECMAArray(p), err
	case AMF0StrictArray:
		n, err := d.u32()
		if err != nil {
			return nil, err
		}
		// Every element takes at least one byte: a count beyond the rest is a lie,
		// and checking it first keeps the allocation bounded by the input.
		if uint64(n) > uint64(len(d.b)-d.off) {
			return nil, d.fail(fmt.Errorf("strict array of %d elements: %w", n, ErrTruncated))
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
	case AMF0Date:
		if err := d.need(10); err != nil {
			return nil, err
		}
		ms := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.off:]))
		tz := int16(binary.BigEndian.Uint16(d.b[d.off+8:]))
		d.off += 10
		return Date{Millis: ms, TZ: tz}, nil
	case AMF0ObjectEnd:
		return nil, d.fail(errors.New("object end marker outside an object"))
	}
	return nil, d.fail(fmt.Errorf("unsupported marker 0x%02x", marker))
}

// props reads key/value pairs up to and including the object end marker.
func (d *amfDecoder) props(depth int) ([]Property, error) {
	var out []Property
	for {
		n, err := d.u16()
		if err != nil {
			return nil, err
		}
		if n == 0 {
			if err := d.need(1); err != nil {
				return nil, err
			}
			if d.b[d.off] == AMF0ObjectEnd {
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
		out = append(out, Property{Key: key, Value: v})
	}
}

// AppendAMF0 appends the AMF0 encoding of v. It accepts the decoder's value types
// plus int and uint32; anything else encodes as undefined so that a message never
// fails half-written.
func AppendAMF0(dst []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(dst, AMF0Null)
	case Undefined:
		return append(dst, AMF0Undefined)
	case float64:
		dst = append(dst, AMF0Number)
		return binary.BigEndian.AppendUint64(dst, math.Float64bits(v))
	case int:
		return AppendAMF0(dst, float64(v))
	case uint32:
		return AppendAMF0(dst, float64(v))
	case bool:
		b := byte(0)
		if v {
			b = 1
		}
		return append(dst, AMF0Boolean, b)
	case string:
		if len(v) > math.MaxUint16 {
			dst = append(dst, AMF0LongString)
			dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
			return append(dst, v...)
		}
		dst = append(dst, AMF0String)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(v)))
		return append(dst, v...)
	case Object:
		dst = append(dst, AMF0Object)
		return appendProps(dst, v)
	case ECMAArray:
		dst = append(dst, AMF0ECMAArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		return appendProps(dst, v)
	case []any:
		dst = append(dst, AMF0StrictArray)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(v)))
		for _, e := range v {
			dst = AppendAMF0(dst, e)
		}
		return dst
	case Date:
		dst = append(dst, AMF0Date)
		dst = binary.BigEndian.AppendUint64(dst, math.Float64bits(v.Millis))
		return binary.BigEndian.AppendUint16(dst, uint16(v.TZ))
	}
	return append(dst, AMF0Undefined)
}

func appendProps(dst []byte, props []Property) []byte {
	for _, p := range props {
		key := p.Key
		if len(key) > math.MaxUint16 {
			key = key[:math.MaxUint16]
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(key)))
		dst = append(dst, key...)
		dst = AppendAMF0(dst, p.Value)
	}
	return append(dst, 0, 0, AMF0ObjectEnd)
}

// StatusCode is the "code" of a command's info object, its fourth value, as
// _result, _error and onStatus carry it; "" if there is none.
func StatusCode(vals []any) string {
	if len(vals) < 4 {
		return ""
	}
	obj, _ := vals[3].(Object)
	code, _ := obj.GetString("code")
	return code
}
