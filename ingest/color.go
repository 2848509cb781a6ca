package ingest

import (
	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

// colorInfo is what an Enhanced RTMP v2 video Metadata packet's "colorInfo"
// object says (colorConfig and hdrCll; hdrMdcv has no place in the outputs
// yet): the H.273 code points and the content light levels.
type colorInfo struct {
	color    remux.Color
	bitDepth int // 0 when not given
}

// parseColorInfo reads a Metadata packet's AMF0 body: the name "colorInfo"
// and its object. It reports false for other metadata, a malformed body or a
// colorInfo saying nothing the outputs use. Values out of range are ignored,
// as the specification leaves every property optional.
func parseColorInfo(data []byte) (colorInfo, bool) {
	vals, err := rtmp.DecodeAMF0(data)
	if err != nil || len(vals) < 2 {
		return colorInfo{}, false
	}
	if name, _ := vals[0].(string); name != "colorInfo" {
		return colorInfo{}, false
	}
	obj, ok := amfObject(vals[1])
	if !ok {
		return colorInfo{}, false
	}
	// Unspecified (2) is H.273's value for a code point not given.
	ci := colorInfo{color: remux.Color{Primaries: 2, Transfer: 2, Matrix: 2}}
	said := false
	if cfg, ok := amfObjectAt(obj, "colorConfig"); ok {
		if v, ok := amfUint(cfg, "colorPrimaries", 255); ok {
			ci.color.Primaries, said = uint8(v), true
		}
		if v, ok := amfUint(cfg, "transferCharacteristics", 255); ok {
			ci.color.Transfer, said = uint8(v), true
		}
		if v, ok := amfUint(cfg, "matrixCoefficients", 255); ok {
			ci.color.Matrix, said = uint8(v), true
		}
		if v, ok := amfUint(cfg, "bitDepth", 16); ok {
			ci.bitDepth = int(v)
		}
	}
	if cll, ok := amfObjectAt(obj, "hdrCll"); ok {
		if v, ok := amfUint(cll, "maxCLL", 0xffff); ok {
			ci.color.MaxCLL, said = uint16(v), true
		}
		if v, ok := amfUint(cll, "maxFall", 0xffff); ok {
			ci.color.MaxFALL, said = uint16(v), true
		}
	}
	return ci, said
}

// withColor applies colorInfo to a track built from its configuration record:
// the code points it gives replace the record's, the full-range flag (which
// colorInfo does not carry) stays the record's. It returns t itself when
// nothing changes, otherwise a copy: tracks are immutable once announced.
func withColor(t *remux.Track, ci *colorInfo) *remux.Track {
	if ci == nil || t.Kind() != remux.KindVideo {
		return t
	}
	c := ci.color
	if t.Color != nil {
		c.FullRange = t.Color.FullRange
		if c.Primaries == 2 {
			c.Primaries = t.Color.Primaries
		}
		if c.Transfer == 2 {
			c.Transfer = t.Color.Transfer
		}
		if c.Matrix == 2 {
			c.Matrix = t.Color.Matrix
		}
	}
	if t.Color != nil && *t.Color == c {
		return t
	}
	nt := *t
	nt.Color = &c
	return &nt
}

func amfObject(v any) (rtmp.Object, bool) {
	switch o := v.(type) {
	case rtmp.Object:
		return o, true
	case rtmp.ECMAArray:
		return rtmp.Object(o), true
	}
	return nil, false
}

func amfObjectAt(o rtmp.Object, key string) (rtmp.Object, bool) {
	v, _ := o.Get(key)
	return amfObject(v)
}

func amfUint(o rtmp.Object, key string, max float64) (uint32, bool) {
	v, _ := o.Get(key)
	f, ok := v.(float64)
	if !ok || f < 0 || f > max || f != float64(uint32(f)) {
		return 0, false
	}
	return uint32(f), true
}
