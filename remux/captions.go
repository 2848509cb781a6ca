package remux

// CarriesCaptions reports whether an H.264 frame (length-prefixed NAL units of
// lengthSize bytes) carries CEA-608/708 closed captions: an SEI message of type
// user_data_registered_itu_t_t35 holding ATSC A/53 cc_data (country 0xB5,
// provider 0x0031, "GA94", type 3), the way encoders embed captions in the video.
// HLS says whether a variant has such captions (RFC 8216bis CLOSED-CAPTIONS), and
// players that are not told probe segments for them. Malformed data is no captions.
func CarriesCaptions(data []byte, lengthSize int) bool {
	if lengthSize < 1 || lengthSize > 4 {
		return false
	}
	for off := 0; len(data)-off >= lengthSize; {
		n := 0
		for _, b := range data[off : off+lengthSize] {
			n = n<<8 | int(b)
		}
		off += lengthSize
		if n > len(data)-off {
			return false
		}
		if n > 0 && data[off]&0x1F == 6 && seiHasCaptions(data[off+1:off+n]) {
			return true
		}
		off += n
	}
	return false
}

// seiMaxScan bounds how much of one SEI NAL unit is read: caption messages are
// small and come among the first of an access unit's SEI messages.
const seiMaxScan = 512

// seiHasCaptions walks the sei_message()s of an SEI NAL unit's payload (after
// its header byte) for A/53 caption data.
func seiHasCaptions(rbsp []byte) bool {
	var buf [seiMaxScan]byte
	// Undo emulation prevention (00 00 03 -> 00 00) into buf.
	n, zeros := 0, 0
	for _, b := range rbsp {
		if n == len(buf) {
			break
		}
		if zeros >= 2 && b == 3 {
			zeros = 0
			continue
		}
		if b == 0 {
			zeros++
		} else {
			zeros = 0
		}
		buf[n] = b
		n++
	}
	p := buf[:n]
	for len(p) > 0 && p[0] != 0x80 { // 0x80: rbsp_trailing_bits
		typ, rest, ok := seiValue(p)
		if !ok {
			return false
		}
		size, rest, ok := seiValue(rest)
		if !ok {
			return false
		}
		if typ == 4 && size >= 8 && len(rest) >= 8 &&
			rest[0] == 0xB5 && rest[1] == 0x00 && rest[2] == 0x31 &&
			string(rest[3:7]) == "GA94" && rest[7] == 0x03 {
			return true
		}
		if size > len(rest) {
			return false
		}
		p = rest[size:]
	}
	return false
}

// seiValue reads an SEI payload type or size: 0xFF bytes each add 255, the
// first other byte ends it.
func seiValue(p []byte) (int, []byte, bool) {
	v := 0
	for i, b := range p {
		v += int(b)
		if b != 0xFF {
			return v, p[i+1:], true
		}
	}
	return 0, nil, false
}
