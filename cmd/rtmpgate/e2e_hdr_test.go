package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux/codec/hevc"
)

// A 10-bit HDR10 HEVC stream of Debian's x265 (BT.2020, PQ, content light
// levels 1000/400 in its VUI and SEI), published by the Go test publisher with
// an Enhanced RTMP colorInfo Metadata packet saying the same, beside AC-3:
// the API says HDR "PQ", 10 bits, Main 10, the init segment carries colr
// (nclx 9/16/9) and clli (1000, 400), and ffprobe reads that colour from it.
func TestHDRColorInfo(t *testing.T) {
	v := testkit.EncodeVideo(t, 40, "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25:duration=4",
		"-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
		"-x265-params", "log-level=error:keyint=50:min-keyint=50:scenecut=0:bframes=0:colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc:max-cll=1000,400")
	if v.Entry != "hvc1" || len(v.Frames) != 100 {
		t.Fatalf("encoded %q with %d frames, want hvc1 and 100", v.Entry, len(v.Frames))
	}
	keys := make([]bool, len(v.Frames))
	for i, f := range v.Frames {
		k, err := hevc.HasIRAP(f, 4)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = k
	}
	colorInfo := rtmp.AppendAMF0(rtmp.AppendAMF0(nil, "colorInfo"), rtmp.Object{
		{Key: "colorConfig", Value: rtmp.Object{
			{Key: "bitDepth", Value: 10.0}, {Key: "colorPrimaries", Value: 9.0},
			{Key: "transferCharacteristics", Value: 16.0}, {Key: "matrixCoefficients", Value: 9.0},
		}},
		{Key: "hdrCll", Value: rtmp.Object{{Key: "maxFall", Value: 400.0}, {Key: "maxCLL", Value: 1000.0}}},
	})
	a := testkit.EncodeAudio(t, "ac3", 4)
	tags := append(rtmpclient.ExVideoTags("hvc1", colorInfo, v.Config, v.Frames, keys, v.CTS, v.FrameMs),
		rtmpclient.ExAudioTags(a.FourCC, a.Config, a.Frames, a.SamplesPerFrame, a.Rate)...)
	sort.SliceStable(tags, func(i, j int) bool {
		if tags[i].Config != tags[j].Config {
			return tags[i].Config
		}
		return tags[i].Timestamp < tags[j].Timestamp
	})

	g := startGateway(t, "-window-segments", "20")
	publishOdd(t, g.ingestURL("hdr"), clipTags(&rtmpclient.Clip{Tags: tags}, 0, true), 0)
	waitPlaylist(t, g.streamURL("hdr", "v/index.m3u8"), 5*time.Second, ended)

	var api struct {
		Tracks []struct {
			Codec, Codecs, Profile, HDR string
			BitDepth                    int `json:"bit_depth"`
		} `json:"tracks"`
	}
	_, js := httpGet(t, "http://"+g.httpAddr+"/api/streams/live/hdr")
	if err := json.Unmarshal(js, &api); err != nil {
		t.Fatalf("API: %v: %s", err, js)
	}
	if len(api.Tracks) != 2 || api.Tracks[0].HDR != "PQ" || api.Tracks[0].BitDepth != 10 || api.Tracks[0].Profile != "Main 10" {
		t.Errorf("API tracks %s: want hdr PQ, bit_depth 10, profile Main 10", js)
	}

	_, pl := httpGet(t, g.streamURL("hdr", "v/index.m3u8"))
	m := regexp.MustCompile(`#EXT-X-MAP:URI="([^"]+)"`).FindSubmatch(pl)
	if m == nil {
		t.Fatalf("no EXT-X-MAP:\n%s", pl)
	}
	init := getRef(t, g.streamURL("hdr", "v/index.m3u8"), string(m[1]))
	colr := []byte{0, 0, 0, 19, 'c', 'o', 'l', 'r', 'n', 'c', 'l', 'x', 0, 9, 0, 16, 0, 9, 0}
	clli := []byte{0, 0, 0, 12, 'c', 'l', 'l', 'i', 0x03, 0xe8, 0x01, 0x90}
	if !bytes.Contains(init, colr) || !bytes.Contains(init, clli) {
		t.Errorf("init segment lacks colr nclx 9/16/9 or clli 1000/400:\n%x", init)
	}

	vFile, _, _ := fetchTrack(t, g.streamURL("hdr", "v/index.m3u8"), t.TempDir(), "v")
	var doc struct {
		Streams []struct {
			Profile        string `json:"profile"`
			PixFmt         string `json:"pix_fmt"`
			ColorPrimaries string `json:"color_primaries"`
			ColorTransfer  string `json:"color_transfer"`
			ColorSpace     string `json:"color_space"`
		} `json:"streams"`
	}
	testkit.Probe(t, &doc, vFile, "-show_entries", "stream=profile,pix_fmt,color_primaries,color_transfer,color_space")
	if len(doc.Streams) != 1 || doc.Streams[0].ColorPrimaries != "bt2020" || doc.Streams[0].ColorTransfer != "smpte2084" ||
		doc.Streams[0].ColorSpace != "bt2020nc" || doc.Streams[0].PixFmt != "yuv420p10le" {
		t.Errorf("ffprobe: %+v", doc.Streams)
	}
	if p := probe(t, vFile, true); p.videoFrames != 100 {
		t.Errorf("video decodes to %d frames, want 100", p.videoFrames)
	} else {
		t.Logf("HDR10 HEVC: CMAF video decodes to %d frames, %+v", p.videoFrames, doc.Streams[0])
	}
}
