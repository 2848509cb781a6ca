package ts

import "github.com/rtmpgate/rtmpgate/remux"

// buildPSI writes the PAT and PMT packets once; AppendSegmentStart only patches
// their continuity counters.
func (m *Muxer) buildPSI() {
	for i := range m.psi {
		m.psi[i] = 0xFF
	}

	pat := m.psi[:PacketSize]
	pat[0], pat[1], pat[2], pat[3] = 0x47, 0x40|PIDPAT>>8, PIDPAT&0xFF, 0x10
	pat[4] = 0 // pointer_field
	s := pat[5:5]
	s = append(s,
		0x00,       // table_id: program_association_section
		0xB0, 0x0D, // section_syntax_indicator, '0', reserved, section_length 13
		0x00, 0x01, // transport_stream_id
		0xC1,       // reserved, version 0, current_next_indicator
		0x00, 0x00, // section_number, last_section_number
		ProgramNumber>>8, ProgramNumber&0xFF,
		0xE0|PIDPMT>>8, PIDPMT&0xFF,
	)
	appendCRC(s)

	pmt := m.psi[PacketSize:]
	pmt[0], pmt[1], pmt[2], pmt[3] = 0x47, 0x40|PIDPMT>>8, PIDPMT&0xFF, 0x10
	pmt[4] = 0
	s = pmt[5:5]
	s = append(s,
		0x02,       // table_id: TS_program_map_section
		0xB0, 0x00, // section_length patched below
		ProgramNumber>>8, ProgramNumber&0xFF,
		0xC1, 0x00, 0x00,
		0xE0|byte(m.pcrPID>>8), byte(m.pcrPID),
		0xF0, 0x00, // program_info_length 0
	)
	if m.video != nil {
		s = append(s, streamType(m.video.Codec), 0xE0|PIDVideo>>8, PIDVideo&0xFF, 0xF0, 0x00)
	}
	if m.audio != nil {
		s = append(s, streamType(m.audio.Codec), 0xE0|PIDAudio>>8, PIDAudio&0xFF)
		switch m.audio.Codec {
		case remux.CodecAC3:
			s = append(s, 0xF0, 6, 0x05, 4, 'A', 'C', '-', '3') // registration_descriptor
		case remux.CodecEAC3:
			s = append(s, 0xF0, 6, 0x05, 4, 'E', 'A', 'C', '3')
		default:
			s = append(s, 0xF0, 0x00)
		}
	}
	n := len(s) - 3 + 4 // bytes after section_length, CRC included
	s[1], s[2] = 0xB0|byte(n>>8), byte(n)
	appendCRC(s)
}

// appendCRC writes the CRC32 of section s into the 4 bytes following it, which
// must be within s's capacity.
func appendCRC(s []byte) {
	c := crc32MPEG2(s)
	_ = append(s, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
}
