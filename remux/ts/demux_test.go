package ts_test

import (
	"bytes"
	"fmt"
)

// demuxed is what the test demuxer found in a run of TS packets.
type demuxed struct {
	packets  int
	pat, pmt [][]byte // sections, CRC verified
	pes      []pesUnit
}

type pesUnit struct {
	pid       uint16
	streamID  byte
	pts, dts  int64 // dts == pts when absent
	hasDTS    bool
	rai       bool
	pcr       int64 // -1 when the first packet had none
	pesLength int
	es        []byte
}

// demux checks the packet layer of b (sync bytes, adaptation fields, continuity
// counters per PID, PSI CRCs) and reassembles PES units. cc carries the last
// continuity counter per PID across calls, so segments can be checked in a row.
func demux(b []byte, cc map[uint16]int) (*demuxed, error) {
	if len(b)%188 != 0 {
		return nil, fmt.Errorf("length %d not a multiple of 188", len(b))
	}
	d := &demuxed{}
	open := map[uint16]*pesUnit{}
	var order []*pesUnit
	for off := 0; off < len(b); off += 188 {
		p := b[off : off+188]
		n := off / 188
		d.packets++
		if p[0] != 0x47 {
			return nil, fmt.Errorf("packet %d: sync byte %#x", n, p[0])
		}
		if p[1]&0x80 != 0 {
			return nil, fmt.Errorf("packet %d: transport_error_indicator", n)
		}
		pusi := p[1]&0x40 != 0
		pid := uint16(p[1]&0x1F)<<8 | uint16(p[2])
		afc := p[3] >> 4 & 3
		c := int(p[3] & 0x0F)
		if afc != 1 && afc != 3 {
			return nil, fmt.Errorf("packet %d pid %#x: adaptation_field_control %d", n, pid, afc)
		}
		if prev, ok := cc[pid]; ok && c != (prev+1)&0x0F {
			return nil, fmt.Errorf("packet %d pid %#x: continuity counter %d after %d", n, pid, c, prev)
		}
		cc[pid] = c
		payload := p[4:]
		rai, pcr := false, int64(-1)
		if afc == 3 {
			l := int(p[4])
			if l > 182 {
				return nil, fmt.Errorf("packet %d: adaptation field length %d leaves no payload", n, l)
			}
			if l > 0 {
				flags := p[5]
				rai = flags&0x40 != 0
				if flags&0x10 != 0 {
					if l < 7 {
						return nil, fmt.Errorf("packet %d: PCR flag in %d-byte adaptation field", n, l)
					}
					base := int64(p[6])<<25 | int64(p[7])<<17 | int64(p[8])<<9 | int64(p[9])<<1 | int64(p[10]>>7)
					ext := int64(p[10]&1)<<8 | int64(p[11])
					pcr = base*300 + ext
				}
				start := 6
				if flags&0x10 != 0 {
					start = 12
				}
				for i := start; i < 5+l; i++ {
					if p[i] != 0xFF {
						return nil, fmt.Errorf("packet %d: stuffing byte %#x", n, p[i])
					}
				}
			}
			payload = p[5+l:]
		}
		switch pid {
		case 0x0000, 0x1000:
			if !pusi || payload[0] != 0 {
				return nil, fmt.Errorf("packet %d pid %#x: PSI not at unit start", n, pid)
			}
			sec := payload[1:]
			l := int(sec[1]&0x0F)<<8 | int(sec[2])
			if 3+l > len(sec) || l < 9 {
				return nil, fmt.Errorf("packet %d: section_length %d", n, l)
			}
			sec = sec[:3+l]
			if crc := testCRC(sec); crc != 0 {
				return nil, fmt.Errorf("packet %d pid %#x: CRC residue %#x", n, pid, crc)
			}
			if pid == 0 {
				d.pat = append(d.pat, sec)
			} else {
				d.pmt = append(d.pmt, sec)
			}
		default:
			if pusi {
				u := &pesUnit{pid: pid, rai: rai, pcr: pcr}
				open[pid] = u
				order = append(order, u)
			} else if rai || pcr >= 0 {
				return nil, fmt.Errorf("packet %d: PCR/RAI outside a PES start", n)
			}
			u := open[pid]
			if u == nil {
				return nil, fmt.Errorf("packet %d pid %#x: payload without unit start", n, pid)
			}
			u.es = append(u.es, payload...)
		}
	}
	for _, u := range order {
		if err := u.parse(); err != nil {
			return nil, fmt.Errorf("pid %#x: %w", u.pid, err)
		}
		d.pes = append(d.pes, *u)
	}
	return d, nil
}

// parse replaces u.es (the whole PES) by its elementary stream bytes.
func (u *pesUnit) parse() error {
	b := u.es
	if len(b) < 9 || !bytes.Equal(b[:3], []byte{0, 0, 1}) {
		return fmt.Errorf("PES start % x", b[:min(len(b), 9)])
	}
	u.streamID = b[3]
	u.pesLength = int(b[4])<<8 | int(b[5])
	if u.pesLength != 0 && u.pesLength != len(b)-6 {
		return fmt.Errorf("PES_packet_length %d, carried %d", u.pesLength, len(b)-6)
	}
	flags, hl := b[7], int(b[8])
	if 9+hl > len(b) {
		return fmt.Errorf("PES header length %d", hl)
	}
	readTS := func(p []byte, prefix byte) (int64, error) {
		if p[0]>>4 != prefix || p[0]&1 != 1 || p[2]&1 != 1 || p[4]&1 != 1 {
			return 0, fmt.Errorf("timestamp % x: bad prefix or markers", p[:5])
		}
		return int64(p[0]>>1&7)<<30 | int64(p[1])<<22 | int64(p[2]>>1)<<15 | int64(p[3])<<7 | int64(p[4]>>1), nil
	}
	var err error
	switch flags >> 6 {
	case 2:
		if hl < 5 {
			return fmt.Errorf("header length %d for PTS", hl)
		}
		u.pts, err = readTS(b[9:], 2)
		u.dts = u.pts
	case 3:
		if hl < 10 {
			return fmt.Errorf("header length %d for PTS+DTS", hl)
		}
		if u.pts, err = readTS(b[9:], 3); err == nil {
			u.dts, err = readTS(b[14:], 1)
		}
		u.hasDTS = true
	default:
		return fmt.Errorf("PTS_DTS_flags %d", flags>>6)
	}
	if err != nil {
		return err
	}
	u.es = b[9+hl:]
	return nil
}

// testCRC is a bitwise MPEG-2 CRC32, kept independent of the package's table; over
// a section including its CRC it yields 0.
func testCRC(b []byte) uint32 {
	c := uint32(0xFFFFFFFF)
	for _, v := range b {
		c ^= uint32(v) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
	}
	return c
}
