package rtmpclient

import (
	"fmt"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

// Enhanced RTMP v2 AvMultitrackType values, the forms RepackMultitrack writes.
const (
	OneTrack             = flv.MultitrackOneTrack
	ManyTracks           = flv.MultitrackManyTracks
	ManyTracksManyCodecs = flv.MultitrackManyTracksManyCodecs
)

const exMultitrack = 6 // VideoPacketType Multitrack

// RepackMultitrack rewrites the video tags of a clip into Enhanced RTMP
// multitrack messages of one AvMultitrackType, so one multitrack recording
// can be published in each form: the packets of the consecutive video tags
// of one timestamp (every track's, track 0 included) become OneTrack
// messages, one per track; ManyTracks messages, one per run of packets
// sharing packet type, frame type and FourCC; or ManyTracksManyCodecs
// messages, one per run sharing packet type and frame type. Audio and script
// tags are kept as they are. Packets the form cannot carry (command frames)
// are an error.
func RepackMultitrack(tags []Tag, form uint8) ([]Tag, error) {
	var out []Tag
	var buf [flv.MaxTracks]flv.TrackPacket
	for i := 0; i < len(tags); {
		ts := tags[i].Timestamp
		if tags[i].Type != TagVideo {
			out = append(out, tags[i])
			i++
			continue
		}
		var pkts []flv.TrackPacket
		for ; i < len(tags) && tags[i].Type == TagVideo && tags[i].Timestamp == ts; i++ {
			m, err := flv.SplitVideo(buf[:], tags[i].Body)
			if err != nil {
				return nil, fmt.Errorf("video tag at %d ms: %w", ts, err)
			}
			for _, p := range m.Packets {
				if p.Type == flv.PacketMetadata && p.FrameType == 5 {
					if p.TrackID == 0 {
						// A command frame type would make a multitrack
						// message a video command: sent as it came.
						out = append(out, Tag{Type: TagVideo, Timestamp: ts, Config: true, Body: ExVideoBody(5, ExMetadata, string(appendFourCC(nil, p.FourCC)), 0, p.Data)})
						continue
					}
					p.FrameType = 1
				}
				pkts = append(pkts, p)
			}
		}
		for k := 0; k < len(pkts); {
			n := 1
			for form != OneTrack && k+n < len(pkts) && sameMessage(&pkts[k], &pkts[k+n], form) {
				n++
			}
			body, cfg, err := multitrackBody(form, pkts[k:k+n])
			if err != nil {
				return nil, fmt.Errorf("video tag at %d ms: %w", ts, err)
			}
			out = append(out, Tag{Type: TagVideo, Timestamp: ts, Config: cfg, Body: body})
			k += n
		}
	}
	return out, nil
}

func sameMessage(a, b *flv.TrackPacket, form uint8) bool {
	return a.Type == b.Type && a.FrameType == b.FrameType && (form == ManyTracksManyCodecs || a.FourCC == b.FourCC)
}

// multitrackBody builds one multitrack video message of the packets, which
// share packet type and frame type (and FourCC unless ManyTracksManyCodecs).
func multitrackBody(form uint8, pkts []flv.TrackPacket) (body []byte, config bool, err error) {
	p0 := &pkts[0]
	pt, config, err := exPacketType(p0.Type)
	if err != nil {
		return nil, false, err
	}
	b := []byte{0x80 | p0.FrameType&7<<4 | exMultitrack, form<<4 | pt}
	if form != ManyTracksManyCodecs {
		b = appendFourCC(b, p0.FourCC)
	}
	for i := range pkts {
		p := &pkts[i]
		if form == ManyTracksManyCodecs {
			b = appendFourCC(b, p.FourCC)
		}
		b = append(b, p.TrackID)
		var cts []byte
		if pt == ExCodedFrames && (p.FourCC == flv.FourCCAVC || p.FourCC == flv.FourCCHEVC) {
			cts = []byte{byte(p.CTS >> 16), byte(p.CTS >> 8), byte(p.CTS)}
		}
		if form != OneTrack {
			n := len(cts) + len(p.Data)
			b = append(b, byte(n>>16), byte(n>>8), byte(n))
		}
		b = append(b, cts...)
		b = append(b, p.Data...)
	}
	return b, config, nil
}

// exPacketType is the Enhanced RTMP VideoPacketType of a packet, and whether
// it is codec setup.
func exPacketType(t flv.PacketType) (pt byte, config bool, err error) {
	switch t {
	case flv.PacketSequenceHeader:
		return ExSequenceStart, true, nil
	case flv.PacketFrame:
		return ExCodedFrames, false, nil
	case flv.PacketEndOfSequence:
		return ExSequenceEnd, false, nil
	case flv.PacketMetadata:
		return ExMetadata, true, nil
	}
	return 0, false, fmt.Errorf("%v packet: no Enhanced RTMP form", t)
}

func appendFourCC(b []byte, f flv.FourCC) []byte {
	return append(b, byte(f>>24), byte(f>>16), byte(f>>8), byte(f))
}
