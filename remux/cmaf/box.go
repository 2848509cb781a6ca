package cmaf

import "encoding/binary"

// Boxes are written append-style: open reserves the 32-bit size, close fills it in
// once the children are known. Only bytes this package appended are patched, never
// caller data. Every input is bounded well below 4 GiB, so 32-bit sizes suffice.

func appendU8(b []byte, v uint8) []byte   { return append(b, v) }
func appendU16(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendU32(b []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(b, v) }
func appendU64(b []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(b, v) }

func appendZeros(b []byte, n int) []byte {
	for range n {
		b = append(b, 0)
	}
	return b
}

// openBox appends a box header with a placeholder size and returns where it starts.
func openBox(b []byte, typ string) ([]byte, int) {
	start := len(b)
	b = append(b, 0, 0, 0, 0)
	b = append(b, typ[:4]...)
	return b, start
}

// openFullBox is openBox followed by the FullBox version and 24-bit flags.
func openFullBox(b []byte, typ string, version uint8, flags uint32) ([]byte, int) {
	b, start := openBox(b, typ)
	b = appendU32(b, uint32(version)<<24|flags&0xffffff)
	return b, start
}

func closeBox(b []byte, start int) []byte {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start))
	return b
}

// unityMatrix is the identity transformation of mvhd and tkhd.
var unityMatrix = [9]uint32{0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000}

func appendMatrix(b []byte) []byte {
	for _, v := range unityMatrix {
		b = appendU32(b, v)
	}
	return b
}
