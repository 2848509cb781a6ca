package httpserve

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// FuzzOBSRequest: any body is either refused by parseOBSRequest or answered
// with a configuration OBS's parser takes (testkit.ParseOBSConfig): at least
// one rendition and at most the ladder's, even sizes within the canvas, frame
// rates within the caps, a vod audio track exactly when asked.
func FuzzOBSRequest(f *testing.F) {
	for _, b := range testkit.OBSRequestBodies {
		f.Add([]byte(b))
	}
	for _, s := range []string{
		`{}`, `[]`, `null`, `{"preferences":{"canvases":[{"width":1,"height":1,"canvas_width":0,"canvas_height":4294967295,"framerate":{"numerator":4294967295,"denominator":1}}]}}`,
		`{"preferences":{"maximum_video_tracks":0,"maximum_aggregate_bitrate":18446744073709551615,"composition_gpu_index":7}}`,
		`{"capabilities":{"gpu":[{"vendor_id":4318}],"system":{"name":"Windows"}},"client":{"supported_codecs":["h265"]}}`,
	} {
		f.Add([]byte(s))
	}
	ladder, err := ParseOBSLadder([]string{"1080p 6000k", "720p 60fps 3000k hevc", "640x360 30fps 800k av1"})
	if err != nil {
		f.Fatal(err)
	}
	cfg := &OBSConfig{Renditions: ladder, KeyframeInterval: 2 * time.Second, AudioBitrate: 160, RTMPPort: 1935}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req obsRequest
		if parseOBSRequest(body, &req) != nil {
			return
		}
		resp := cfg.answer(&req, "h")
		out, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		c, err := testkit.ParseOBSConfig(out, req.Preferences.VodTrackAudio, max(1, len(req.Preferences.Canvases)))
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		if n := len(c.EncoderConfigurations); n < 1 || n > len(ladder) {
			t.Fatalf("%d renditions", n)
		}
		if !req.Preferences.VodTrackAudio && c.AudioConfigurations.Vod != nil {
			t.Fatal("vod audio not asked for")
		}
		_, ch, fps := obsCanvasOf(&req)
		for _, e := range c.EncoderConfigurations {
			if e.Width%2 != 0 || e.Height%2 != 0 || ch > 1 && e.Height > ch {
				t.Fatalf("%dx%d on a canvas %d high", e.Width, e.Height, ch)
			}
			if e.Framerate != nil && fps.Denominator != 0 && fps.Numerator != 0 &&
				uint64(*e.Framerate.Numerator)*uint64(fps.Denominator) > uint64(fps.Numerator)*uint64(*e.Framerate.Denominator) {
				t.Fatalf("frame rate %d/%d above the canvas's %d/%d", *e.Framerate.Numerator, *e.Framerate.Denominator, fps.Numerator, fps.Denominator)
			}
		}
	})
}

// FuzzOBSRendition: a ladder entry parses to a rendition within the bounds,
// and the parse of its own description gives it back.
func FuzzOBSRendition(f *testing.F) {
	for _, s := range append(DefaultOBSLadder, "1920x1080 60fps 6M hevc", "2.5M 480p av1", "1080p", "6000k", "1080p 6000k 6000k",
		"1e3p 5k", "99999999999999999999p 1k", "1080p -5k", "1080p 0.001M", "1080p 200.001M", "x 1k") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseOBSRendition(s)
		if err != nil {
			return
		}
		if r.Height < minOBSLines || r.Height > maxOBSLines || r.Height%2 != 0 || r.Width < 0 || r.Width%2 != 0 || r.Width > maxOBSWidth ||
			r.Bitrate < minOBSBitrateKbps || r.Bitrate > maxOBSBitrateKbps || r.FPS < 0 || r.FPS > maxOBSFPS ||
			r.Codec != "h264" && r.Codec != "hevc" && r.Codec != "av1" {
			t.Fatalf("%q: out of bounds: %+v", s, r)
		}
		desc := []string{r.Codec, strconv.Itoa(r.Bitrate) + "k", strconv.Itoa(r.Height) + "p"}
		if r.Width > 0 {
			desc[2] = strconv.Itoa(r.Width) + "x" + strconv.Itoa(r.Height)
		}
		if r.FPS > 0 {
			desc = append(desc, strconv.Itoa(r.FPS)+"fps")
		}
		again, err := ParseOBSRendition(strings.Join(desc, " "))
		if err != nil || again != r {
			t.Fatalf("%q: %+v; its description %q: %+v, %v", s, r, desc, again, err)
		}
	})
}
