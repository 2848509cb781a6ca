package cmaf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/codec/av1"
)

// Default and hard limits of one fragment. A 2 s segment holds about 120 video or
// 100 audio samples; the defaults leave room for long forced cuts while keeping a
// misbehaving publisher from growing the buffers without end.
const (
	DefaultMaxSamples = 1 << 14
	DefaultMaxBytes   = 64 << 20
	// HardMaxBytes keeps mdat and every box size well inside 32 bits.
	HardMaxBytes = 1 << 30
	// StypSize is the size of the styp box Flush writes and FlushChunk leaves
	// out: header, major brand, minor version and three compatible brands.
	StypSize = 8 + 8 + 4*3
)

// Sample flags (ISO/IEC 14496-12 8.8.3.1). Sync samples depend on no other sample;
// every other video sample is a non-sync sample depending on others. All AAC
// frames are sync samples.
const (
	flagsSync    = 2 << 24                        // sample_depends_on = 2
	flagsNonSync = 1<<24 | 1<<16                  // sample_depends_on = 1, sample_is_non_sync_sample
	tfhdFlags    = 0x020000                       // default-base-is-moof
	tfhdDefFlags = 0x000020                       // default-sample-flags-present
	trunFlags    = 0x000001 | 0x000100 | 0x000200 // data offset, sample duration, sample size
	trunSampleFl = 0x000400                       // sample-flags-present
	trunCTO      = 0x000800                       // sample-composition-time-offsets-present
)

// sample is one buffered table entry; its bytes live in Fragmenter.data.
type sample struct {
	dts   int64 // ms, kept for error messages and the end check
	ticks int64 // DTS in the track timescale
	cto   int32 // composition offset in the track timescale
	size  uint32
	flags uint32
}

// Fragmenter buffers the samples of one track and writes them as one CMAF
// fragment. Create one per track (and a new one when a new sequence header makes a
// new *remux.Track). The sample table and the data buffer are reused from one
// fragment to the next, so in steady state Add and Flush do not allocate.
// A Fragmenter is not safe for concurrent use.
type Fragmenter struct {
	// MaxSamples and MaxBytes bound one fragment: sample count and mdat payload
	// bytes. Zero means DefaultMaxSamples and DefaultMaxBytes; MaxBytes is capped
	// at HardMaxBytes. Add refuses a frame that would exceed either.
	MaxSamples int
	MaxBytes   int

	track   *remux.Track
	samples []sample
	data    []byte
	prft    uint64 // NTP time of the next fragment's first sample (SetProducerTime); 0: no prft box
}

// PrftSize is the size of the prft box a fragment carries after
// SetProducerTime: version 1, with a 64-bit media time.
const PrftSize = 8 + 4 + 4 + 8 + 8

// prftFlags is the prft flags value saying the wall-clock time is when the
// frame left the encoder (ISO/IEC 14496-12 8.16.5.3): the nearest of its
// definitions to the time a live origin received the frame from it.
const prftFlags = 1

// SetProducerTime has the next Flush or FlushChunk write a Producer Reference
// Time box (prft, ISO/IEC 14496-12 8.16.5) before its moof, mapping the
// presentation time of the fragment's first sample to wall, the time that
// sample left the encoder (or reached the caller). A zero wall writes none.
func (f *Fragmenter) SetProducerTime(wall time.Time) {
	f.prft = 0
	if !wall.IsZero() {
		f.prft = NTPTime(wall)
	}
}

// ntpEpochOffset is the seconds from the NTP epoch (1900) to the Unix epoch.
const ntpEpochOffset = 2208988800

// NTPTime is t in the 64-bit NTP timestamp format: seconds since 1900 in the
// upper 32 bits, the fraction of a second in the lower 32.
func NTPTime(t time.Time) uint64 {
	sec := uint64(t.Unix() + ntpEpochOffset)
	frac := uint64(t.Nanosecond()) << 32 / 1e9
	return sec<<32 | frac
}

// NewFragmenter returns a Fragmenter for t, which must be a valid track of a
// codec AppendInit writes (the same checks as AppendInit). t is kept and only read.
func NewFragmenter(t *remux.Track) (*Fragmenter, error) {
	if err := validateTrack(t); err != nil {
		return nil, err
	}
	return &Fragmenter{track: t}, nil
}

// Track is the track the Fragmenter writes.
func (f *Fragmenter) Track() *remux.Track { return f.track }

// Len is the number of buffered samples.
func (f *Fragmenter) Len() int { return len(f.samples) }

// Size is the number of buffered payload bytes (the mdat payload of the next
// fragment).
func (f *Fragmenter) Size() int { return len(f.data) }

// Reset drops the buffered samples and keeps the buffers for reuse.
func (f *Fragmenter) Reset() {
	f.samples = f.samples[:0]
	f.data = f.data[:0]
	f.prft = 0
}

func (f *Fragmenter) limits() (maxSamples, maxBytes int) {
	maxSamples, maxBytes = f.MaxSamples, f.MaxBytes
	if maxSamples <= 0 {
		maxSamples = DefaultMaxSamples
	}
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	return maxSamples, min(maxBytes, HardMaxBytes)
}

// Add buffers fr as the next sample: its table entry and a copy of its bytes
// (fr.Data is only read and not kept). Frames come in decode order: DTS must not
// go backwards and must not be negative. fr.Track must be nil or the
// Fragmenter's track. A refused frame leaves the buffered samples unchanged.
func (f *Fragmenter) Add(fr *remux.Frame) error {
	if f.track == nil {
		return errNoTrack
	}
	id := f.track.ID
	if fr == nil {
		return fmt.Errorf("cmaf: track %d: nil frame", id)
	}
	if fr.Track != nil && fr.Track != f.track {
		return fmt.Errorf("cmaf: track %d: frame of another track (ID %d)", id, fr.Track.ID)
	}
	maxSamples, maxBytes := f.limits()
	if len(f.samples) >= maxSamples {
		return fmt.Errorf("cmaf: track %d: fragment full: %d samples", id, len(f.samples))
	}
	data := fr.Data
	if f.track.Codec == remux.CodecAV1 {
		data = dropTemporalDelimiters(data)
	}
	if len(data) == 0 {
		return fmt.Errorf("cmaf: track %d: DTS %d: empty frame", id, fr.DTS)
	}
	if len(data) > maxBytes-len(f.data) {
		return fmt.Errorf("cmaf: track %d: DTS %d: fragment size %d + frame %d > limit %d", id, fr.DTS, len(f.data), len(data), maxBytes)
	}
	if fr.DTS < 0 {
		return fmt.Errorf("cmaf: track %d: DTS %d is negative", id, fr.DTS)
	}
	ticks, ok := toTimescale(fr.DTS, f.track.Timescale)
	if !ok {
		return fmt.Errorf("cmaf: track %d: DTS %d out of range", id, fr.DTS)
	}
	if n := len(f.samples); n > 0 {
		prev := &f.samples[n-1]
		if fr.DTS < prev.dts {
			return fmt.Errorf("cmaf: track %d: DTS %d before previous DTS %d", id, fr.DTS, prev.dts)
		}
		if ticks-prev.ticks > math.MaxUint32 {
			return fmt.Errorf("cmaf: track %d: DTS %d: gap of %d ms after %d too long for a sample duration", id, fr.DTS, fr.DTS-prev.dts, prev.dts)
		}
	}
	// PTS may overflow int64 only if DTS is near the limit; guard the sum.
	// Only H.264 and HEVC reorder pictures; a composition offset on another
	// codec's frame is noise from the publisher and would put a column of
	// offsets in trun that the codec cannot have.
	cts := fr.CTS
	if c := f.track.Codec; c != remux.CodecH264 && c != remux.CodecHEVC {
		cts = 0
	}
	pts := fr.DTS + int64(cts)
	if cts > 0 && pts < fr.DTS {
		return fmt.Errorf("cmaf: track %d: DTS %d CTS %d out of range", id, fr.DTS, cts)
	}
	ptsTicks, ok := toTimescale(pts, f.track.Timescale)
	if !ok {
		return fmt.Errorf("cmaf: track %d: DTS %d CTS %d out of range", id, fr.DTS, fr.CTS)
	}
	cto := ptsTicks - ticks
	if cto < math.MinInt32 || cto > math.MaxInt32 {
		return fmt.Errorf("cmaf: track %d: DTS %d: composition offset %d ms too large", id, fr.DTS, fr.CTS)
	}
	flags := uint32(flagsSync)
	if f.track.Codec.Kind() == remux.KindVideo && !fr.Key {
		flags = flagsNonSync
	}
	f.samples = append(f.samples, sample{
		dts:   fr.DTS,
		ticks: ticks,
		cto:   int32(cto),
		size:  uint32(len(data)),
		flags: flags,
	})
	f.data = append(f.data, data...)
	return nil
}

// dropTemporalDelimiters removes the temporal delimiter OBUs at the start of
// an AV1 temporal unit: the ISOBMFF binding (2.4) keeps them out of samples,
// where the sample boundary already marks the unit. Enhanced RTMP publishers
// should have dropped them too; some send them anyway. Anything it cannot
// read is left to the player, as every other codec's data is.
func dropTemporalDelimiters(tu []byte) []byte {
	for len(tu) > 0 && tu[0]>>3&0x0f == av1.OBUTemporalDelimiter {
		_, rest, err := av1.ReadOBU(tu)
		if err != nil {
			break
		}
		tu = rest
	}
	return tu
}

// Flush appends one fragment holding the buffered samples to dst: styp, moof
// (mfhd with sequence number seq, then one traf) and mdat. The last sample lasts
// until endDTS (milliseconds), so the durations of a fragment add up exactly to
// the converted segment end and the next fragment starts where this one ends.
// endDTS must not be before the last sample's DTS. On success the Fragmenter is
// reset for the next fragment; on error nothing is appended and the samples stay
// buffered, so the caller may retry with a corrected endDTS. seq is the caller's
// fragment sequence number (mfhd), 1 for the first and increasing.
//
// The tfdt baseMediaDecodeTime is the first sample's DTS on the absolute
// timeline. Sample flags common to all samples go to tfhd's default-sample-flags
// (e.g. audio), otherwise they are written per sample; composition offsets are
// written only when some sample has one.
func (f *Fragmenter) Flush(dst []byte, seq uint32, endDTS int64) ([]byte, error) {
	return f.flush(dst, seq, endDTS, true)
}

// FlushChunk is Flush without the styp: a CMAF chunk (moof + mdat) to follow
// an earlier one of the same segment, as LL-HLS parts after the first need. A
// segment made of chunks is a Flush (or a first chunk prefixed by the caller's
// own styp) followed by FlushChunk calls with increasing seq.
func (f *Fragmenter) FlushChunk(dst []byte, seq uint32, endDTS int64) ([]byte, error) {
	return f.flush(dst, seq, endDTS, false)
}

var errNoTrack = errors.New("cmaf: Fragmenter not made by NewFragmenter")

func (f *Fragmenter) flush(dst []byte, seq uint32, endDTS int64, styp bool) ([]byte, error) {
	if f.track == nil {
		return dst, errNoTrack
	}
	id := f.track.ID
	n := len(f.samples)
	if n == 0 {
		return dst, fmt.Errorf("cmaf: track %d: %w", id, ErrNoSamples)
	}
	last := &f.samples[n-1]
	if endDTS < last.dts {
		return dst, fmt.Errorf("cmaf: track %d: end DTS %d before last sample DTS %d", id, endDTS, last.dts)
	}
	endTicks, ok := toTimescale(endDTS, f.track.Timescale)
	if !ok || endTicks-last.ticks > math.MaxUint32 {
		return dst, fmt.Errorf("cmaf: track %d: end DTS %d too far after last sample DTS %d", id, endDTS, last.dts)
	}

	sameFlags, anyCTO := f.layout()

	if styp {
		dst = appendFtyp(dst, "styp", fragmentMajorBrand, fragmentBrands)
	}
	if f.prft != 0 {
		var prft int
		dst, prft = openFullBox(dst, "prft", 1, prftFlags)
		dst = appendU32(dst, uint32(id))
		dst = appendU64(dst, f.prft)
		dst = appendU64(dst, uint64(max(f.samples[0].ticks+int64(f.samples[0].cto), 0)))
		dst = closeBox(dst, prft)
		f.prft = 0
	}

	dst, moof := openBox(dst, "moof")
	dst, mfhd := openFullBox(dst, "mfhd", 0, 0)
	dst = appendU32(dst, seq)
	dst = closeBox(dst, mfhd)

	dst, traf := openBox(dst, "traf")
	tf := uint32(tfhdFlags)
	if sameFlags {
		tf |= tfhdDefFlags
	}
	dst, tfhd := openFullBox(dst, "tfhd", 0, tf)
	dst = appendU32(dst, uint32(id))
	if sameFlags {
		dst = appendU32(dst, f.samples[0].flags)
	}
	dst = closeBox(dst, tfhd)

	dst, tfdt := openFullBox(dst, "tfdt", 1, 0)
	dst = appendU64(dst, uint64(f.samples[0].ticks))
	dst = closeBox(dst, tfdt)

	rf := uint32(trunFlags)
	if !sameFlags {
		rf |= trunSampleFl
	}
	if anyCTO {
		rf |= trunCTO
	}
	dst, trun := openFullBox(dst, "trun", 1, rf)
	dst = appendU32(dst, uint32(n))
	dataOffset := len(dst)
	dst = appendU32(dst, 0) // data_offset, known once moof is closed
	for i := range f.samples {
		s := &f.samples[i]
		next := endTicks
		if i+1 < n {
			next = f.samples[i+1].ticks
		}
		dst = appendU32(dst, uint32(next-s.ticks))
		dst = appendU32(dst, s.size)
		if !sameFlags {
			dst = appendU32(dst, s.flags)
		}
		if anyCTO {
			dst = appendU32(dst, uint32(s.cto))
		}
	}
	dst = closeBox(dst, trun)
	dst = closeBox(dst, traf)
	dst = closeBox(dst, moof)
	// default-base-is-moof: the offset counts from the first byte of moof to the
	// first sample byte, just past the 8-byte mdat header.
	binary.BigEndian.PutUint32(dst[dataOffset:], uint32(len(dst)-moof+8))

	dst = appendU32(dst, uint32(8+len(f.data)))
	dst = append(dst, "mdat"...)
	dst = append(dst, f.data...)
	f.Reset()
	return dst, nil
}

// FragmentSize is the exact number of bytes the next Flush appends (0 with no
// samples), so a caller can size dst once and keep Flush allocation-free.
// FlushChunk appends StypSize bytes fewer.
func (f *Fragmenter) FragmentSize() int {
	n := len(f.samples)
	if n == 0 {
		return 0
	}
	sameFlags, anyCTO := f.layout()
	per := 8 // duration, size
	if !sameFlags {
		per += 4
	}
	if anyCTO {
		per += 4
	}
	size := StypSize
	if f.prft != 0 {
		size += PrftSize
	}
	size += 8 + 16 + 8 + 16 // moof, mfhd, traf, tfhd
	if sameFlags {
		size += 4
	}
	size += 20              // tfdt version 1
	size += 12 + 4 + 4      // trun header, sample_count, data_offset
	size += n * per         // trun entries
	size += 8 + len(f.data) // mdat
	return size
}

// layout reports whether all samples share their flags (written once in tfhd)
// and whether any has a composition offset (else trun omits the column).
func (f *Fragmenter) layout() (sameFlags, anyCTO bool) {
	sameFlags = true
	for i := range f.samples {
		s := &f.samples[i]
		sameFlags = sameFlags && s.flags == f.samples[0].flags
		anyCTO = anyCTO || s.cto != 0
	}
	return sameFlags, anyCTO
}
