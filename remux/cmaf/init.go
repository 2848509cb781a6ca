// Package cmaf writes CMAF (ISO/IEC 23000-19) tracks in the ISO base media file
// format (ISO/IEC 14496-12): an init segment (ftyp + moov) and fragments (styp +
// moof + mdat), one track per fragment, so the same bytes serve fMP4 HLS and DASH.
//
// Everything is append-style into caller-provided slices: nothing needs an
// io.WriteSeeker and no caller buffer is rewritten. Times are taken from
// remux.Frame milliseconds and converted to the track timescale on the absolute
// timeline, so fragments cut anywhere line up exactly with each other and with the
// segment boundaries the packager announces.
package cmaf

import (
	"errors"
	"fmt"

	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/codec/opus"
	"github.com/rtmpgate/rtmpgate/remux/codec/vp9"
)

// MaxConfigSize bounds Track.Config (avcC or AudioSpecificConfig). Real records are
// tens of bytes; the bound keeps every box size and descriptor length small.
const MaxConfigSize = 1 << 16

// ErrNoSamples is returned by Fragmenter.Flush when nothing was added.
var ErrNoSamples = errors.New("cmaf: no samples to flush")

// Brands. The init segment's major brand is iso6 (tfdt, default-base-is-moof and
// signed composition offsets in trun version 1 are iso6 features); cmfc declares
// the CMAF structural constraints; mp41 and avc1 keep older MP4 readers content.
// Media profile brands (cfhd, caac, ...) are left out: they constrain levels and
// bitrates that a gateway passing through a publisher's stream cannot promise.
//
// A fragment's styp carries msdh (a DASH media segment), cmfs (a CMAF segment)
// and cmff (a CMAF fragment). msix is left out because no sidx is written.
var (
	initMajorBrand     = "iso6"
	initBrands         = []string{"iso6", "cmfc", "mp41"}
	fragmentMajorBrand = "msdh"
	fragmentBrands     = []string{"msdh", "cmfs", "cmff"}
	movieTimescale     = uint32(1000)
	languageUnd        = uint16(('u'-0x60)<<10 | ('n'-0x60)<<5 | ('d' - 0x60)) // ISO 639-2 "und", packed
)

// AppendInit appends the CMAF header for one track, ftyp then moov, to dst and
// returns the extended slice. t is only read. Video tracks need Width and Height
// (1..65535) and Config holding the avcC record; audio tracks need Config holding
// the AudioSpecificConfig and use SampleRate and Channels for the sample entry.
func AppendInit(dst []byte, t *remux.Track) ([]byte, error) {
	if err := validateTrack(t); err != nil {
		return dst, err
	}
	brands := initBrands
	if b := codecBrand(t.Codec); b != "" {
		brands = append(brands[:len(brands):len(brands)], b)
	}
	dst = appendFtyp(dst, "ftyp", initMajorBrand, brands)

	dst, moov := openBox(dst, "moov")
	dst = appendMvhd(dst, t)
	dst = appendTrak(dst, t)
	dst, mvex := openBox(dst, "mvex")
	dst, trex := openFullBox(dst, "trex", 0, 0)
	dst = appendU32(dst, uint32(t.ID))
	dst = appendU32(dst, 1) // default_sample_description_index
	dst = appendU32(dst, 0) // default_sample_duration
	dst = appendU32(dst, 0) // default_sample_size
	dst = appendU32(dst, 0) // default_sample_flags
	dst = closeBox(dst, trex)
	dst = closeBox(dst, mvex)
	return closeBox(dst, moov), nil
}

// codecBrand is the compatible brand a codec's binding defines for files
// carrying it: avc1 (ISO/IEC 14496-15), av01 (AV1 ISOBMFF binding 2.1) and Opus
// (Opus in ISOBMFF 4.1). HEVC, VP9, FLAC and AC-3 bindings define none that
// a plain CMAF track must declare.
func codecBrand(c remux.Codec) string {
	switch c {
	case remux.CodecH264:
		return "avc1"
	case remux.CodecAV1:
		return "av01"
	case remux.CodecOpus:
		return "Opus"
	}
	return ""
}

// validateTrack checks what both the init segment and fragments rely on.
func validateTrack(t *remux.Track) error {
	if t == nil {
		return errors.New("cmaf: nil track")
	}
	if t.ID <= 0 || t.ID > 0xffff {
		return fmt.Errorf("cmaf: track ID %d out of range 1..65535", t.ID)
	}
	if t.Timescale == 0 {
		return fmt.Errorf("cmaf: track %d: timescale 0", t.ID)
	}
	if len(t.Config) == 0 || len(t.Config) > MaxConfigSize {
		return fmt.Errorf("cmaf: track %d: codec config length %d out of range 1..%d", t.ID, len(t.Config), MaxConfigSize)
	}
	switch t.Codec {
	case remux.CodecH264, remux.CodecHEVC, remux.CodecAV1, remux.CodecVP9:
		if t.Width <= 0 || t.Width > 0xffff || t.Height <= 0 || t.Height > 0xffff {
			return fmt.Errorf("cmaf: track %d: video size %dx%d out of range 1..65535", t.ID, t.Width, t.Height)
		}
	case remux.CodecAAC, remux.CodecOpus, remux.CodecFLAC, remux.CodecAC3, remux.CodecEAC3:
		if t.Channels < 0 || t.Channels > 0xffff {
			return fmt.Errorf("cmaf: track %d: %d channels out of range", t.ID, t.Channels)
		}
		if t.SampleRate < 0 {
			return fmt.Errorf("cmaf: track %d: sample rate %d", t.ID, t.SampleRate)
		}
	default:
		return fmt.Errorf("cmaf: track %d: unsupported codec %v", t.ID, t.Codec)
	}
	// The records written verbatim are checked once here, so that a broken one
	// is refused when the track is announced rather than by a player.
	switch t.Codec {
	case remux.CodecAV1:
		if len(t.Config) < 4 || t.Config[0] != 0x81 {
			return fmt.Errorf("cmaf: track %d: av1C must start with marker and version 1 (0x81)", t.ID)
		}
	case remux.CodecVP9:
		if _, err := vp9.ParseConfig(t.Config); err != nil {
			return fmt.Errorf("cmaf: track %d: %w", t.ID, err)
		}
	case remux.CodecOpus:
		if _, err := opus.ParseHead(t.Config); err != nil {
			return fmt.Errorf("cmaf: track %d: %w", t.ID, err)
		}
	}
	return nil
}

func appendFtyp(dst []byte, typ, major string, compatible []string) []byte {
	dst, box := openBox(dst, typ)
	dst = append(dst, major...)
	dst = appendU32(dst, 0) // minor_version
	for _, b := range compatible {
		dst = append(dst, b...)
	}
	return closeBox(dst, box)
}

func appendMvhd(dst []byte, t *remux.Track) []byte {
	dst, box := openFullBox(dst, "mvhd", 0, 0)
	dst = appendU32(dst, 0) // creation_time
	dst = appendU32(dst, 0) // modification_time
	dst = appendU32(dst, movieTimescale)
	dst = appendU32(dst, 0)          // duration: unknown, live
	dst = appendU32(dst, 0x00010000) // rate 1.0
	dst = appendU16(dst, 0x0100)     // volume 1.0
	dst = appendZeros(dst, 2+8)      // reserved
	dst = appendMatrix(dst)
	dst = appendZeros(dst, 6*4) // pre_defined
	dst = appendU32(dst, uint32(t.ID)+1)
	return closeBox(dst, box)
}

func appendTrak(dst []byte, t *remux.Track) []byte {
	video := t.Codec.Kind() == remux.KindVideo
	dst, trak := openBox(dst, "trak")

	const enabledInMovie = 0x000001 | 0x000002
	dst, tkhd := openFullBox(dst, "tkhd", 0, enabledInMovie)
	dst = appendU32(dst, 0) // creation_time
	dst = appendU32(dst, 0) // modification_time
	dst = appendU32(dst, uint32(t.ID))
	dst = appendU32(dst, 0) // reserved
	dst = appendU32(dst, 0) // duration
	dst = appendZeros(dst, 8)
	dst = appendU16(dst, 0) // layer
	dst = appendU16(dst, 0) // alternate_group
	if video {
		dst = appendU16(dst, 0)
	} else {
		dst = appendU16(dst, 0x0100)
	}
	dst = appendU16(dst, 0) // reserved
	dst = appendMatrix(dst)
	if video {
		dst = appendU32(dst, uint32(t.Width)<<16)
		dst = appendU32(dst, uint32(t.Height)<<16)
	} else {
		dst = appendU32(dst, 0)
		dst = appendU32(dst, 0)
	}
	dst = closeBox(dst, tkhd)

	dst, mdia := openBox(dst, "mdia")
	dst, mdhd := openFullBox(dst, "mdhd", 0, 0)
	dst = appendU32(dst, 0) // creation_time
	dst = appendU32(dst, 0) // modification_time
	dst = appendU32(dst, t.Timescale)
	dst = appendU32(dst, 0) // duration
	dst = appendU16(dst, languageUnd)
	dst = appendU16(dst, 0) // pre_defined
	dst = closeBox(dst, mdhd)

	dst, hdlr := openFullBox(dst, "hdlr", 0, 0)
	dst = appendU32(dst, 0) // pre_defined
	if video {
		dst = append(dst, "vide"...)
	} else {
		dst = append(dst, "soun"...)
	}
	dst = appendZeros(dst, 12)
	if video {
		dst = append(dst, "VideoHandler\x00"...)
	} else {
		dst = append(dst, "SoundHandler\x00"...)
	}
	dst = closeBox(dst, hdlr)

	dst, minf := openBox(dst, "minf")
	if video {
		var vmhd int
		dst, vmhd = openFullBox(dst, "vmhd", 0, 1) // flags 1 is mandated
		dst = appendZeros(dst, 2+3*2)              // graphicsmode, opcolor
		dst = closeBox(dst, vmhd)
	} else {
		var smhd int
		dst, smhd = openFullBox(dst, "smhd", 0, 0)
		dst = appendZeros(dst, 2+2) // balance, reserved
		dst = closeBox(dst, smhd)
	}
	dst, dinf := openBox(dst, "dinf")
	dst, dref := openFullBox(dst, "dref", 0, 0)
	dst = appendU32(dst, 1)
	dst, url := openFullBox(dst, "url ", 0, 1) // media data in the same file
	dst = closeBox(dst, url)
	dst = closeBox(dst, dref)
	dst = closeBox(dst, dinf)

	dst, stbl := openBox(dst, "stbl")
	dst, stsd := openFullBox(dst, "stsd", 0, 0)
	dst = appendU32(dst, 1)
	dst = appendSampleEntry(dst, t)
	dst = closeBox(dst, stsd)
	// Samples live in fragments; the moov tables stay empty.
	for _, typ := range [...]string{"stts", "stsc", "stco"} {
		var b int
		dst, b = openFullBox(dst, typ, 0, 0)
		dst = appendU32(dst, 0) // entry_count
		dst = closeBox(dst, b)
	}
	dst, stsz := openFullBox(dst, "stsz", 0, 0)
	dst = appendU32(dst, 0) // sample_size
	dst = appendU32(dst, 0) // sample_count
	dst = closeBox(dst, stsz)
	dst = closeBox(dst, stbl)

	dst = closeBox(dst, minf)
	dst = closeBox(dst, mdia)
	return closeBox(dst, trak)
}

// appendSampleEntryHeader writes the SampleEntry fields shared by all entries.
func appendSampleEntryHeader(dst []byte) []byte {
	dst = appendZeros(dst, 6) // reserved
	return appendU16(dst, 1)  // data_reference_index
}

// appendSampleEntry writes t's sample entry: a VisualSampleEntry or an
// AudioSampleEntry of the codec's type holding its configuration box.
func appendSampleEntry(dst []byte, t *remux.Track) []byte {
	switch t.Codec {
	case remux.CodecH264:
		return appendVisualEntry(dst, "avc1", "avcC", t, t.Config)
	case remux.CodecHEVC:
		// hvc1: the parameter sets are in the record (array_completeness 1),
		// the form HLS requires; the record is written as the publisher sent it.
		return appendVisualEntry(dst, "hvc1", "hvcC", t, t.Config)
	case remux.CodecAV1:
		return appendVisualEntry(dst, "av01", "av1C", t, t.Config)
	case remux.CodecVP9:
		return appendVisualEntry(dst, "vp09", "vpcC", t, vpcCPayload(t.Config))
	case remux.CodecOpus:
		// Opus decodes at 48 kHz whatever the input rate (Opus in ISOBMFF 4.3.1);
		// validateTrack has parsed the head already.
		//
		// No edit list trims PreSkip, though Opus in ISOBMFF 4.4 asks for one:
		// in a live track an edit shifts the whole timeline, not just its start,
		// and RTMP publishers (ffmpeg) stamp a packet with the time of its first
		// decoded sample, priming included, so an edit would play all audio
		// PreSkip samples (6.5 ms from libopus) ahead of the video beside it. A
		// player joining live does not start at the first packet anyway; PreSkip
		// stays in dOps for decoders that trim a stream's start. Nor are roll
		// groups (4.3.6.2) written: their distance is counted in packets, whose
		// duration the init segment, written before the first one, cannot know,
		// and the MSE players this serves ignore them.
		h, _ := opus.ParseHead(t.Config)
		dst, entry := openAudioEntry(dst, "Opus", int(h.Channels), opus.SampleRate)
		dst, box := openBox(dst, "dOps")
		dst = h.AppendDOps(dst)
		dst = closeBox(dst, box)
		return closeBox(dst, entry)
	case remux.CodecFLAC:
		// dfLa is a FullBox version 0 holding the metadata blocks (FLAC in
		// ISOBMFF 3.3.2); Track.Config holds them as the box does.
		dst, entry := openAudioEntry(dst, "fLaC", audioChannels(t), audioRate(t))
		dst, box := openFullBox(dst, "dfLa", 0, 0)
		dst = append(dst, t.Config...)
		dst = closeBox(dst, box)
		return closeBox(dst, entry)
	case remux.CodecAC3, remux.CodecEAC3:
		entryType, boxType := "ac-3", "dac3"
		if t.Codec == remux.CodecEAC3 {
			entryType, boxType = "ec-3", "dec3"
		}
		dst, entry := openAudioEntry(dst, entryType, audioChannels(t), audioRate(t))
		dst, box := openBox(dst, boxType)
		dst = append(dst, t.Config...)
		dst = closeBox(dst, box)
		return closeBox(dst, entry)
	}
	dst, entry := openAudioEntry(dst, "mp4a", audioChannels(t), audioRate(t))
	dst = appendEsds(dst, t)
	return closeBox(dst, entry)
}

// appendVisualEntry writes a VisualSampleEntry of type entry holding the
// configuration box cfgType with cfg, then the colour boxes when the track has
// a colour description.
func appendVisualEntry(dst []byte, entry, cfgType string, t *remux.Track, cfg []byte) []byte {
	dst, se := openBox(dst, entry)
	dst = appendSampleEntryHeader(dst)
	dst = appendZeros(dst, 2+2+12) // pre_defined, reserved, pre_defined
	dst = appendU16(dst, uint16(t.Width))
	dst = appendU16(dst, uint16(t.Height))
	dst = appendU32(dst, 0x00480000) // 72 dpi
	dst = appendU32(dst, 0x00480000)
	dst = appendU32(dst, 0) // reserved
	dst = appendU16(dst, 1) // frame_count
	dst = appendZeros(dst, 32)
	dst = appendU16(dst, 0x0018) // depth: colour, no alpha
	dst = appendU16(dst, 0xffff) // pre_defined = -1
	if t.Codec == remux.CodecVP9 {
		var box int
		dst, box = openFullBox(dst, cfgType, 1, 0) // vpcC is a FullBox, version 1
		dst = append(dst, cfg...)
		dst = closeBox(dst, box)
	} else {
		var box int
		dst, box = openBox(dst, cfgType)
		dst = append(dst, cfg...)
		dst = closeBox(dst, box)
	}
	dst = appendColour(dst, t.Color)
	return closeBox(dst, se)
}

// appendColour writes colr (nclx, ISO/IEC 14496-12 12.1.5) and, with content
// light levels, clli (ISO/IEC 23001-8 / 14496-12 12.1.6) for c. A description
// saying only "unspecified" (2) for all three code points tells a player
// nothing, so it is left out, as is a nil one.
func appendColour(dst []byte, c *remux.Color) []byte {
	if c == nil || c.Primaries == 2 && c.Transfer == 2 && c.Matrix == 2 && !c.FullRange {
		return dst
	}
	dst, colr := openBox(dst, "colr")
	dst = append(dst, "nclx"...)
	dst = appendU16(dst, uint16(c.Primaries))
	dst = appendU16(dst, uint16(c.Transfer))
	dst = appendU16(dst, uint16(c.Matrix))
	var full byte
	if c.FullRange {
		full = 0x80
	}
	dst = appendU8(dst, full) // full_range_flag, 7 reserved bits
	dst = closeBox(dst, colr)
	if c.MaxCLL != 0 || c.MaxFALL != 0 {
		var clli int
		dst, clli = openBox(dst, "clli")
		dst = appendU16(dst, c.MaxCLL)
		dst = appendU16(dst, c.MaxFALL)
		dst = closeBox(dst, clli)
	}
	return dst
}

// vpcCPayload is the VPCodecConfigurationRecord without the FullBox version
// and flags, which Enhanced RTMP sends in front of it and the box header
// writes itself. validateTrack has checked the record.
func vpcCPayload(rec []byte) []byte {
	if len(rec) >= 12 && rec[0] == 1 && rec[1]|rec[2]|rec[3] == 0 {
		return rec[4:]
	}
	return rec
}

func audioChannels(t *remux.Track) int {
	if t.Channels == 0 {
		return 2
	}
	return t.Channels
}

// audioRate is the sample entry's rate: samplerate is 16.16, so rates above
// 65535 Hz do not fit; decoders take the real rate from the codec's own
// configuration, so such rates are written as 0.
func audioRate(t *remux.Track) int {
	rate := t.SampleRate
	if rate == 0 {
		rate = int(t.Timescale)
	}
	if rate > 0xffff {
		rate = 0
	}
	return rate
}

// openAudioEntry opens an AudioSampleEntry (version 0) of type typ; the caller
// appends the codec box and closes it.
func openAudioEntry(dst []byte, typ string, channels, rate int) ([]byte, int) {
	dst, entry := openBox(dst, typ)
	dst = appendSampleEntryHeader(dst)
	dst = appendZeros(dst, 8) // reserved
	dst = appendU16(dst, uint16(channels))
	dst = appendU16(dst, 16) // samplesize
	dst = appendU16(dst, 0)  // pre_defined
	dst = appendU16(dst, 0)  // reserved
	dst = appendU32(dst, uint32(rate)<<16)
	return dst, entry
}

// MPEG-4 Systems (ISO/IEC 14496-1) descriptor tags used in esds.
const (
	tagESDescriptor           = 0x03
	tagDecoderConfigDescr     = 0x04
	tagDecoderSpecificInfo    = 0x05
	tagSLConfigDescr          = 0x06
	objectTypeAudioISO14496_3 = 0x40
	streamTypeAudio           = 0x05
)

func appendEsds(dst []byte, t *remux.Track) []byte {
	asc := len(t.Config)
	decSpecific := 1 + descriptorSizeLen(asc) + asc
	decConfig := 13 + decSpecific
	slConfig := 1 + descriptorSizeLen(1) + 1
	es := 3 + 1 + descriptorSizeLen(decConfig) + decConfig + slConfig

	dst, esds := openFullBox(dst, "esds", 0, 0)
	dst = append(dst, tagESDescriptor)
	dst = appendDescriptorSize(dst, es)
	dst = appendU16(dst, uint16(t.ID)) // ES_ID
	dst = appendU8(dst, 0)             // no dependency, URL or OCR stream

	dst = append(dst, tagDecoderConfigDescr)
	dst = appendDescriptorSize(dst, decConfig)
	dst = appendU8(dst, objectTypeAudioISO14496_3)
	dst = appendU8(dst, streamTypeAudio<<2|1) // upStream 0, reserved 1
	// bufferSizeDB, maxBitrate and avgBitrate: a gateway does not know them
	// ahead of time; 0 means unknown (variable) to every decoder we target.
	dst = append(dst, 0, 0, 0)
	dst = appendU32(dst, 0)
	dst = appendU32(dst, 0)
	dst = append(dst, tagDecoderSpecificInfo)
	dst = appendDescriptorSize(dst, asc)
	dst = append(dst, t.Config...)

	dst = append(dst, tagSLConfigDescr)
	dst = appendDescriptorSize(dst, 1)
	dst = appendU8(dst, 2) // predefined: MP4 files
	return closeBox(dst, esds)
}

// descriptorSizeLen is the length of the expandable size field (ISO/IEC 14496-1
// 8.3.3): 7 bits per byte, high bit set on all but the last.
func descriptorSizeLen(n int) int {
	l := 1
	for n >= 0x80 {
		n >>= 7
		l++
	}
	return l
}

func appendDescriptorSize(dst []byte, n int) []byte {
	for shift := 7 * (descriptorSizeLen(n) - 1); shift > 0; shift -= 7 {
		dst = append(dst, byte(n>>shift)&0x7f|0x80)
	}
	return append(dst, byte(n)&0x7f)
}
