// Package wire is the RTMP client's side of the protocol: a chunk writer for what
// it sends, a bounded chunk reader for the server's replies, and AMF0. Shared by
// rtmpclient and its test server, rtmptest.
package wire

import (
	"encoding/binary"
	"fmt"
	"math"
)

// AMF0 type markers (AMF0 spec 2.1).
const (
	amfNumber      = 0x00
	amfBoolean     = 0x01
	amfString      = 0x02
	amfObject      = 0x03
	amfNull        = 0x05
	amfUndefined   = 0x06
	amfECMAArray   = 0x08
	amfObjectEnd   = 0x09
	amfStrictArray = 0x0a
	amfDate        = 0x0b
	amfLongString  = 0x0c
)

// Bounds on decoding the server's replies.
const (
	amfMaxDepth  = 8
	amfMaxValues = 1024
)

// Field is one key of an AMF0 object we send, in order.
type Field struct {
	Key   string
	Value any
}

// AppendAMF0 encodes the few value kinds our commands use: float64, int, bool,
// string, nil (null) and []Field (object).
func AppendAMF0(b []byte, v any) []byte {
	switch v := v.(type) {
	case float64:
		b = append(b, amfNumber)
		return binary.BigEndian.AppendUint64(b, math.Float64bits(v))
	case int:
		return AppendAMF0(b, float64(v))
	case bool:
		if v {
			return append(b, amfBoolean, 1)
		}
		return append(b, amfBoolean, 0)
	case string:
		b = append(b, amfString)
		return appendAMFKey(b, v)
	case []Field:
		b = append(b, amfObject)
		for _, f := range v {
			b = appendAMFKey(b, f.Key)
			b = AppendAMF0(b, f.Value)
		}
		return append(b, 0, 0, amfObjectEnd)
	default:
		return append(b, amfNull)
	}
}

// appendAMFKey writes a UTF-8 string with its 16-bit length; our strings are short,
// longer ones are cut to fit.
func appendAMFKey(b []byte, s string) []byte {
	if len(s) > math.MaxUint16 {
		s = s[:math.MaxUint16]
	}
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// amfDecoder reads AMF0 values from a server's command message. Objects and ECMA
// arrays become map[string]any, strict arrays []any; everything is bounded.
type amfDecoder struct {
	b      []byte
	pos    int
	values int
}

// DecodeAMF0 decodes every value in b.
func DecodeAMF0(b []byte) ([]any, error) {
	d := &amfDecoder{b: b}
	var out []any
	for d.pos < len(d.b) {
		v, err := d.value(0)
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}

func (d *amfDecoder) need(n int) error {
	if n > len(d.b)-d.pos {
		return fmt.Errorf("amf0: %d bytes needed at offset %d, %d left", n, d.pos, len(d.b)-d.pos)
	}
	return nil
}

func (d *amfDecoder) str(lenBytes int) (string, error) {
	if err := d.need(lenBytes); err != nil {
		return "", err
	}
	var n int
	if lenBytes == 2 {
		n = int(binary.BigEndian.Uint16(d.b[d.pos:]))
	} else {
		n = int(binary.BigEndian.Uint32(d.b[d.pos:]))
	}
	d.pos += lenBytes
	if err := d.need(n); err != nil {
		return "", err
	}
	s := string(d.b[d.pos : d.pos+n])
	d.pos += n
	return s, nil
}

func (d *amfDecoder) value(depth int) (any, error) {
	if depth > amfMaxDepth {
		return nil, fmt.Errorf("amf0: nested deeper than %d at offset %d", amfMaxDepth, d.pos)
	}
	if d.values++; d.values > amfMaxValues {
		return nil, fmt.Errorf("amf0: more than %d values", amfMaxValues)
	}
	if err := d.need(1); err != nil {
		return nil, err
	}
	marker := d.b[d.pos]
	d.pos++
	switch marker {
	case amfNumber:
		if err := d.need(8); err != nil {
			return nil, err
		}
		v := math.Float64frombits(binary.BigEndian.Uint64(d.b[d.pos:]))
		d.pos += 8
		return v, nil
	case amfBoolean:
		if err := d.need(1); err != nil {
			return nil, err
		}
		d.pos++
		return d.b[d.pos-1] != 0, nil
	case amfString:
		return d.str(2)
	case amfLongString:
		return d.str(4)
	case amfNull, amfUndefined:
		return nil, nil
	case amfDate:
		if err := d.need(10); err != nil {
			return nil, err
		}
		d.pos += 10
		return nil, nil
	case amfECMAArray:
		if err := d.need(4); err != nil {
			return nil, err
		}
		d.pos += 4 // the count is a hint; the end marker ends it
		return d.object(depth)
	case amfObject:
		return d.object(depth)
	case amfStrictArray:
		if err := d.need(4); err != nil {
			return nil, err
		}
		n := binary.BigEndian.Uint32(d.b[d.pos:])
		d.pos += 4
		if n > amfMaxValues {
			return nil, fmt.Errorf("amf0: strict array of %d values", n)
		}
		arr := make([]any, 0, min(int(n), 16))
		for range n {
			v, err := d.value(depth + 1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		return arr, nil
	default:
		return nil, fmt.Errorf("amf0: unsupported marker 0x%02x at offset %d", marker, d.pos-1)
	}
}

func (d *amfDecoder) object(depth int) (map[string]any, error) {
	obj := map[string]any{}
	for {
		key, err := d.str(2)
		if err != nil {
			return nil, err
		}
		if key == "" {
			if err := d.need(1); err != nil {
				return nil, err
			}
			if d.b[d.pos] == amfObjectEnd {
				d.pos++
				return obj, nil
			}
		}
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		obj[key] = v
	}
}

// StatusCode is the "code" of a command reply's info object (its fourth value),
// "" if there is none.
func StatusCode(vals []any) string {
	if len(vals) < 4 {
		return ""
	}
	obj, _ := vals[3].(map[string]any)
	code, _ := obj["code"].(string)
	return code
}
