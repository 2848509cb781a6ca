// Package mp4dump renders ISO BMFF box trees as text for tests and debugging.
package mp4dump

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
)

// Dump renders a box tree as indented text, one box per line with its size and the
// fields that matter for CMAF: brands, track_ID, timescales, sample entries,
// baseMediaDecodeTime and per-sample duration, size, flags and composition offset.
// It is for tests and debugging (golden files, comparing with other packagers). It
// accepts any bytes: malformed input ends the dump with an "error:" line.
func Dump(b []byte) string {
	var d dumper
	d.boxes(b, 0)
	return d.sb.String()
}

// maxDumpDepth bounds recursion on crafted input; real trees are 8 deep.
const maxDumpDepth = 16

type dumper struct {
	sb strings.Builder
}

func (d *dumper) line(depth int, format string, args ...any) {
	for range depth {
		d.sb.WriteString("  ")
	}
	fmt.Fprintf(&d.sb, format, args...)
	d.sb.WriteByte('\n')
}

// boxHeader splits the first box off b: its type, whole size and header length.
// Sizes 0 (to the end) and 1 (64-bit largesize) are understood.
func boxHeader(b []byte) (typ string, size, hdr int, err error) {
	if len(b) < 8 {
		return "", 0, 0, fmt.Errorf("%d bytes left, need a box header", len(b))
	}
	size, hdr = int(binary.BigEndian.Uint32(b)), 8
	typ = string(b[4:8])
	switch size {
	case 0:
		size = len(b)
	case 1:
		if len(b) < 16 {
			return typ, 0, 0, fmt.Errorf("%q: truncated largesize", typ)
		}
		large := binary.BigEndian.Uint64(b[8:])
		if large > uint64(len(b)) {
			return typ, 0, 0, fmt.Errorf("%q: largesize %d > %d bytes left", typ, large, len(b))
		}
		size, hdr = int(large), 16
	}
	if size < hdr || size > len(b) {
		return typ, 0, 0, fmt.Errorf("%q: size %d outside %d..%d", typ, size, hdr, len(b))
	}
	return typ, size, hdr, nil
}

func (d *dumper) boxes(b []byte, depth int) {
	if depth > maxDumpDepth {
		d.line(depth, "error: nested deeper than %d", maxDumpDepth)
		return
	}
	for len(b) > 0 {
		typ, size, hdr, err := boxHeader(b)
		if err != nil {
			d.line(depth, "error: %v", err)
			return
		}
		d.box(typ, size, b[hdr:size], depth)
		b = b[size:]
	}
}

// box prints one box; body is its payload after the header.
func (d *dumper) box(typ string, size int, body []byte, depth int) {
	r := reader{b: body}
	var fields string
	var lines []string // per-sample rows, one level deeper
	var children []byte
	switch typ {
	case "moov", "trak", "mdia", "minf", "dinf", "stbl", "mvex", "moof", "traf", "edts":
		children = body
	case "ftyp", "styp":
		major, minor := r.fourcc(), r.u32()
		var brands []string
		for len(r.b) >= 4 {
			brands = append(brands, r.fourcc())
		}
		fields = fmt.Sprintf("major=%s minor=%d compatible=%s", major, minor, strings.Join(brands, ","))
	case "mvhd":
		v, _ := r.fullBox()
		r.skip(8 << (v & 1)) // creation, modification
		ts := r.u32()
		dur := r.uvar(v)
		r.skip(4 + 2 + 10 + 36 + 24)
		fields = fmt.Sprintf("v%d timescale=%d duration=%d next_track_ID=%d", v, ts, dur, r.u32())
	case "tkhd":
		v, fl := r.fullBox()
		r.skip(8 << (v & 1))
		id := r.u32()
		r.skip(4)
		dur := r.uvar(v)
		r.skip(8 + 2 + 2)
		vol := r.u16()
		r.skip(2 + 36)
		w, h := r.u32(), r.u32()
		fields = fmt.Sprintf("v%d flags=0x%06x track_ID=%d duration=%d volume=0x%04x width=%d.%d height=%d.%d",
			v, fl, id, dur, vol, w>>16, w&0xffff, h>>16, h&0xffff)
	case "mdhd":
		v, _ := r.fullBox()
		r.skip(8 << (v & 1))
		ts := r.u32()
		dur := r.uvar(v)
		lang := r.u16()
		fields = fmt.Sprintf("v%d timescale=%d duration=%d language=%c%c%c", v, ts, dur,
			byte(lang>>10&0x1f)+0x60, byte(lang>>5&0x1f)+0x60, byte(lang&0x1f)+0x60)
	case "hdlr":
		r.fullBox()
		r.skip(4)
		h := r.fourcc()
		r.skip(12)
		fields = fmt.Sprintf("handler=%s name=%q", h, strings.TrimRight(string(r.rest()), "\x00"))
	case "vmhd", "smhd", "url ":
		v, fl := r.fullBox()
		fields = fmt.Sprintf("v%d flags=0x%06x", v, fl)
	case "stts", "stsc", "stco":
		r.fullBox()
		fields = fmt.Sprintf("entries=%d", r.u32())
	case "stsz":
		r.fullBox()
		fields = fmt.Sprintf("sample_size=%d sample_count=%d", r.u32(), r.u32())
	case "dref", "stsd":
		r.fullBox()
		fields = fmt.Sprintf("entries=%d", r.u32())
		children = r.rest()
	case "avc1", "hvc1", "av01", "vp09":
		r.skip(6)
		dri := r.u16()
		r.skip(16)
		w, h := r.u16(), r.u16()
		hres, vres := r.u32(), r.u32()
		r.skip(4)
		fc := r.u16()
		r.skip(32)
		depthField := r.u16()
		r.skip(2)
		fields = fmt.Sprintf("data_reference_index=%d width=%d height=%d hres=%d vres=%d frame_count=%d depth=0x%04x",
			dri, w, h, hres>>16, vres>>16, fc, depthField)
		children = r.rest()
	case "mp4a", "Opus", "fLaC", "ac-3", "ec-3":
		r.skip(6)
		dri := r.u16()
		r.skip(8)
		ch, ss := r.u16(), r.u16()
		r.skip(4)
		sr := r.u32()
		fields = fmt.Sprintf("data_reference_index=%d channels=%d samplesize=%d samplerate=%d", dri, ch, ss, sr>>16)
		children = r.rest()
	case "avcC", "hvcC", "av1C", "dOps", "dac3", "dec3":
		fields = "config=" + hex.EncodeToString(body)
	case "vpcC", "dfLa":
		v, fl := r.fullBox()
		fields = fmt.Sprintf("v%d flags=0x%06x config=%s", v, fl, hex.EncodeToString(r.rest()))
	case "colr":
		ct := r.fourcc()
		fields = "colour_type=" + ct
		if ct == "nclx" {
			p, t, m := r.u16(), r.u16(), r.u16()
			fields += fmt.Sprintf(" primaries=%d transfer=%d matrix=%d full_range=%d", p, t, m, r.u8()>>7)
		}
	case "clli":
		fields = fmt.Sprintf("max_content_light_level=%d max_pic_average_light_level=%d", r.u16(), r.u16())
	case "esds":
		r.fullBox()
		fields = dumpDescriptors(r.rest(), 0)
	case "trex":
		r.fullBox()
		fields = fmt.Sprintf("track_ID=%d default_sample_description_index=%d default_sample_duration=%d default_sample_size=%d default_sample_flags=0x%08x",
			r.u32(), r.u32(), r.u32(), r.u32(), r.u32())
	case "mfhd":
		r.fullBox()
		fields = fmt.Sprintf("sequence_number=%d", r.u32())
	case "tfhd":
		_, fl := r.fullBox()
		fields = fmt.Sprintf("flags=0x%06x track_ID=%d", fl, r.u32())
		for _, o := range [...]struct {
			bit  uint32
			name string
			wide bool
		}{{0x01, "base_data_offset", true}, {0x02, "sample_description_index", false},
			{0x08, "default_sample_duration", false}, {0x10, "default_sample_size", false},
			{0x20, "default_sample_flags", false}} {
			if fl&o.bit == 0 {
				continue
			}
			if o.wide {
				fields += fmt.Sprintf(" %s=%d", o.name, r.u64())
			} else if o.bit == 0x20 {
				fields += fmt.Sprintf(" %s=0x%08x", o.name, r.u32())
			} else {
				fields += fmt.Sprintf(" %s=%d", o.name, r.u32())
			}
		}
	case "tfdt":
		v, _ := r.fullBox()
		fields = fmt.Sprintf("v%d baseMediaDecodeTime=%d", v, r.uvar(v))
	case "trun":
		fields, lines = dumpTrun(&r)
	case "prft":
		v, fl := r.fullBox()
		fields = fmt.Sprintf("v%d flags=%d reference_track_ID=%d ntp_timestamp=0x%016x media_time=%d", v, fl, r.u32(), r.u64(), r.uvar(v))
	case "mdat":
		fields = fmt.Sprintf("payload=%d", len(body))
	}
	if r.short {
		fields += " error: truncated"
	}
	if fields != "" {
		d.line(depth, "%s size=%d %s", typ, size, fields)
	} else {
		d.line(depth, "%s size=%d", typ, size)
	}
	for _, l := range lines {
		d.line(depth+1, "%s", l)
	}
	if children != nil && !r.short {
		d.boxes(children, depth+1)
	}
}

// dumpTrun renders trun's fields and one row per sample.
func dumpTrun(r *reader) (fields string, rows []string) {
	v, fl := r.fullBox()
	n := r.u32()
	fields = fmt.Sprintf("v%d flags=0x%06x sample_count=%d", v, fl, n)
	if fl&0x01 != 0 {
		fields += fmt.Sprintf(" data_offset=%d", int32(r.u32()))
	}
	if fl&0x04 != 0 {
		fields += fmt.Sprintf(" first_sample_flags=0x%08x", r.u32())
	}
	per := 0
	for _, bit := range [...]uint32{0x100, 0x200, 0x400, 0x800} {
		if fl&bit != 0 {
			per += 4
		}
	}
	if per == 0 {
		return fields, nil
	}
	if uint64(n)*uint64(per) > uint64(len(r.b)) {
		return fields + fmt.Sprintf(" error: %d samples of %d bytes > %d bytes left", n, per, len(r.b)), nil
	}
	for i := range n {
		row := fmt.Sprintf("[%d]", i)
		if fl&0x100 != 0 {
			row += fmt.Sprintf(" duration=%d", r.u32())
		}
		if fl&0x200 != 0 {
			row += fmt.Sprintf(" size=%d", r.u32())
		}
		if fl&0x400 != 0 {
			row += fmt.Sprintf(" flags=0x%08x", r.u32())
		}
		if fl&0x800 != 0 {
			if v == 0 {
				row += fmt.Sprintf(" cto=%d", r.u32())
			} else {
				row += fmt.Sprintf(" cto=%d", int32(r.u32()))
			}
		}
		rows = append(rows, row)
	}
	return fields, rows
}

// dumpDescriptors renders the MPEG-4 descriptors inside esds on one line.
func dumpDescriptors(b []byte, depth int) string {
	var parts []string
	for len(b) > 0 {
		if depth > maxDumpDepth {
			return strings.Join(append(parts, "error: nested too deep"), " ")
		}
		tag := b[0]
		b = b[1:]
		n, ok := 0, false
		for i := 0; i < 4 && len(b) > 0; i++ {
			c := b[0]
			b = b[1:]
			n = n<<7 | int(c&0x7f)
			if c&0x80 == 0 {
				ok = true
				break
			}
		}
		if !ok || n > len(b) {
			return strings.Join(append(parts, fmt.Sprintf("error: descriptor 0x%02x: bad size", tag)), " ")
		}
		body := b[:n]
		b = b[n:]
		r := reader{b: body}
		switch tag {
		case tagESDescriptor:
			id, fl := r.u16(), r.u8()
			if fl&0x80 != 0 {
				r.skip(2)
			}
			if fl&0x40 != 0 {
				r.skip(int(r.u8()))
			}
			if fl&0x20 != 0 {
				r.skip(2)
			}
			parts = append(parts, fmt.Sprintf("ES(ES_ID=%d size=%d)", id, n))
			if !r.short {
				parts = append(parts, dumpDescriptors(r.rest(), depth+1))
			}
		case tagDecoderConfigDescr:
			oti, st := r.u8(), r.u8()
			buf := uint32(r.u8())<<16 | uint32(r.u16())
			maxBR, avgBR := r.u32(), r.u32()
			parts = append(parts, fmt.Sprintf("DecoderConfig(objectTypeIndication=0x%02x streamType=%d upStream=%d bufferSizeDB=%d maxBitrate=%d avgBitrate=%d)",
				oti, st>>2, st>>1&1, buf, maxBR, avgBR))
			if !r.short {
				parts = append(parts, dumpDescriptors(r.rest(), depth+1))
			}
		case tagDecoderSpecificInfo:
			parts = append(parts, "DecoderSpecificInfo("+hex.EncodeToString(body)+")")
		case tagSLConfigDescr:
			parts = append(parts, fmt.Sprintf("SLConfig(predefined=%d)", r.u8()))
		default:
			parts = append(parts, fmt.Sprintf("descriptor(tag=0x%02x size=%d)", tag, n))
		}
		if r.short {
			parts = append(parts, "error: truncated")
		}
	}
	return strings.Join(parts, " ")
}

// reader reads big-endian fields from a box body; reading past the end yields
// zeros and sets short instead of panicking.
type reader struct {
	b     []byte
	short bool
}

func (r *reader) take(n int) []byte {
	if n < 0 || n > len(r.b) {
		r.short = true
		r.b = nil
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *reader) skip(n int) { r.take(n) }

func (r *reader) u8() uint8 {
	if p := r.take(1); p != nil {
		return p[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if p := r.take(2); p != nil {
		return binary.BigEndian.Uint16(p)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if p := r.take(4); p != nil {
		return binary.BigEndian.Uint32(p)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if p := r.take(8); p != nil {
		return binary.BigEndian.Uint64(p)
	}
	return 0
}

// uvar reads a field that is 64 bits in version 1 boxes and 32 bits otherwise.
func (r *reader) uvar(version uint8) uint64 {
	if version == 1 {
		return r.u64()
	}
	return uint64(r.u32())
}

func (r *reader) fourcc() string { return string(r.take(4)) }

func (r *reader) fullBox() (version uint8, flags uint32) {
	vf := r.u32()
	return uint8(vf >> 24), vf & 0xffffff
}

func (r *reader) rest() []byte {
	p := r.b
	r.b = nil
	return p
}

// MPEG-4 Systems (ISO/IEC 14496-1) descriptor tags found in esds.
const (
	tagESDescriptor        = 0x03
	tagDecoderConfigDescr  = 0x04
	tagDecoderSpecificInfo = 0x05
	tagSLConfigDescr       = 0x06
)
