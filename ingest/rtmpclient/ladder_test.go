package rtmpclient

import (
	"bytes"
	"testing"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
)

// TestLadderTags merges three single-track clips into one multitrack
// publish: every video packet keeps its bytes, composition time and frame
// type under the track id of its clip, track 0 in plain ExHeader messages and
// the others in OneTrack messages, in time order with the codec setup first,
// then tracks 0, 1, 2, at each instant; the audio is the first clip's alone;
// the merged tags read back as the same tags from an FLV file, and repack
// into one ManyTracks message per instant.
func TestLadderTags(t *testing.T) {
	rendition := func(nal byte, audio bool) *Clip {
		key := append(append([]byte(nil), avcKey[:len(avcKey)-1]...), nal)
		inter := []byte{0x27, 1, 0, 0, 0x21, 0, 0, 0, 2, 0x41, nal} // CTS 33 ms
		tags := []flvTag{{TagVideo, 0, avcSeq}, {TagVideo, 0, key}, {TagVideo, 33, inter}, {TagVideo, 66, inter}}
		if audio {
			tags = append(tags, flvTag{TagAudio, 0, aacSeq}, flvTag{TagAudio, 0, aacRaw}, flvTag{TagAudio, 21, aacRaw})
		}
		c, err := ParseFLV(buildFLV(append([]flvTag{{TagScript, 0, metaBody}}, tags...)...))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	clips := []*Clip{rendition(0x10, true), rendition(0x11, true), rendition(0x12, true)}
	tags, err := LadderTags(clips)
	if err != nil {
		t.Fatal(err)
	}
	var buf [flv.MaxTracks]flv.TrackPacket
	var audio int
	var last uint32
	var lastTrack int
	lastConfig := true
	perTrack := make([][]flv.TrackPacket, 3)
	for i, tag := range tags {
		if tag.Timestamp < last {
			t.Fatalf("tag %d at %d ms after one at %d ms", i, tag.Timestamp, last)
		}
		if tag.Timestamp > last || lastConfig && !tag.Config {
			lastTrack = -1
		}
		if tag.Config && !lastConfig && tag.Timestamp == last {
			t.Fatalf("tag %d: codec setup after a frame at %d ms", i, last)
		}
		last, lastConfig = tag.Timestamp, tag.Config
		if tag.Type == TagAudio {
			audio++
			continue
		}
		m, err := flv.SplitVideo(buf[:], tag.Body)
		if err != nil || len(m.Packets) != 1 {
			t.Fatalf("tag %d: %d packets, %v", i, len(m.Packets), err)
		}
		p := m.Packets[0]
		if tag.Body[0]&0x80 == 0 {
			t.Fatalf("tag %d: legacy video, want Enhanced RTMP", i)
		}
		if p.TrackID == 0 && m.Multitrack || p.TrackID != 0 && (!m.Multitrack || m.MultitrackType != OneTrack) {
			t.Fatalf("tag %d: track %d, multitrack %v type %d", i, p.TrackID, m.Multitrack, m.MultitrackType)
		}
		if int(p.TrackID) < lastTrack {
			t.Fatalf("tag %d: track %d after track %d at %d ms", i, p.TrackID, lastTrack, tag.Timestamp)
		}
		lastTrack = int(p.TrackID)
		if tag.Config != (p.Type == flv.PacketSequenceHeader) || p.FourCC != flv.FourCCAVC {
			t.Fatalf("tag %d: config %v, packet %v %v", i, tag.Config, p.Type, p.FourCC)
		}
		perTrack[p.TrackID] = append(perTrack[p.TrackID], p)
	}
	if audio != 3 {
		t.Errorf("%d audio tags, want the first clip's 3", audio)
	}
	for id, pkts := range perTrack {
		if len(pkts) != 4 {
			t.Fatalf("track %d: %d packets, want 4", id, len(pkts))
		}
		for k, p := range pkts[1:] {
			want := []byte{0, 0, 0, 2, 0x65, 0x10 + byte(id)}
			if k > 0 {
				want[4] = 0x41
			}
			if !bytes.Equal(p.Data, want) || p.Key != (k == 0) || p.CTS != [3]int32{0, 33, 33}[k] {
				t.Errorf("track %d frame %d: %x key %v cts %d", id, k, p.Data, p.Key, p.CTS)
			}
		}
	}

	back, err := ParseFLV(FLVFile(clips[0].Meta, tags))
	if err != nil {
		t.Fatal(err)
	}
	for i := range tags {
		if back.Tags[i].Config != tags[i].Config || !bytes.Equal(back.Tags[i].Body, tags[i].Body) {
			t.Fatalf("tag %d read back otherwise", i)
		}
	}
	many, err := RepackMultitrack(tags, ManyTracks)
	if err != nil {
		t.Fatal(err)
	}
	var video int
	for _, tag := range many {
		if tag.Type != TagVideo {
			continue
		}
		video++
		if m, err := flv.SplitVideo(buf[:], tag.Body); err != nil || len(m.Packets) != 3 {
			t.Fatalf("ManyTracks message at %d ms: %d packets, %v", tag.Timestamp, len(m.Packets), err)
		}
	}
	if video != 4 {
		t.Errorf("%d ManyTracks video messages, want 4", video)
	}

	if _, err := LadderTags([]*Clip{back}); err == nil {
		t.Error("a multitrack clip merged as a rendition")
	}
}
