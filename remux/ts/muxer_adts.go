package ts

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/remux"
)

// maxADTSPayload is what ADTS's 13-bit frame_length leaves for the raw frame.
const maxADTSPayload = 1<<13 - 1 - 7

var sampleRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// prepareAAC sets up m.es to yield the PES of one AAC frame behind an ADTS header
// and returns the PES size.
func (m *Muxer) prepareAAC(f *remux.Frame, pts uint64) (int, error) {
	if f.Track != m.adtsTrack {
		m.adtsTrack = f.Track
		m.adtsErr = buildADTS(&m.adts, f.Track)
	}
	if m.adtsErr != nil {
		return 0, m.adtsErr
	}
	if len(f.Data) > maxADTSPayload {
		return 0, fmt.Errorf("%d bytes > ADTS limit %d", len(f.Data), maxADTSPayload)
	}
	flen := 7 + len(f.Data)
	a := m.adts
	a[3] |= byte(flen >> 11 & 0x03)
	a[4] = byte(flen >> 3)
	a[5] = byte(flen&0x07)<<5 | 0x1F
	h := putPESHeader(m.hdr[:0], 0xC0, flen, pts, pts)
	h = append(h, a[:]...)
	m.es = esReader{pieces: [3][]byte{h, f.Data}}
	return len(h) + len(f.Data), nil
}

// buildADTS fills the constant part of t's ADTS header (frame_length left zero,
// buffer fullness 0x7FF for VBR, protection_absent so no CRC).
//
// The Track's AudioObjectType, SampleRate and Channels are used when they describe
// plain AAC (object types 1..4). ADTS cannot signal SBR/PS (HE-AAC), so for object
// types 5 and 29, or when the fields are unset, the core values come from the
// AudioSpecificConfig instead, and decoders find SBR/PS implicitly.
func buildADTS(a *[7]byte, t *remux.Track) error {
	aot, sfi, ch := t.AudioObjectType, rateIndex(t.SampleRate), t.Channels
	if aot < 1 || aot > 4 || sfi < 0 || ch < 1 {
		var err error
		if aot, sfi, ch, err = parseASC(t.Config); err != nil {
			return err
		}
	}
	if aot == 5 || aot == 29 {
		aot = 2
	}
	switch {
	case aot < 1 || aot > 4:
		return fmt.Errorf("audio object type %d not expressible in ADTS", aot)
	case sfi < 0 || sfi >= len(sampleRates):
		return fmt.Errorf("sample rate %d Hz not expressible in ADTS", t.SampleRate)
	case ch == 8:
		ch = 7 // channel_configuration 7 is 7.1, eight channels
	case ch < 1 || ch > 6:
		return fmt.Errorf("%d channels not expressible in ADTS", ch)
	}
	*a = [7]byte{
		0xFF,
		0xF1, // syncword end, MPEG-4, layer 0, protection_absent
		byte(aot-1)<<6 | byte(sfi)<<2 | byte(ch>>2),
		byte(ch&3) << 6,
		0,
		0x1F, // frame_length low bits go above; buffer fullness 0x7FF
		0xFC,
	}
	return nil
}

func rateIndex(hz int) int {
	for i, r := range sampleRates {
		if r == hz {
			return i
		}
	}
	return -1
}

// parseASC reads the core object type, sampling frequency index and channel
// configuration of an AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1), skipping the
// SBR/PS extension header of explicit HE-AAC signalling.
func parseASC(c []byte) (aot, sfi, ch int, err error) {
	var pos uint
	bits := func(n uint) int {
		v := 0
		for range n {
			if pos/8 >= uint(len(c)) {
				err = errShortASC
				return 0
			}
			v = v<<1 | int(c[pos/8]>>(7-pos%8)&1)
			pos++
		}
		return v
	}
	objType := func() int {
		if t := bits(5); t != 31 {
			return t
		}
		return 32 + bits(6)
	}
	rate := func() int {
		i := bits(4)
		if i == 15 {
			return rateIndex(bits(24))
		}
		return i
	}
	aot = objType()
	sfi = rate()
	ch = bits(4)
	if aot == 5 || aot == 29 {
		// The core sampling frequency came first; the extension one follows.
		rate()
		aot = objType()
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("audio config of %d bytes: %w", len(c), err)
	}
	return aot, sfi, ch, nil
}

var errShortASC = errors.New("AudioSpecificConfig too short")

// maxAC3PES bounds an AC-3 / E-AC-3 PES payload so its length fits the PES
// header's 16 bits: a syncframe is at most 3840 (AC-3) or 4096 (E-AC-3) bytes,
// and a frame here may hold a few.
const maxAC3PES = 0xFFFF - 3 - 5

// prepareAC3 sets up m.es to yield the PES of one AC-3 or E-AC-3 frame: the
// syncframes as they are, in private_stream_1 (ATSC A/52 Annex A), and returns
// the PES size.
func (m *Muxer) prepareAC3(f *remux.Frame, pts uint64) (int, error) {
	if len(f.Data) < 2 || f.Data[0] != 0x0B || f.Data[1] != 0x77 {
		return 0, errors.New("AC-3 frame does not start with a syncword")
	}
	if len(f.Data) > maxAC3PES {
		return 0, fmt.Errorf("%d bytes > PES limit %d", len(f.Data), maxAC3PES)
	}
	h := putPESHeader(m.hdr[:0], 0xBD, len(f.Data), pts, pts)
	m.es = esReader{pieces: [3][]byte{h, f.Data}}
	return len(h) + len(f.Data), nil
}
