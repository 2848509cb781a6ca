package rtmpclient

import (
	"fmt"
	"slices"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

// LadderTags merges single-track clips, the renditions of one ladder encoded
// from the same source on the same timeline, into the tags of one Enhanced
// RTMP v2 multitrack publish as OBS sends it: clip i's video becomes video
// track i, track 0 in plain ExHeader messages and every other track in
// OneTrack messages carrying its track id. At each instant the codec setup
// comes first, then the video of tracks 0, 1, 2... (what RepackMultitrack
// packs into one ManyTracks message), then the audio. The audio comes from the first clip only (the others' is dropped), so the
// publish holds the ladder's video and one audio track. RepackMultitrack
// turns the result into the ManyTracks forms.
func LadderTags(clips []*Clip) ([]Tag, error) {
	if len(clips) == 0 || len(clips) > flv.MaxTracks {
		return nil, fmt.Errorf("ladder: %d clips, want 1 to %d", len(clips), flv.MaxTracks)
	}
	type entry struct {
		tag  Tag
		clip int
	}
	var all []entry
	var buf [flv.MaxTracks]flv.TrackPacket
	for i, c := range clips {
		for _, tag := range c.Tags {
			if tag.Type != TagVideo {
				if i == 0 {
					all = append(all, entry{tag, 0})
				}
				continue
			}
			m, err := flv.SplitVideo(buf[:], tag.Body)
			if err != nil {
				return nil, fmt.Errorf("ladder: clip %d, video tag at %d ms: %w", i, tag.Timestamp, err)
			}
			if len(m.Packets) != 1 || m.Multitrack {
				return nil, fmt.Errorf("ladder: clip %d, video tag at %d ms: %d tracks, want a single-track clip", i, tag.Timestamp, len(m.Packets))
			}
			p := m.Packets[0]
			p.TrackID = uint8(i)
			var body []byte
			if i == 0 {
				pt, _, err := exPacketType(p.Type)
				if err != nil {
					return nil, fmt.Errorf("ladder: video tag at %d ms: %w", tag.Timestamp, err)
				}
				body = ExVideoBody(p.FrameType, pt, string(appendFourCC(nil, p.FourCC)), p.CTS, p.Data)
			} else if body, _, err = multitrackBody(OneTrack, []flv.TrackPacket{p}); err != nil {
				return nil, fmt.Errorf("ladder: clip %d, video tag at %d ms: %w", i, tag.Timestamp, err)
			}
			all = append(all, entry{Tag{Type: TagVideo, Timestamp: tag.Timestamp, Config: tag.Config, Body: body}, i})
		}
	}
	rank := func(e entry) [4]int {
		r := [4]int{int(e.tag.Timestamp), 1, 1, e.clip}
		if e.tag.Config {
			r[1] = 0
		}
		if e.tag.Type == TagVideo {
			r[2] = 0
		}
		return r
	}
	slices.SortStableFunc(all, func(a, b entry) int {
		ra, rb := rank(a), rank(b)
		return slices.Compare(ra[:], rb[:])
	})
	out := make([]Tag, len(all))
	for i, e := range all {
		out[i] = e.tag
	}
	return out, nil
}
