package ts

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/remux"
)

const (
	nalAUD = 9
	nalSPS = 7
	nalPPS = 8

	// HEVC NAL unit types (ITU-T H.265 Table 7-1).
	hevcVPS = 32
	hevcSPS = 33
	hevcPPS = 34
	hevcAUD = 35
)

var startCode = [4]byte{0, 0, 0, 1}

// The access unit delimiters written when a frame has none: H.264
// primary_pic_type 7 (any slice type); HEVC NAL header type 35, layer 0,
// TemporalId 0, then pic_type 2 (I, P or B slices) and the stop bit.
var (
	audH264 = []byte{0, 0, 0, 1, nalAUD, 0xF0}
	audHEVC = []byte{0, 0, 0, 1, hevcAUD << 1, 0x01, 0x50}
)

// prepareH264 validates f's length-prefixed NAL units and sets up m.es to yield the
// PES (header, AUD, parameter sets before an IDR, then each NAL unit after a start
// code). It returns the PES size; nothing is copied yet. For HEVC (ISO/IEC
// 13818-1 2.17, and HLS's rule that every IRAP can start playback) the same
// holds with HEVC's NAL header: AUD type 35 first, VPS, SPS and PPS before
// every IRAP picture that does not carry them.
func (m *Muxer) prepareH264(f *remux.Frame, dts, pts uint64) (int, error) {
	hevc := f.Track.Codec == remux.CodecHEVC
	ls := f.Track.NALULengthSize
	if ls < 1 || ls > 4 {
		return 0, fmt.Errorf("NAL unit length size %d not in 1..4", ls)
	}
	data := f.Data
	var (
		firstType  = -1
		firstStart int // offset of the first non-empty NAL unit's length prefix
		firstEnd   int // offset just past it
		hasPS      bool
		annexB     int // bytes of the converted NAL units, start codes included
	)
	for off, i := 0, 0; off < len(data); i++ {
		if len(data)-off < ls {
			return 0, fmt.Errorf("NAL unit %d: %d bytes left for a %d-byte length", i, len(data)-off, ls)
		}
		n := 0
		for _, b := range data[off : off+ls] {
			n = n<<8 | int(b)
		}
		start := off
		off += ls
		if n > len(data)-off {
			return 0, fmt.Errorf("NAL unit %d: length %d > remaining %d bytes", i, n, len(data)-off)
		}
		if n == 0 {
			continue // nothing to carry; Annex B cannot express an empty NAL unit
		}
		t := int(data[off] & 0x1F)
		if hevc {
			t = int(data[off] >> 1 & 0x3F)
		}
		if firstType < 0 {
			firstType, firstStart, firstEnd = t, start, off+n
		}
		if !hevc && (t == nalSPS || t == nalPPS) || hevc && t >= hevcVPS && t <= hevcPPS {
			hasPS = true
		}
		annexB += len(startCode) + n
		off += n
	}

	m.es = esReader{lsize: ls, data: data}
	var pesLen int // video may use 0: unbounded, as 13818-1 allows for video only
	h := putPESHeader(m.hdr[:0], 0xE0, pesLen, pts, dts)
	total := annexB
	if !hevc && firstType == nalAUD || hevc && firstType == hevcAUD {
		// Keep the frame's own AUD first, and skip it in the NAL cursor so that
		// parameter sets can follow it.
		h = append(h, startCode[:]...)
		m.es.pieces[1] = data[firstStart+ls : firstEnd]
		m.es.data = data[firstEnd:]
		total -= len(startCode) + len(m.es.pieces[1])
	} else if hevc {
		h = append(h, audHEVC...)
	} else {
		h = append(h, audH264...)
	}
	if f.Key && !hasPS {
		ps, err := m.paramSetsFor(f.Track)
		if err != nil {
			return 0, err
		}
		m.es.pieces[2] = ps
	}
	m.es.pieces[0] = h
	return total + len(h) + len(m.es.pieces[1]) + len(m.es.pieces[2]), nil
}

// paramSetsFor returns t's parameter sets in Annex B form (HEVC: VPS, SPS,
// PPS; H.264: SPS, PPS), cached per track.
func (m *Muxer) paramSetsFor(t *remux.Track) ([]byte, error) {
	if t == m.paramTrack {
		return m.paramSets, nil
	}
	sets := [][][]byte{t.SPS, t.PPS}
	if t.Codec == remux.CodecHEVC {
		if len(t.VPS) == 0 {
			return nil, errNoParamSets
		}
		sets = [][][]byte{t.VPS, t.SPS, t.PPS}
	}
	n := 0
	for _, ps := range sets {
		for _, p := range ps {
			n += len(startCode) + len(p)
		}
	}
	if n > maxParamSets {
		return nil, fmt.Errorf("parameter sets of %d bytes > limit %d", n, maxParamSets)
	}
	if len(t.SPS) == 0 || len(t.PPS) == 0 {
		return nil, errNoParamSets
	}
	b := m.paramSets[:0]
	for _, ps := range sets {
		for _, p := range ps {
			b = append(b, startCode[:]...)
			b = append(b, p...)
		}
	}
	m.paramTrack, m.paramSets = t, b
	return b, nil
}

// maxParamSets bounds the cached SPS/PPS bytes; an avcC holds at most 31 SPS and
// 255 PPS, but real ones are a few dozen bytes.
const maxParamSets = 64 << 10

var errNoParamSets = errors.New("keyframe without parameter sets (SPS/PPS, and VPS for HEVC) in frame or track")
