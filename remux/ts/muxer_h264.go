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
)

var startCode = [4]byte{0, 0, 0, 1}

// prepareH264 validates f's length-prefixed NAL units and sets up m.es to yield the
// PES (header, AUD, parameter sets before an IDR, then each NAL unit after a start
// code). It returns the PES size; nothing is copied yet.
func (m *Muxer) prepareH264(f *remux.Frame, dts, pts uint64) (int, error) {
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
		if firstType < 0 {
			firstType, firstStart, firstEnd = t, start, off+n
		}
		if t == nalSPS || t == nalPPS {
			hasPS = true
		}
		annexB += len(startCode) + n
		off += n
	}

	m.es = esReader{lsize: ls, data: data}
	var pesLen int // video may use 0: unbounded, as 13818-1 allows for video only
	h := putPESHeader(m.hdr[:0], 0xE0, pesLen, pts, dts)
	total := annexB
	if firstType == nalAUD {
		// Keep the frame's own AUD first, and skip it in the NAL cursor so that
		// parameter sets can follow it.
		h = append(h, startCode[:]...)
		m.es.pieces[1] = data[firstStart+ls : firstEnd]
		m.es.data = data[firstEnd:]
		total -= len(startCode) + len(m.es.pieces[1])
	} else {
		h = append(h, 0, 0, 0, 1, nalAUD, 0xF0) // primary_pic_type 7: any slice type
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

// paramSetsFor returns t's SPS and PPS in Annex B form, cached per track.
func (m *Muxer) paramSetsFor(t *remux.Track) ([]byte, error) {
	if t == m.paramTrack {
		return m.paramSets, nil
	}
	n := 0
	for _, ps := range [][][]byte{t.SPS, t.PPS} {
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
	for _, ps := range [][][]byte{t.SPS, t.PPS} {
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

var errNoParamSets = errors.New("keyframe without SPS/PPS in frame or track")
