package rtmpclient

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

// FLV tag types (FLV spec E.4.1).
const (
	TagAudio  = 8
	TagVideo  = 9
	TagScript = 18
)

// Bounds on a clip: it is held in memory once and shared by every publisher.
const (
	maxClipBytes = 512 << 20
	maxClipTags  = 4 << 20
)

// Tag is one FLV audio or video tag. Body aliases the clip's file bytes, which
// every publisher may share read-only: callers that change a tag copy it first.
type Tag struct {
	Type      uint8  // TagAudio or TagVideo
	Timestamp uint32 // milliseconds from the clip's first media tag
	Config    bool   // codec setup (avcC, AudioSpecificConfig, an Enhanced RTMP sequence start, metadata or multichannel configuration): sent once, not on every loop
	Body      []byte
}

// Clip is an FLV file read once into memory.
type Clip struct {
	Tags   []Tag
	Meta   []byte // the onMetaData script tag's body (AMF0), nil if none
	Period uint32 // milliseconds a loop adds to timestamps: clip duration plus one frame
	Video  int    // video tags
	Audio  int    // audio tags
	Bytes  int64  // audio and video payload bytes in one pass
	MaxTag int    // largest tag body, which sizes a publisher's write buffer
}

// ReadFLV reads an FLV file of at most 512 MiB into a Clip.
func ReadFLV(path string) (*Clip, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("clip: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxClipBytes+1))
	if err != nil {
		return nil, fmt.Errorf("clip %s: %w", path, err)
	}
	if len(data) > maxClipBytes {
		return nil, fmt.Errorf("clip %s: larger than %d bytes", path, maxClipBytes)
	}
	c, err := ParseFLV(data)
	if err != nil {
		return nil, fmt.Errorf("clip %s: %w", path, err)
	}
	return c, nil
}

var flvSignature = []byte("FLV")

// ParseFLV splits an FLV file into tags. The tags alias data. A clip must hold at
// least one audio or video tag; timestamps are rebased so the first media tag is 0.
func ParseFLV(data []byte) (*Clip, error) {
	if len(data) < 9+4 || !bytes.Equal(data[:3], flvSignature) {
		return nil, fmt.Errorf("flv: not an FLV file")
	}
	if data[3] != 1 {
		return nil, fmt.Errorf("flv: version %d, want 1", data[3])
	}
	hdr := binary.BigEndian.Uint32(data[5:9])
	if hdr < 9 || uint64(hdr)+4 > uint64(len(data)) {
		return nil, fmt.Errorf("flv: header size %d out of range (file %d bytes)", hdr, len(data))
	}
	c := &Clip{}
	pos := int(hdr) + 4 // PreviousTagSize0
	first := int64(-1)
	for pos < len(data) {
		if len(data)-pos < 11 {
			return nil, fmt.Errorf("flv: truncated tag header at offset %d", pos)
		}
		h := data[pos : pos+11]
		if h[0]&0x20 != 0 {
			return nil, fmt.Errorf("flv: encrypted tag at offset %d", pos)
		}
		typ := h[0] & 0x1f
		size := int(h[1])<<16 | int(h[2])<<8 | int(h[3])
		ts := uint32(h[7])<<24 | uint32(h[4])<<16 | uint32(h[5])<<8 | uint32(h[6])
		end := pos + 11 + size
		if end+4 > len(data) {
			return nil, fmt.Errorf("flv: tag at offset %d: %d body bytes past the end of the file", pos, end+4-len(data))
		}
		// Some writers leave PreviousTagSize at 0; any other value must match.
		if prev := binary.BigEndian.Uint32(data[end : end+4]); prev != 0 && prev != uint32(11+size) {
			return nil, fmt.Errorf("flv: tag at offset %d: previous tag size %d, want %d", pos, prev, 11+size)
		}
		body := data[pos+11 : end]
		pos = end + 4
		switch typ {
		case TagScript:
			if c.Meta == nil && isOnMetaData(body) {
				c.Meta = body
			}
			continue
		case TagAudio, TagVideo:
		default:
			continue
		}
		if len(body) == 0 || isEndOfSequence(typ, body) {
			continue // an end-of-sequence marker in mid-stream would end a looped stream's video
		}
		if len(c.Tags) >= maxClipTags {
			return nil, fmt.Errorf("flv: more than %d tags", maxClipTags)
		}
		if first < 0 {
			first = int64(ts)
		}
		rel := int64(ts) - first
		if rel < 0 {
			return nil, fmt.Errorf("flv: tag at offset %d: timestamp %d before the first tag's %d", pos, ts, first)
		}
		t := Tag{Type: typ, Timestamp: uint32(rel), Body: body, Config: isSequenceHeader(typ, body)}
		c.Tags = append(c.Tags, t)
		c.Bytes += int64(len(body))
		c.MaxTag = max(c.MaxTag, len(body))
		if typ == TagVideo {
			c.Video++
		} else {
			c.Audio++
		}
	}
	if len(c.Tags) == 0 {
		return nil, fmt.Errorf("flv: no audio or video tags")
	}
	c.Period = loopPeriod(c.Tags)
	return c, nil
}

// loopPeriod is the clip's duration plus one frame, per track: the latest of each
// track's last timestamp plus its frame spacing. A looped clip's first frames then
// land one frame after each track's last one (encoders shift video against audio
// by the AAC priming delay, so the tracks end at different times).
func loopPeriod(tags []Tag) uint32 {
	var first, last, n [2]int64 // index 0 video, 1 audio
	var end int64
	for _, t := range tags {
		end = max(end, int64(t.Timestamp)+1)
		if t.Config {
			continue
		}
		k := 1
		if t.Type == TagVideo {
			k = 0
		}
		if n[k] == 0 {
			first[k] = int64(t.Timestamp)
		}
		last[k] = int64(t.Timestamp)
		n[k]++
	}
	for k := range n {
		if n[k] >= 2 {
			frame := max(1, (last[k]-first[k]+(n[k]-1)/2)/(n[k]-1))
			end = max(end, last[k]+frame)
		}
	}
	return uint32(min(end, 1<<31))
}

// isSequenceHeader reports the codec setup that precedes the frames: an AVC or
// HEVC decoder configuration, an AAC AudioSpecificConfig, or an Enhanced RTMP
// sequence start, video metadata (colorInfo) or audio multichannel
// configuration, behind ModEx prefixes or in a multitrack message too.
func isSequenceHeader(typ uint8, body []byte) bool {
	return everyPacket(typ, body, func(t flv.PacketType) bool {
		switch t {
		case flv.PacketSequenceHeader, flv.PacketMPEG2TSSequenceStart, flv.PacketMetadata, flv.PacketMultichannelConfig:
			return true
		}
		return false
	})
}

// isEndOfSequence reports an end-of-sequence tag (legacy or Enhanced RTMP
// SequenceEnd), which FFmpeg writes last: it carries no frame.
func isEndOfSequence(typ uint8, body []byte) bool {
	return everyPacket(typ, body, func(t flv.PacketType) bool { return t == flv.PacketEndOfSequence })
}

// everyPacket splits a tag body as the gateway's ingest does (legacy FLV or
// Enhanced RTMP v2, ModEx and Multitrack included) and reports whether it holds
// packets and all of them pass is. A body the parser refuses is a frame to the
// clip: it is sent on as it is, for the server to judge.
func everyPacket(typ uint8, body []byte, is func(flv.PacketType) bool) bool {
	var buf [flv.MaxTracks]flv.TrackPacket
	var m flv.Message
	var err error
	switch typ {
	case TagVideo:
		m, err = flv.SplitVideo(buf[:0], body)
	case TagAudio:
		m, err = flv.SplitAudio(buf[:0], body)
	default:
		return false
	}
	if err != nil || len(m.Packets) == 0 {
		return false
	}
	for _, p := range m.Packets {
		if !is(p.Type) {
			return false
		}
	}
	return true
}

var onMetaData = []byte{0x02, 0x00, 0x0a, 'o', 'n', 'M', 'e', 't', 'a', 'D', 'a', 't', 'a'}

func isOnMetaData(body []byte) bool { return bytes.HasPrefix(body, onMetaData) }

// FLVFile writes tags as an FLV file (audio and video flags set, correct
// previous-tag sizes); meta, when not nil, goes first as the onMetaData
// script tag's body. Tag.Config is not written: ParseFLV derives it.
func FLVFile(meta []byte, tags []Tag) []byte {
	b := []byte{'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0}
	add := func(typ uint8, ts uint32, body []byte) {
		n := len(body)
		b = append(b, typ, byte(n>>16), byte(n>>8), byte(n), byte(ts>>16), byte(ts>>8), byte(ts), byte(ts>>24), 0, 0, 0)
		b = append(b, body...)
		b = binary.BigEndian.AppendUint32(b, uint32(11+n))
	}
	if meta != nil {
		add(TagScript, 0, meta)
	}
	for _, t := range tags {
		add(t.Type, t.Timestamp, t.Body)
	}
	return b
}
