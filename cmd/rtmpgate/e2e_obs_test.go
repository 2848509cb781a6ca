package main

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// TestOBSClientConfigurationE2E asks the real binary for OBS's multitrack
// video configuration as an OBS that lists its encoders does (POST, JSON, Content-Length), parses
// the answer as strictly as OBS, and publishes where it says, with the key
// OBS makes of it (the user's key plus ?clientConfigId=): the stream plays
// under the user's key.
func TestOBSClientConfigurationE2E(t *testing.T) {
	testkit.NeedTools(t, "ffmpeg")
	g := startGateway(t)
	body := strings.Replace(testkit.OBSRequestBodies["obs-linux-nvidia-encoders"], `"authentication":"demo"`, `"authentication":"sk_e2e_unlogged"`, 1)
	res, err := http.Post("http://"+g.httpAddr+"/api/obs/client-configuration", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	answer, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("%d %v: %s", res.StatusCode, err, answer)
	}
	c, err := testkit.ParseOBSConfig(answer, false, 2)
	if err != nil {
		t.Fatalf("%v\n%s", err, answer)
	}
	tmpl := c.IngestEndpoints[0].URLTemplate
	if want := "rtmp://" + g.rtmpAddr + "/live/{stream_key}"; tmpl != want {
		t.Fatalf("url_template %q, want %q", tmpl, want)
	}
	if n := len(c.EncoderConfigurations); n != 2 || c.EncoderConfigurations[0].Type != "obs_nvenc_h264_tex" {
		t.Errorf("%d renditions (7500 kbit/s allows 720p and 360p): %s", n, answer)
	}

	// As MultitrackVideoOutput.cpp's create_service: the server is the
	// template up to /{stream_key}, the key gets the config id.
	server := strings.TrimSuffix(tmpl, "/{stream_key}")
	p := publishFFmpeg(t, clip(t, "av"), server+"/obs?clientConfigId="+*c.Meta.ConfigID, false)
	waitPlaylist(t, g.tsPlaylistURL("obs"), 15*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	if err := p.wait(t, 30*time.Second); err != nil {
		t.Errorf("ffmpeg: %v\n%s", err, p.output)
	}
	// The log line was written before the answer: it has been read by now.
	if !strings.Contains(g.logs.String(), `"message":"obs configuration served"`) || strings.Contains(g.logs.String(), "sk_e2e_unlogged") {
		t.Errorf("no log line for the configuration served, or the stream key logged")
	}
}
