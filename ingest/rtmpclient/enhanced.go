package rtmpclient

// Enhanced RTMP v2 packet types used by the tag builders.
const (
	ExSequenceStart = 0
	ExCodedFrames   = 1 // video: with a composition time for avc1, hvc1 and vvc1
	ExSequenceEnd   = 2
	ExCodedFramesX  = 3 // video only: no composition time
	ExMetadata      = 4 // video only: an AMF colorInfo object
)

// ExAudioBody builds a single-track Enhanced RTMP audio tag body (sound
// format 9): the packet type, the FourCC and data. It lets a test publish a
// codec from its elementary stream the way an Enhanced RTMP encoder would.
func ExAudioBody(packetType byte, fourCC string, data []byte) []byte {
	b := make([]byte, 0, 5+len(data))
	b = append(b, 0x90|packetType&0x0f)
	b = append(b, fourCC[:4]...)
	return append(b, data...)
}

// ExVideoBody builds a single-track Enhanced RTMP video tag body: the
// IsExHeader bit, frame type (1 key, 2 inter, 5 command), packet type, FourCC,
// then for CodedFrames of avc1, hvc1 and vvc1 the SI24 composition time, and
// data.
func ExVideoBody(frameType, packetType byte, fourCC string, cts int32, data []byte) []byte {
	b := make([]byte, 0, 8+len(data))
	b = append(b, 0x80|frameType&7<<4|packetType&0x0f)
	b = append(b, fourCC[:4]...)
	if packetType == ExCodedFrames && (fourCC == "avc1" || fourCC == "hvc1" || fourCC == "vvc1") {
		b = append(b, byte(cts>>16), byte(cts>>8), byte(cts))
	}
	return append(b, data...)
}

// ExAudioTags wraps an audio elementary stream as a publisher sends it: a
// sequence start holding config (none when config is nil, as for AC-3 and
// E-AC-3, whose frames describe themselves), then one CodedFrames tag per
// frame, stamped from the samples before it at rate Hz.
func ExAudioTags(fourCC string, config []byte, frames [][]byte, samplesPerFrame, rate int) []Tag {
	tags := make([]Tag, 0, len(frames)+1)
	if config != nil {
		tags = append(tags, Tag{Type: TagAudio, Config: true, Body: ExAudioBody(ExSequenceStart, fourCC, config)})
	}
	for i, f := range frames {
		ts := uint32(int64(i) * int64(samplesPerFrame) * 1000 / int64(rate))
		tags = append(tags, Tag{Type: TagAudio, Timestamp: ts, Body: ExAudioBody(ExCodedFrames, fourCC, f)})
	}
	return tags
}

// ExVideoTags wraps a video stream as a publisher sends it: metadata (a
// colorInfo AMF body, none when nil) and the sequence start holding config,
// then one CodedFrames tag per frame in decode order, frameMs apart, with its
// composition offset and frame type (key or inter).
func ExVideoTags(fourCC string, metadata, config []byte, frames [][]byte, keys []bool, cts []int32, frameMs int) []Tag {
	tags := make([]Tag, 0, len(frames)+2)
	if metadata != nil {
		tags = append(tags, Tag{Type: TagVideo, Config: true, Body: ExVideoBody(5, ExMetadata, fourCC, 0, metadata)})
	}
	tags = append(tags, Tag{Type: TagVideo, Config: true, Body: ExVideoBody(1, ExSequenceStart, fourCC, 0, config)})
	for i, f := range frames {
		frameType := byte(2)
		if keys[i] {
			frameType = 1
		}
		tags = append(tags, Tag{Type: TagVideo, Timestamp: uint32(i * frameMs), Body: ExVideoBody(frameType, ExCodedFrames, fourCC, cts[i], f)})
	}
	return tags
}
