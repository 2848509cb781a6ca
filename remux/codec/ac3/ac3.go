// Package ac3 knows what the rest of rtmpgate needs of AC-3 and E-AC-3 (ETSI
// TS 102 366): the syncframe header of a coded frame, from which the sample
// rate, channel count and the payload of the ISOBMFF configuration box (dac3,
// annex F.4; dec3, annex F.6) are derived. Enhanced RTMP defines no sequence
// start for either codec, so a track is described by its first frame.
//
// It is pure: no I/O, no state; errors wrap ErrMalformed.
package ac3

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/internal/bits"
)

// ErrMalformed is wrapped by the errors for a frame that breaks TS 102 366.
var ErrMalformed = errors.New("ac3: malformed")

func malformedf(format string, args ...any) error {
	return fmt.Errorf("ac3: "+format+": %w", append(args, ErrMalformed)...)
}

// Frame is what a syncframe's header says. For E-AC-3 it describes the
// access unit: its first independent substream, with the dependent substreams
// that follow it counted.
type Frame struct {
	EAC3       bool // bsid 11..16: E-AC-3 (annex E); 0..8: AC-3
	SampleRate int  // Hz
	Channels   int  // full-bandwidth channels plus LFE
	Size       int  // bytes of the first syncframe
	Samples    int  // audio samples per channel in the first syncframe: 1536 for AC-3, 256 per block for E-AC-3

	fscod, bsid, bsmod, acmod uint8
	lfe                       bool
	bitRateCode               uint8  // AC-3: frmsizecod >> 1
	dataRate                  uint16 // E-AC-3: kbit/s
	numDepSub                 uint8  // E-AC-3: dependent substreams of substream 0
	chanLoc                   uint16 // E-AC-3: chan_loc of those dependent substreams
}

// acmodChannels is the number of full-bandwidth channels per audio coding mode.
var acmodChannels = [8]int{2, 1, 2, 3, 3, 4, 4, 5}

var sampleRates = [3]int{48000, 44100, 32000}

// AC-3 frame sizes in 16-bit words per frmsizecod/2, for 48, 44.1 and 32 kHz
// (TS 102 366 table 4.13); 44.1 kHz adds one word for odd frmsizecod.
var frameWords = [19][3]int{
	{64, 69, 96}, {80, 87, 120}, {96, 104, 144}, {112, 121, 168}, {128, 139, 192},
	{160, 174, 240}, {192, 208, 288}, {224, 243, 336}, {256, 278, 384}, {320, 348, 480},
	{384, 417, 576}, {448, 487, 672}, {512, 557, 768}, {640, 696, 960}, {768, 835, 1152},
	{896, 975, 1344}, {1024, 1114, 1536}, {1152, 1253, 1728}, {1280, 1393, 1920},
}

// ParseFrame reads the syncframe header at the start of b, a coded frame as
// Enhanced RTMP carries it. For E-AC-3 the following syncframes of b are
// walked to count the dependent substreams of independent substream 0.
func ParseFrame(b []byte) (Frame, error) {
	if len(b) < 6 {
		return Frame{}, malformedf("frame of %d bytes: need a syncframe header", len(b))
	}
	if b[0] != 0x0b || b[1] != 0x77 {
		return Frame{}, malformedf("no syncword 0x0B77")
	}
	bsid := b[5] >> 3
	switch {
	case bsid <= 8:
		return parseAC3(b)
	case bsid >= 11 && bsid <= 16:
		return parseEAC3(b)
	}
	return Frame{}, malformedf("bsid %d: neither AC-3 nor E-AC-3", bsid)
}

func parseAC3(b []byte) (Frame, error) {
	r := bits.New(b[4:]) // after syncword and crc1
	fscod := uint8(r.Bits(2))
	frmsizecod := uint8(r.Bits(6))
	f := Frame{fscod: fscod, bsid: uint8(r.Bits(5)), bsmod: uint8(r.Bits(3)), acmod: uint8(r.Bits(3))}
	if fscod == 3 {
		return Frame{}, malformedf("AC-3 fscod 3: reserved")
	}
	if frmsizecod >= 38 {
		return Frame{}, malformedf("AC-3 frmsizecod %d: reserved", frmsizecod)
	}
	if f.acmod&1 != 0 && f.acmod != 1 {
		r.Skip(2) // cmixlev
	}
	if f.acmod&4 != 0 {
		r.Skip(2) // surmixlev
	}
	if f.acmod == 2 {
		r.Skip(2) // dsurmod
	}
	f.lfe = r.Flag()
	if r.Err() != nil {
		return Frame{}, malformedf("AC-3 bsi truncated")
	}
	f.bitRateCode = frmsizecod >> 1
	words := frameWords[f.bitRateCode][fscod]
	if fscod == 1 {
		words += int(frmsizecod & 1)
	}
	f.Size, f.Samples, f.SampleRate = 2*words, 1536, sampleRates[fscod]
	f.Channels = acmodChannels[f.acmod]
	if f.lfe {
		f.Channels++
	}
	return f, nil
}

// eac3Header is one E-AC-3 syncframe's bsi, as far as dec3 needs it.
type eac3Header struct {
	strmtyp, substreamid      uint8
	size                      int
	fscod, fscod2, numblkscod uint8
	acmod, bsid, bsmod        uint8
	lfe                       bool
	chanmap                   uint16
}

func readEAC3(b []byte) (eac3Header, error) {
	if len(b) < 6 || b[0] != 0x0b || b[1] != 0x77 {
		return eac3Header{}, malformedf("E-AC-3 substream without syncword")
	}
	r := bits.New(b[2:])
	h := eac3Header{strmtyp: uint8(r.Bits(2)), substreamid: uint8(r.Bits(3))}
	h.size = 2 * (int(r.Bits(11)) + 1)
	h.fscod = uint8(r.Bits(2))
	if h.fscod == 3 {
		h.fscod2, h.numblkscod = uint8(r.Bits(2)), 3
		if h.fscod2 == 3 {
			return eac3Header{}, malformedf("E-AC-3 fscod2 3: reserved")
		}
	} else {
		h.numblkscod = uint8(r.Bits(2))
	}
	h.acmod, h.lfe, h.bsid = uint8(r.Bits(3)), r.Flag(), uint8(r.Bits(5))
	if h.strmtyp == 3 {
		return eac3Header{}, malformedf("E-AC-3 stream type 3: reserved")
	}
	r.Skip(5) // dialnorm
	if r.Flag() {
		r.Skip(8) // compr
	}
	if h.acmod == 0 {
		r.Skip(5) // dialnorm2
		if r.Flag() {
			r.Skip(8) // compr2
		}
	}
	if h.strmtyp == 1 && r.Flag() {
		h.chanmap = uint16(r.Bits(16))
	}
	if r.Flag() { // mixmdate
		skipMixMetadata(&r, &h)
	}
	if r.Flag() { // infomdate
		h.bsmod = uint8(r.Bits(3))
	}
	if r.Err() != nil {
		return eac3Header{}, malformedf("E-AC-3 bsi truncated")
	}
	if h.size > len(b) {
		// The frame size is checked against the message only for walking on
		// to the next substream; the first one is read from its header.
		h.size = len(b)
	}
	return h, nil
}

// blocks is the number of audio blocks per syncframe for numblkscod.
var blocks = [4]int{1, 2, 3, 6}

// skipMixMetadata skips the mixing metadata of an E-AC-3 bsi (TS 102 366
// E.1.2.2) to reach the informational metadata that holds bsmod.
func skipMixMetadata(r *bits.Reader, h *eac3Header) {
	if h.acmod > 2 {
		r.Skip(2) // dmixmod
	}
	if h.acmod&1 != 0 && h.acmod > 2 {
		r.Skip(6) // ltrtcmixlev, lorocmixlev
	}
	if h.acmod&4 != 0 {
		r.Skip(6) // ltrtsurmixlev, lorosurmixlev
	}
	if h.lfe && r.Flag() {
		r.Skip(5) // lfemixlevcod
	}
	if h.strmtyp != 0 {
		return
	}
	if r.Flag() {
		r.Skip(6) // pgmscl
	}
	if h.acmod == 0 && r.Flag() {
		r.Skip(6) // pgmscl2
	}
	if r.Flag() {
		r.Skip(6) // extpgmscl
	}
	switch r.Bits(2) { // mixdef
	case 1:
		r.Skip(5) // premixcmpsel, drcsrc, premixcmpscl
	case 2:
		r.Skip(12)
	case 3:
		r.Skip(8 * (int(r.Bits(5)) + 2))
	}
	if h.acmod < 2 {
		if r.Flag() {
			r.Skip(14) // panmean, paninfo
		}
		if h.acmod == 0 && r.Flag() {
			r.Skip(14) // panmean2, paninfo2
		}
	}
	if r.Flag() { // frmmixcfginfoe
		if h.numblkscod == 0 {
			r.Skip(5)
		} else {
			for range blocks[h.numblkscod] {
				if r.Flag() {
					r.Skip(5)
				}
			}
		}
	}
}

// maxSubstreams bounds the syncframes walked in one access unit: an E-AC-3
// program has at most 8 independent substreams with 8 dependent ones each.
const maxSubstreams = 64

func parseEAC3(b []byte) (Frame, error) {
	h, err := readEAC3(b)
	if err != nil {
		return Frame{}, err
	}
	if h.strmtyp == 1 {
		return Frame{}, malformedf("E-AC-3 access unit starts with a dependent substream")
	}
	f := Frame{EAC3: true, fscod: h.fscod, bsid: h.bsid, bsmod: h.bsmod, acmod: h.acmod, lfe: h.lfe, Size: h.size}
	f.Samples = 256 * blocks[h.numblkscod]
	if h.fscod == 3 {
		f.SampleRate = sampleRates[h.fscod2] / 2
	} else {
		f.SampleRate = sampleRates[h.fscod]
	}
	f.Channels = acmodChannels[h.acmod]
	if h.lfe {
		f.Channels++
	}
	f.dataRate = uint16(min(h.size*8*f.SampleRate/f.Samples/1000, 1<<13-1))
	// Dependent substreams of independent substream 0 follow it.
	rest := b[h.size:]
	for i := 0; i < maxSubstreams && len(rest) >= 6; i++ {
		d, err := readEAC3(rest)
		if err != nil || d.strmtyp != 1 {
			break
		}
		f.numDepSub++
		// chanmap bits 5..13 (MSB first) are the locations chan_loc
		// carries (TS 102 366 table E.1.4 and F.6.2.2).
		f.chanLoc |= d.chanmap >> 2 & 0x1ff
		rest = rest[d.size:]
	}
	return f, nil
}

// Config is the payload of the configuration box of f's sample entry: dac3
// for AC-3 (TS 102 366 F.4), dec3 for E-AC-3 (F.6), appended to dst. Only
// independent substream 0 is described in dec3.
func (f *Frame) Config(dst []byte) []byte {
	var lfe byte
	if f.lfe {
		lfe = 1
	}
	if !f.EAC3 {
		// fscod(2) bsid(5) bsmod(3) acmod(3) lfeon(1) bit_rate_code(5) reserved(5)
		v := uint32(f.fscod)<<22 | uint32(f.bsid)<<17 | uint32(f.bsmod)<<14 | uint32(f.acmod)<<11 |
			uint32(lfe)<<10 | uint32(f.bitRateCode)<<5
		return append(dst, byte(v>>16), byte(v>>8), byte(v))
	}
	// data_rate(13) num_ind_sub(3): one independent substream (num_ind_sub 0)
	dst = append(dst, byte(f.dataRate>>5), byte(f.dataRate<<3))
	// fscod(2) bsid(5) reserved(1) asvc(1) bsmod(3) acmod(3) lfeon(1)
	// reserved(3) num_dep_sub(4), then chan_loc(9) or reserved(1)
	dst = append(dst, f.fscod<<6|f.bsid<<1, f.bsmod<<4|f.acmod<<1|lfe, f.numDepSub<<1)
	if f.numDepSub > 0 {
		dst[len(dst)-1] |= byte(f.chanLoc >> 8 & 1)
		dst = append(dst, byte(f.chanLoc))
	}
	return dst
}

// CodecString is the RFC 6381 codecs value: "ac-3" or "ec-3".
func (f *Frame) CodecString() string {
	if f.EAC3 {
		return "ec-3"
	}
	return "ac-3"
}
