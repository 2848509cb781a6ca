package flv

// FourCC is an Enhanced RTMP codec identifier: four ASCII characters read as a
// big-endian 32-bit value, as on the wire.
type FourCC uint32

// The FourCCs Enhanced RTMP v2 defines. Legacy tags are reported under the
// FourCC of their codec: codec id 7 as FourCCAVC, sound format 10 as FourCCAAC.
const (
	FourCCAVC  FourCC = 'a'<<24 | 'v'<<16 | 'c'<<8 | '1'
	FourCCHEVC FourCC = 'h'<<24 | 'v'<<16 | 'c'<<8 | '1'
	FourCCAV1  FourCC = 'a'<<24 | 'v'<<16 | '0'<<8 | '1'
	FourCCVP9  FourCC = 'v'<<24 | 'p'<<16 | '0'<<8 | '9'
	FourCCVP8  FourCC = 'v'<<24 | 'p'<<16 | '0'<<8 | '8'
	FourCCVVC  FourCC = 'v'<<24 | 'v'<<16 | 'c'<<8 | '1'

	FourCCAAC  FourCC = 'm'<<24 | 'p'<<16 | '4'<<8 | 'a'
	FourCCOpus FourCC = 'O'<<24 | 'p'<<16 | 'u'<<8 | 's'
	FourCCFLAC FourCC = 'f'<<24 | 'L'<<16 | 'a'<<8 | 'C'
	FourCCAC3  FourCC = 'a'<<24 | 'c'<<16 | '-'<<8 | '3'
	FourCCEAC3 FourCC = 'e'<<24 | 'c'<<16 | '-'<<8 | '3'
	FourCCMP3  FourCC = '.'<<24 | 'm'<<16 | 'p'<<8 | '3'
)

// String is the four characters, with bytes outside printable ASCII escaped.
func (f FourCC) String() string {
	b := [4]byte{byte(f >> 24), byte(f >> 16), byte(f >> 8), byte(f)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return quoteFourCC(b)
		}
	}
	return string(b[:])
}

func quoteFourCC(b [4]byte) string {
	const hex = "0123456789abcdef"
	out := make([]byte, 0, 16)
	for _, c := range b {
		if c >= 0x20 && c <= 0x7e && c != '\\' {
			out = append(out, c)
			continue
		}
		out = append(out, '\\', 'x', hex[c>>4], hex[c&15])
	}
	return string(out)
}

// IsVideo reports whether f is a video FourCC of the specification.
func (f FourCC) IsVideo() bool {
	switch f {
	case FourCCAVC, FourCCHEVC, FourCCAV1, FourCCVP9, FourCCVP8, FourCCVVC:
		return true
	}
	return false
}

// IsAudio reports whether f is an audio FourCC of the specification.
func (f FourCC) IsAudio() bool {
	switch f {
	case FourCCAAC, FourCCOpus, FourCCFLAC, FourCCAC3, FourCCEAC3, FourCCMP3:
		return true
	}
	return false
}

// hasCompositionTime reports whether CodedFrames of this video codec carry the
// SI24 composition time offset: only the codecs with B-frame reordering in the
// specification (avc1, hvc1, vvc1) do.
func (f FourCC) hasCompositionTime() bool {
	return f == FourCCAVC || f == FourCCHEVC || f == FourCCVVC
}

func readFourCC(b []byte) FourCC {
	return FourCC(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
}
