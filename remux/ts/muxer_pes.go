package ts

import "slices"

// putPESHeader appends a PES header with PTS, and DTS when it differs from PTS.
// payloadLen is the number of bytes after the header, or 0 for unbounded.
func putPESHeader(b []byte, streamID byte, payloadLen int, pts, dts uint64) []byte {
	hdrLen, flags := 5, byte(0x80)
	if dts != pts {
		hdrLen, flags = 10, 0xC0
	}
	pesLen := 0
	if payloadLen > 0 {
		pesLen = 3 + hdrLen + payloadLen
		if pesLen > 0xFFFF {
			pesLen = 0
		}
	}
	// 0x84: '10' marker, data_alignment_indicator: every PES starts an access unit.
	b = append(b, 0, 0, 1, streamID, byte(pesLen>>8), byte(pesLen), 0x84, flags, byte(hdrLen))
	if flags == 0xC0 {
		b = putTimestamp(b, 0x3, pts)
		return putTimestamp(b, 0x1, dts)
	}
	return putTimestamp(b, 0x2, pts)
}

func putTimestamp(b []byte, prefix byte, ts uint64) []byte {
	return append(b,
		prefix<<4|byte(ts>>29)&0x0E|1,
		byte(ts>>22),
		byte(ts>>14)|1,
		byte(ts>>7),
		byte(ts<<1)|1,
	)
}

// esReader yields one PES's bytes: up to three prepared pieces, then the NAL units
// of data, each after a 4-byte start code, without copying them anywhere first.
type esReader struct {
	pieces [3][]byte
	data   []byte // length-prefixed NAL units still to emit (validated already)
	lsize  int
	sc     int    // start-code bytes still owed before nal
	nal    []byte // rest of the current NAL unit
}

// read fills p completely; the caller asks only for bytes it counted.
func (r *esReader) read(p []byte) {
	for len(p) > 0 {
		var piece *[]byte
		for i := range r.pieces {
			if len(r.pieces[i]) > 0 {
				piece = &r.pieces[i]
				break
			}
		}
		switch {
		case piece != nil:
			n := copy(p, *piece)
			*piece = (*piece)[n:]
			p = p[n:]
		case r.sc > 0:
			n := copy(p, startCode[len(startCode)-r.sc:])
			r.sc -= n
			p = p[n:]
		case len(r.nal) > 0:
			n := copy(p, r.nal)
			r.nal = r.nal[n:]
			p = p[n:]
		case r.lsize > 0 && len(r.data) >= r.lsize:
			n := 0
			for _, b := range r.data[:r.lsize] {
				n = n<<8 | int(b)
			}
			r.data = r.data[r.lsize:]
			n = min(n, len(r.data))
			r.nal, r.data = r.data[:n], r.data[n:]
			if n > 0 {
				r.sc = len(startCode)
			}
		default:
			// Unreachable when the size was counted right; pad rather than spin.
			clear(p)
			return
		}
	}
}

// appendPES packetizes total bytes from m.es into TS packets on pid. The first
// packet carries PCR (when pcr) and random_access_indicator (when rai); the last
// is filled up with adaptation-field stuffing, as 13818-1 requires for PES.
func (m *Muxer) appendPES(dst []byte, pid uint16, cc *uint8, total int, pcr bool, pcrBase uint64, rai bool) []byte {
	dst = slices.Grow(dst, (total/176+2)*PacketSize)
	first := true
	for rem := total; rem > 0; first = false {
		off := len(dst)
		dst = dst[:off+PacketSize]
		p := dst[off : off+PacketSize]
		p[0], p[1], p[2] = 0x47, byte(pid>>8)&0x1F, byte(pid)
		if first {
			p[1] |= 0x40 // payload_unit_start_indicator
		}
		afLen := -1 // no adaptation field
		if first && (pcr || rai) {
			afLen = 1
			if pcr {
				afLen += 6
			}
		}
		space := 184
		if afLen >= 0 {
			space -= 1 + afLen
		}
		if rem < space {
			if afLen < 0 {
				afLen = 183 - rem
			} else {
				afLen += space - rem
			}
			space = rem
		}
		p[3] = 0x10 | *cc
		*cc = (*cc + 1) & 0x0F
		i := 4
		if afLen >= 0 {
			p[3] |= 0x20
			p[4] = byte(afLen)
			i = 5
			if afLen > 0 {
				var flags byte
				if first && rai {
					flags |= 0x40
				}
				if first && pcr {
					flags |= 0x10
				}
				p[5] = flags
				i = 6
				if flags&0x10 != 0 {
					b := pcrBase // PCR = base×300 + 0: never after the DTS
					p[6], p[7], p[8], p[9] = byte(b>>25), byte(b>>17), byte(b>>9), byte(b>>1)
					p[10], p[11] = byte(b<<7)|0x7E, 0
					i = 12
				}
				for ; i < 5+afLen; i++ {
					p[i] = 0xFF
				}
			}
		}
		m.es.read(p[i : i+space])
		rem -= space
	}
	m.es = esReader{} // drop references to the caller's frame: it is only lent
	return dst
}
