package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// endedSegments waits for a stream's playlist to end and probes every segment.
func endedSegments(t *testing.T, g *gateway, key string) (mediaPlaylist, []media) {
	t.Helper()
	pl := waitPlaylist(t, g.tsPlaylistURL(key), 5*time.Second, ended)
	var segs []media
	for _, p := range fetchSegments(t, g.tsPlaylistURL(key), pl, t.TempDir()) {
		segs = append(segs, probe(t, p, true))
	}
	return pl, segs
}

// checkEndedStream checks every segment of an ended stream against its source.
func checkEndedStream(t *testing.T, g *gateway, key string, src media) mediaPlaylist {
	t.Helper()
	pl, segs := endedSegments(t, g, key)
	checkHLS(t, pl, segs, src)
	return pl
}

func TestFFmpegPublishToTSHLS(t *testing.T) {
	g := startGateway(t)
	for _, name := range []string{"av", "bframes", "audio", "video"} {
		t.Run(name, func(t *testing.T) {
			src := clip(t, name)
			pub := publishFFmpeg(t, src, g.ingestURL(name), false)
			if err := pub.wait(t, 30*time.Second); err != nil {
				t.Fatalf("ffmpeg publish: %v\n%s", err, pub.output)
			}
			left := time.Now()
			pl := waitPlaylist(t, g.tsPlaylistURL(name), time.Second, ended)
			t.Logf("ENDLIST within %s of unpublish", time.Since(left).Round(time.Millisecond))
			if pl.version < 3 || pl.targetDuration < 2 || pl.mediaSequence != 0 {
				t.Errorf("playlist header: version %d target %d media sequence %d", pl.version, pl.targetDuration, pl.mediaSequence)
			}
			checkEndedStream(t, g, name, probe(t, src, false))
			for i, s := range pl.segments {
				if s.programDate.IsZero() {
					t.Errorf("segment %d has no PROGRAM-DATE-TIME", i)
				}
				t.Logf("segment %d: %.3f s", i, s.duration)
			}
		})
	}
}

// Three independent RTMP client implementations publish the same clip.
func TestOtherPublishers(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "bframes")
	t.Run("gstreamer", func(t *testing.T) {
		testkit.NeedTools(t, "gst-launch-1.0")
		// GStreamer re-times what it sends (its DTS never goes below 0, so the B-frame
		// offset moves into PTS): the reference is the same pipeline into a file.
		pipeline := "filesrc location=%s ! flvdemux name=d d.video ! queue ! h264parse ! flvmux name=m streamable=true ! %s d.audio ! queue ! aacparse ! m."
		ref := filepath.Join(t.TempDir(), "gst.flv")
		gst := func(sink string) {
			p := startProcess(t, "gst-launch-1.0", append([]string{"-q", "-e"}, strings.Fields(fmt.Sprintf(pipeline, src, sink))...)...)
			if err := p.wait(t, 30*time.Second); err != nil {
				t.Fatalf("gst-launch: %v\n%s", err, p.output)
			}
		}
		gst("filesink location=" + ref)
		gst("rtmp2sink sync=false location=" + g.ingestURL("gst"))
		checkEndedStream(t, g, "gst", probe(t, ref, false))
	})
	t.Run("nginx-rtmp-push", func(t *testing.T) {
		testkit.NeedTools(t, "nginx")
		port := startNginxPush(t, g)
		pub := publishFFmpeg(t, src, fmt.Sprintf("rtmp://127.0.0.1:%d/live/nginx", port), true)
		if err := pub.wait(t, 30*time.Second); err != nil {
			t.Fatalf("ffmpeg to nginx: %v\n%s", err, pub.output)
		}
		// nginx-rtmp keeps no GOP: its relay carries what arrives after it connected,
		// so the gateway must hold a keyframe-aligned tail of the clip, all of it.
		pl, segs := endedSegments(t, g, "nginx")
		want := tailOf(t, probe(t, src, false), segs)
		checkHLS(t, pl, segs, want)
	})
}

// startNginxPush runs nginx-rtmp on a free port with an application that pushes every
// stream it receives into the gateway.
func startNginxPush(t *testing.T, g *gateway) int {
	t.Helper()
	port := freePort(t)
	runNginx(t, port, "      push rtmp://"+g.rtmpAddr+"/live;", "")
	return port
}

// A live reader that follows the playlist must end by itself once the publisher
// leaves, holding every frame.
func TestLiveReaderEndsWithPublisher(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	pub := publishFFmpeg(t, src, g.ingestURL("live"), true)
	waitPlaylist(t, g.tsPlaylistURL("live"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	out := filepath.Join(t.TempDir(), "read.ts")
	reader := startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-live_start_index", "0",
		"-i", g.tsPlaylistURL("live"), "-c", "copy", "-f", "mpegts", out)
	if err := pub.wait(t, 30*time.Second); err != nil {
		t.Fatalf("publish: %v\n%s", err, pub.output)
	}
	left := time.Now()
	if err := reader.wait(t, 15*time.Second); err != nil {
		t.Fatalf("reader: %v\n%s", err, reader.output)
	}
	t.Logf("live reader exited %s after the publisher", time.Since(left).Round(time.Millisecond))
	got, want := probe(t, out, true), probe(t, src, false)
	if got.videoFrames != len(want.video) || got.audioFrames != len(want.audio) {
		t.Errorf("live reader decoded video %d audio %d frames, source has %d and %d",
			got.videoFrames, got.audioFrames, len(want.video), len(want.audio))
	}
}

func TestRepublishContinuesWithDiscontinuity(t *testing.T) {
	g := startGateway(t, "-window-segments", "20")
	src := clip(t, "av")
	for round := 0; round < 2; round++ {
		pub := publishFFmpeg(t, src, g.ingestURL("again"), false)
		if err := pub.wait(t, 30*time.Second); err != nil {
			t.Fatalf("publish %d: %v\n%s", round, err, pub.output)
		}
		waitPlaylist(t, g.tsPlaylistURL("again"), 2*time.Second, ended)
	}
	pl := waitPlaylist(t, g.tsPlaylistURL("again"), time.Second, ended)
	firstRound := 0
	for i, s := range pl.segments {
		if s.discontinuity {
			if firstRound != 0 {
				t.Errorf("second discontinuity at segment %d", i)
			}
			firstRound = i
		}
	}
	if firstRound == 0 {
		t.Fatalf("no EXT-X-DISCONTINUITY before the republished segments:\n%s", pl.raw)
	}
	dir := t.TempDir()
	paths := fetchSegments(t, g.tsPlaylistURL("again"), pl, dir)
	var before, after []media
	for i, p := range paths {
		m := probe(t, p, true)
		if i < firstRound {
			before = append(before, m)
		} else {
			after = append(after, m)
		}
	}
	want := probe(t, src, false)
	checkHLS(t, mediaPlaylist{targetDuration: pl.targetDuration, segments: pl.segments[:firstRound]}, before, want)
	checkHLS(t, mediaPlaylist{targetDuration: pl.targetDuration, segments: pl.segments[firstRound:]}, after, want)
}

func TestBusyKeyIsRefused(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	first := publishFFmpeg(t, src, g.ingestURL("busy"), true)
	waitPlaylist(t, g.tsPlaylistURL("busy"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	second := publishFFmpeg(t, src, g.ingestURL("busy"), true)
	if err := second.wait(t, 10*time.Second); err == nil {
		t.Fatalf("second publisher on a live key was accepted\n%s", second.output)
	}
	if !strings.Contains(g.logs.String(), "BadName") && !strings.Contains(strings.ToLower(g.logs.String()), "busy") {
		t.Errorf("gateway log does not say why the second publisher was refused")
	}
	if err := first.wait(t, 30*time.Second); err != nil {
		t.Fatalf("first publisher disturbed: %v\n%s", err, first.output)
	}
	checkEndedStream(t, g, "busy", probe(t, src, false))
}

// An encoder that stops sending without closing (here: frozen with SIGSTOP) must not
// lock out its own reconnect: after the takeover time a newcomer gets the key.
func TestStalePublisherIsTakenOver(t *testing.T) {
	g := startGateway(t, "-window-segments", "20")
	src := clip(t, "av")
	stale := publishFFmpeg(t, src, g.ingestURL("stale"), true)
	waitPlaylist(t, g.tsPlaylistURL("stale"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	if err := stale.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stale.cmd.Process.Kill() })
	time.Sleep(3500 * time.Millisecond)
	fresh := publishFFmpeg(t, src, g.ingestURL("stale"), false)
	if err := fresh.wait(t, 30*time.Second); err != nil {
		t.Fatalf("publisher after a stale one was refused: %v\n%s", err, fresh.output)
	}
	pl := waitPlaylist(t, g.tsPlaylistURL("stale"), 2*time.Second, ended)
	first := -1
	for i, s := range pl.segments {
		if s.discontinuity {
			first = i
		}
	}
	if first < 1 {
		t.Fatalf("no discontinuity between the stale and the new session:\n%s", pl.raw)
	}
	dir := t.TempDir()
	var segs []media
	for _, p := range fetchSegments(t, g.tsPlaylistURL("stale"), pl, dir)[first:] {
		segs = append(segs, probe(t, p, true))
	}
	checkHLS(t, mediaPlaylist{targetDuration: pl.targetDuration, segments: pl.segments[first:]}, segs, probe(t, src, false))
}

func TestTwentyConcurrentPublishers(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	want := probe(t, src, false)
	const n = 20
	pubs := make([]*publisher, n)
	for i := range pubs {
		pubs[i] = publishFFmpeg(t, src, g.ingestURL(fmt.Sprintf("many%02d", i)), true)
	}
	var wg sync.WaitGroup
	for i, p := range pubs {
		if err := p.wait(t, 40*time.Second); err != nil {
			t.Fatalf("publisher %d: %v\n%s", i, err, p.output)
		}
	}
	errs := make(chan string, n)
	for i := range pubs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			key := fmt.Sprintf("many%02d", i)
			pl := waitPlaylist(t, g.tsPlaylistURL(key), 5*time.Second, ended)
			var video, audio int
			for _, p := range fetchSegments(t, g.tsPlaylistURL(key), pl, t.TempDir()) {
				m := probe(t, p, false)
				if len(m.video) == 0 || !m.video[0].key {
					errs <- fmt.Sprintf("%s: a segment does not start with a keyframe", key)
				}
				video += len(m.video)
				audio += len(m.audio)
			}
			if video != len(want.video) || audio != len(want.audio) {
				errs <- fmt.Sprintf("%s: video %d audio %d packets, source %d and %d", key, video, audio, len(want.video), len(want.audio))
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

func TestBadListenAddressExits(t *testing.T) {
	for _, args := range [][]string{{"-rtmp", "nonsense"}, {"-http", "127.0.0.1:99999"}} {
		out, err := exec.Command(binPath, args...).CombinedOutput()
		exit, ok := err.(*exec.ExitError)
		if !ok || exit.ExitCode() == 0 {
			t.Errorf("%v: want a non-zero exit, got %v", args, err)
		}
		if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "rtmpgate: ") {
			t.Errorf("%v: want one error line, got %q", args, out)
		}
	}
}

func TestEnvironmentSetsAddresses(t *testing.T) {
	port := freePort(t)
	cmd := exec.Command(binPath, "-http", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), fmt.Sprintf("RTMPGATE_RTMP=127.0.0.1:%d", port))
	out := &lockedBuffer{}
	cmd.Stderr = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), fmt.Sprintf(`"rtmp":"127.0.0.1:%d"`, port)) {
		if time.Now().After(deadline) {
			t.Fatalf("RTMPGATE_RTMP not used:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// SIGTERM during a publish: the partial segment is published before the process
// exits 0.
func TestSIGTERMFlushesPartialSegment(t *testing.T) {
	g := startGateway(t)
	src := clip(t, "av")
	publishFFmpeg(t, src, g.ingestURL("term"), true)
	waitPlaylist(t, g.tsPlaylistURL("term"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) == 1 })
	time.Sleep(500 * time.Millisecond)
	g.stop(t)
	var ended map[string]any
	for _, line := range strings.Split(g.logs.String(), "\n") {
		var ev map[string]any
		if json.Unmarshal([]byte(line), &ev) == nil && ev["message"] == "session ended" && ev["stream"] == "term" {
			ended = ev
		}
	}
	if ended == nil {
		t.Fatalf("no session-ended line for the stream:\n%s", tail(g.logs.String(), 20))
	}
	if segs, _ := ended["segments"].(float64); segs != 2 {
		t.Errorf("session ended with %v segments, want the complete one and the flushed partial one", ended["segments"])
	}
}

// An ended stream stays served for the linger time, then is gone.
func TestEndedStreamIsEvictedAfterLinger(t *testing.T) {
	g := startGateway(t, "-linger", "2s")
	src := clip(t, "audio")
	pub := publishFFmpeg(t, src, g.ingestURL("linger"), false)
	if err := pub.wait(t, 30*time.Second); err != nil {
		t.Fatalf("publish: %v\n%s", err, pub.output)
	}
	left := time.Now()
	pl := waitPlaylist(t, g.tsPlaylistURL("linger"), time.Second, ended)
	base := strings.TrimSuffix(g.tsPlaylistURL("linger"), "index.m3u8")
	for time.Since(left) < 1500*time.Millisecond {
		if code, _ := httpGet(t, g.tsPlaylistURL("linger")); code != 200 {
			t.Fatalf("playlist gone %s after unpublish, linger is 2 s", time.Since(left))
		}
		time.Sleep(100 * time.Millisecond)
	}
	deadline := left.Add(4 * time.Second)
	for {
		code, _ := httpGet(t, g.tsPlaylistURL("linger"))
		segCode, _ := httpGet(t, base+pl.segments[0].uri)
		if code == 404 && segCode == 404 {
			t.Logf("evicted %s after unpublish", time.Since(left).Round(100*time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still served %s after unpublish (playlist %d, segment %d)", time.Since(left), code, segCode)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// DELETE /api/streams/{app}/{stream} with the operator's token ends the publish:
// the encoder's connection closes and the playlist ends.
func TestAPIKickEndsPublish(t *testing.T) {
	const token = "0123456789abcdef0123"
	g := startGateway(t, "-api-token", token)
	src := clip(t, "av")
	pub := publishFFmpeg(t, src, g.ingestURL("kick"), true)
	waitPlaylist(t, g.tsPlaylistURL("kick"), 6*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) >= 1 })
	req, _ := http.NewRequest(http.MethodDelete, "http://"+g.httpAddr+"/api/streams/live/kick", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: status %d", res.StatusCode)
	}
	kicked := time.Now()
	if err := pub.wait(t, 5*time.Second); err == nil {
		t.Error("the kicked encoder exited 0")
	}
	waitPlaylist(t, g.tsPlaylistURL("kick"), time.Second, ended)
	t.Logf("publisher gone and ENDLIST %s after the DELETE", time.Since(kicked).Round(time.Millisecond))
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusConflict {
		t.Errorf("DELETE of an ended stream: status %d, want 409", res.StatusCode)
	}
}
