package flv

// CheckNALUs reports an error unless data is a whole sequence of NAL units, each
// prefixed with a big-endian length of lengthSize bytes, ending exactly at len(data).
// A zero length is an error too: a NAL unit has at least its header byte, and a
// zero length is the usual sign of a wrong lengthSize. A valid frame costs no
// allocation.
func CheckNALUs(data []byte, lengthSize int) error {
	if lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		return malformedf("NAL unit length size %d: want 1, 2 or 4", lengthSize)
	}
	if len(data) == 0 {
		return errNoNALUs
	}
	// Each step consumes at least lengthSize+1 bytes, so the loop is bounded by
	// len(data).
	for p, i := 0, 0; p < len(data); i++ {
		if len(data)-p < lengthSize {
			return malformedf("NAL unit %d at byte %d: length prefix truncated (%d bytes left)", i, p, len(data)-p)
		}
		var n uint64
		for _, b := range data[p : p+lengthSize] {
			n = n<<8 | uint64(b)
		}
		p += lengthSize
		if n == 0 {
			return malformedf("NAL unit %d at byte %d: length 0", i, p-lengthSize)
		}
		if n > uint64(len(data)-p) {
			return malformedf("NAL unit %d at byte %d: length %d, %d bytes left", i, p-lengthSize, n, len(data)-p)
		}
		p += int(n)
	}
	return nil
}

var errNoNALUs = malformedf("video frame holds no NAL units")
