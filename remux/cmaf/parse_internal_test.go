package cmaf

import (
	"encoding/binary"
	"fmt"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// fragInfo is what parseFragment found in one styp+moof+mdat.
type fragInfo struct {
	seq        uint32
	trackID    uint32
	base       uint64
	dataOffset int // from the first byte of moof
	moofStart  int
	mdatStart  int
	payload    []byte
	samples    []trunSample
}

type trunSample struct {
	duration, size, flags uint32
	cto                   int32
}

// parseFragment is an independent strict reader of what Flush writes: exactly
// styp, moof (mfhd, traf with tfhd, tfdt, trun) and mdat, every size consistent
// with its contents and the sizes covering b exactly.
func parseFragment(b []byte) (*fragInfo, error) {
	fi := &fragInfo{}
	top, err := testkit.Boxes(b)
	if err != nil {
		return nil, err
	}
	if len(top) != 3 || top[0].Type != "styp" || top[1].Type != "moof" || top[2].Type != "mdat" {
		return nil, fmt.Errorf("top level %v, want styp moof mdat", types(top))
	}
	if len(top[0].Body) != StypSize-8 || len(top[0].Body) != 8+4*len(fragmentBrands) {
		return nil, fmt.Errorf("styp body %d bytes", len(top[0].Body))
	}
	return parseMoofMdat(fi, top[1:])
}

// parseChunk is parseFragment for a FlushChunk: moof and mdat only.
func parseChunk(b []byte) (*fragInfo, error) {
	top, err := testkit.Boxes(b)
	if err != nil {
		return nil, err
	}
	if len(top) != 2 || top[0].Type != "moof" || top[1].Type != "mdat" {
		return nil, fmt.Errorf("top level %v, want moof mdat", types(top))
	}
	return parseMoofMdat(&fragInfo{}, top)
}

func parseMoofMdat(fi *fragInfo, top []testkit.Box) (*fragInfo, error) {
	top = append([]testkit.Box{{}}, top...) // keep the indices of the styp layout
	fi.moofStart, fi.mdatStart = top[1].Start, top[2].Start
	fi.payload = top[2].Body

	moof, err := testkit.Boxes(top[1].Body)
	if err != nil {
		return nil, fmt.Errorf("moof: %w", err)
	}
	if len(moof) != 2 || moof[0].Type != "mfhd" || moof[1].Type != "traf" || len(moof[0].Body) != 8 {
		return nil, fmt.Errorf("moof holds %v", types(moof))
	}
	fi.seq = binary.BigEndian.Uint32(moof[0].Body[4:])
	traf, err := testkit.Boxes(moof[1].Body)
	if err != nil {
		return nil, fmt.Errorf("traf: %w", err)
	}
	if len(traf) != 3 || traf[0].Type != "tfhd" || traf[1].Type != "tfdt" || traf[2].Type != "trun" {
		return nil, fmt.Errorf("traf holds %v", types(traf))
	}

	tfhd := traf[0].Body
	if len(tfhd) < 8 {
		return nil, fmt.Errorf("tfhd %d bytes", len(tfhd))
	}
	tfFlags := binary.BigEndian.Uint32(tfhd) & 0xffffff
	fi.trackID = binary.BigEndian.Uint32(tfhd[4:])
	var defFlags uint32
	switch tfFlags {
	case tfhdFlags:
		if len(tfhd) != 8 {
			return nil, fmt.Errorf("tfhd flags 0x%06x with %d bytes", tfFlags, len(tfhd))
		}
	case tfhdFlags | tfhdDefFlags:
		if len(tfhd) != 12 {
			return nil, fmt.Errorf("tfhd flags 0x%06x with %d bytes", tfFlags, len(tfhd))
		}
		defFlags = binary.BigEndian.Uint32(tfhd[8:])
	default:
		return nil, fmt.Errorf("tfhd flags 0x%06x", tfFlags)
	}

	tfdt := traf[1].Body
	if len(tfdt) != 12 || tfdt[0] != 1 {
		return nil, fmt.Errorf("tfdt: %d bytes, want version 1", len(tfdt))
	}
	fi.base = binary.BigEndian.Uint64(tfdt[4:])

	trun := traf[2].Body
	if len(trun) < 12 || trun[0] != 1 {
		return nil, fmt.Errorf("trun: %d bytes, want version 1", len(trun))
	}
	rf := binary.BigEndian.Uint32(trun) & 0xffffff
	if rf&^(trunSampleFl|trunCTO) != trunFlags {
		return nil, fmt.Errorf("trun flags 0x%06x", rf)
	}
	if (rf&trunSampleFl != 0) == (tfFlags&tfhdDefFlags != 0) {
		return nil, fmt.Errorf("sample flags both or neither in tfhd (0x%06x) and trun (0x%06x)", tfFlags, rf)
	}
	n := int(binary.BigEndian.Uint32(trun[4:]))
	fi.dataOffset = int(int32(binary.BigEndian.Uint32(trun[8:])))
	per := 8
	if rf&trunSampleFl != 0 {
		per += 4
	}
	if rf&trunCTO != 0 {
		per += 4
	}
	if n == 0 || len(trun) != 12+n*per {
		return nil, fmt.Errorf("trun: %d samples of %d bytes in %d bytes", n, per, len(trun))
	}
	p := trun[12:]
	for range n {
		s := trunSample{duration: binary.BigEndian.Uint32(p), size: binary.BigEndian.Uint32(p[4:]), flags: defFlags}
		p = p[8:]
		if rf&trunSampleFl != 0 {
			s.flags = binary.BigEndian.Uint32(p)
			p = p[4:]
		}
		if rf&trunCTO != 0 {
			s.cto = int32(binary.BigEndian.Uint32(p))
			p = p[4:]
		}
		fi.samples = append(fi.samples, s)
	}

	var total uint64
	for _, s := range fi.samples {
		total += uint64(s.size)
	}
	if total != uint64(len(fi.payload)) {
		return nil, fmt.Errorf("trun sizes add up to %d, mdat payload is %d", total, len(fi.payload))
	}
	if fi.moofStart+fi.dataOffset != fi.mdatStart+8 {
		return nil, fmt.Errorf("data_offset %d from moof at %d points at %d, mdat payload starts at %d",
			fi.dataOffset, fi.moofStart, fi.moofStart+fi.dataOffset, fi.mdatStart+8)
	}
	return fi, nil
}

func types(bs []testkit.Box) []string {
	var t []string
	for _, b := range bs {
		t = append(t, b.Type)
	}
	return t
}
