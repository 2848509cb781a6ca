package ingest

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/internal/testkit"
	"github.com/rtmpgate/rtmpgate/remux"
)

var updateCapture = flag.Bool("update-capture", false,
	"publish a small lavfi clip with ffmpeg and rewrite testdata/publish.rtmp and the fuzz seeds made from it")

// runTool runs a tool with a time bound and returns its combined output.
func runTool(t *testing.T, timeout time.Duration, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

func probeInt(t *testing.T, ffprobe, clip, stream, entry string, extra ...string) int {
	t.Helper()
	args := append([]string{"-v", "error", "-select_streams", stream}, extra...)
	args = append(args, "-show_entries", entry, "-of", "default=nw=1:nk=1", clip)
	out, err := runTool(t, 60*time.Second, ffprobe, args...)
	if err != nil {
		t.Fatalf("ffprobe %s: %v\n%s", entry, err, out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		t.Fatalf("ffprobe %s: %q: %v", entry, out, err)
	}
	return n
}

func probeKeyframes(t *testing.T, ffprobe, clip string) int {
	t.Helper()
	out, err := runTool(t, 60*time.Second, ffprobe, "-v", "error", "-select_streams", "v",
		"-show_entries", "packet=flags", "-of", "csv=p=0", clip)
	if err != nil {
		t.Fatalf("ffprobe packets: %v\n%s", err, out)
	}
	keys := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "K") {
			keys++
		}
	}
	return keys
}

func makeClip(t *testing.T, ffmpeg, path, size string, seconds int, extra ...string) {
	t.Helper()
	args := []string{"-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=" + size + ":rate=30",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=44100",
		"-t", strconv.Itoa(seconds), "-c:v", "libx264", "-g", "60", "-bf", "2", "-c:a", "aac"}
	args = append(args, extra...)
	args = append(args, "-f", "flv", path)
	if out, err := runTool(t, 120*time.Second, ffmpeg, args...); err != nil {
		t.Fatalf("make clip: %v\n%s", err, out)
	}
}

func TestFFmpegPublish(t *testing.T) {
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	ffprobe := testkit.NeedTool(t, "ffprobe")
	clip := filepath.Join(t.TempDir(), "clip.flv")
	makeClip(t, ffmpeg, clip, "640x360", 4)
	wantVideo := probeInt(t, ffprobe, clip, "v", "stream=nb_read_frames", "-count_frames")
	wantAudio := probeInt(t, ffprobe, clip, "a", "stream=nb_read_packets", "-count_packets")
	wantKeys := probeKeyframes(t, ffprobe, clip)

	h := newRecHandler()
	h.refuse["busy"] = errors.New("stream key live/busy is already publishing")
	addr := startServer(t, &Server{Handler: h})

	out, err := runTool(t, 60*time.Second, ffmpeg, "-hide_banner", "-loglevel", "error",
		"-i", clip, "-c", "copy", "-f", "flv", "rtmp://"+addr+"/live/test?token=abc")
	if err != nil {
		t.Fatalf("ffmpeg publish: %v\n%s", err, out)
	}
	w := h.next(t)
	w.wait(t)
	w.mu.Lock()
	defer w.mu.Unlock()

	if w.closes != 1 || w.cause != nil {
		t.Errorf("Close called %d times with %v, want once with nil", w.closes, w.cause)
	}
	if w.req.App != "live" || w.req.Name != "test" || w.req.Query != "token=abc" {
		t.Errorf("request app %q name %q query %q", w.req.App, w.req.Name, w.req.Query)
	}
	var video, audio *remux.Track
	for _, tr := range w.tracks {
		switch tr.Codec {
		case remux.CodecH264:
			video = tr
		case remux.CodecAAC:
			audio = tr
		}
	}
	if video == nil || video.Width != 640 || video.Height != 360 || video.ID != remux.TrackVideo {
		t.Fatalf("video track %+v", video)
	}
	if audio == nil || audio.SampleRate != 44100 || audio.ID != remux.TrackAudio {
		t.Fatalf("audio track %+v", audio)
	}
	if len(w.metadata) != 1 || !w.metadata[0].HasVideo || !w.metadata[0].HasAudio ||
		w.metadata[0].Width != 640 || w.metadata[0].Height != 360 {
		t.Errorf("metadata %+v", w.metadata)
	}

	var nv, na, keys, withCTS int
	last := map[int]int64{remux.TrackVideo: -1 << 62, remux.TrackAudio: -1 << 62}
	for i, f := range w.frames {
		if f.DTS < last[f.Track] {
			t.Fatalf("frame %d track %d: DTS %d after %d", i, f.Track, f.DTS, last[f.Track])
		}
		last[f.Track] = f.DTS
		switch f.Track {
		case remux.TrackVideo:
			nv++
			if f.Key {
				keys++
			}
			if f.CTS > 0 {
				withCTS++
			}
		case remux.TrackAudio:
			na++
		}
	}
	if nv != wantVideo || na != wantAudio || keys != wantKeys {
		t.Errorf("got %d video (%d key) and %d audio frames, ffprobe says %d (%d key) and %d",
			nv, keys, na, wantVideo, wantKeys, wantAudio)
	}
	if withCTS == 0 {
		t.Error("no video frame has a composition offset: B-frames lost their CTS")
	}
	if d := last[remux.TrackVideo] - last[remux.TrackAudio]; d < -100 || d > 100 {
		t.Errorf("last video DTS %d, last audio DTS %d: tracks drifted", last[remux.TrackVideo], last[remux.TrackAudio])
	}

	t.Run("refused", func(t *testing.T) {
		out, err := runTool(t, 60*time.Second, ffmpeg, "-hide_banner", "-loglevel", "error",
			"-i", clip, "-c", "copy", "-f", "flv", "rtmp://"+addr+"/live/busy")
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() == 0 {
			t.Fatalf("ffmpeg publishing a refused key: %v, want a non-zero exit\n%s", err, out)
		}
	})
}

// recordingListener keeps every byte its connections read.
type recordingListener struct {
	net.Listener
	mu   sync.Mutex
	bufs []*bytes.Buffer
}

type recordingConn struct {
	net.Conn
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (l *recordingListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := &bytes.Buffer{}
	l.bufs = append(l.bufs, b)
	return &recordingConn{Conn: nc, mu: &l.mu, buf: b}, nil
}

func (c *recordingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.buf.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// TestMakeCapture rewrites testdata/publish.rtmp (what ffmpeg sends when it
// publishes a 2 s 320x180 lavfi clip) and the rtmp codec's fuzz seeds cut from
// it. It runs only with -update-capture.
func TestMakeCapture(t *testing.T) {
	if !*updateCapture {
		t.Skip("run with -update-capture to rewrite the capture")
	}
	ffmpeg := testkit.NeedTool(t, "ffmpeg")
	clip := filepath.Join(t.TempDir(), "clip.flv")
	makeClip(t, ffmpeg, clip, "320x180", 2, "-b:v", "300k", "-b:a", "64k")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	rl := &recordingListener{Listener: ln}
	h := newRecHandler()
	s := &Server{Handler: h}
	done := make(chan error, 1)
	go func() { done <- s.Serve(rl) }()
	out, err := runTool(t, 60*time.Second, ffmpeg, "-hide_banner", "-loglevel", "error",
		"-i", clip, "-c", "copy", "-f", "flv", "rtmp://"+ln.Addr().String()+"/live/capture")
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	h.next(t).wait(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, s.Shutdown(ctx))
	<-done

	rl.mu.Lock()
	capture := bytes.Clone(rl.bufs[0].Bytes())
	rl.mu.Unlock()
	must(t, os.WriteFile("testdata/publish.rtmp", capture, 0o644))

	cap, err := scanCapture(capture)
	must(t, err)
	seeds := map[string][][]byte{
		"FuzzHandshake":   {capture[:1+rtmp.HandshakeSize]},
		"FuzzChunkReader": {capture[captureHandshake:min(len(capture), captureHandshake+4096)], capture[cap.mediaStart:min(len(capture), cap.mediaStart+2048)]},
		"FuzzAMF0":        cap.amf,
	}
	for target, list := range seeds {
		dir := filepath.Join("rtmp", "testdata", "fuzz", target)
		must(t, os.MkdirAll(dir, 0o755))
		for i, b := range list {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
			must(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("ffmpeg_%d", i)), []byte(body), 0o644))
		}
	}
}
