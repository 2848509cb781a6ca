package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runLimit bounds every tool a test runs, so a hung encoder fails the test
// rather than the whole test binary's timeout.
const runLimit = 2 * time.Minute

// Run runs a tool and returns its stdout and stderr as text; a failure or a run past
// two minutes fails the test with the tool's stderr.
func Run(tb testing.TB, name string, args ...string) (stdout, stderr string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w after %v", ctx.Err(), runLimit)
		}
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, e.Bytes())
	}
	return o.String(), e.String()
}

// Probe runs ffprobe -v error -of json with args on path and decodes its JSON
// into v (a struct with the Streams, Packets or Frames fields the test reads).
func Probe(tb testing.TB, v any, path string, args ...string) {
	tb.Helper()
	ffprobe := NeedTool(tb, "ffprobe")
	out, _ := Run(tb, ffprobe, append(append([]string{"-v", "error", "-of", "json"}, args...), path)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		tb.Fatalf("ffprobe %s: %v", path, err)
	}
}

// MakeClips writes the test clips of testdata/make-clips.sh (av.flv, bframes.flv,
// ...) of the given length into dir with ffmpeg. It returns an error rather than
// failing a test so that a sync.Once can make them for a whole package.
func MakeClips(dir string, seconds int) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(root, "testdata", "make-clips.sh"), dir, strconv.Itoa(seconds)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("make-clips.sh: %v: %s", err, out)
	}
	return nil
}

// LadderClips makes (once, cached under the module's tmp/ladder, which git
// ignores) the three-rendition ladder of testdata/make-ladder.sh: r0.flv,
// r1.flv and r2.flv (1080p, 720p, 360p, each with the same audio) and
// ladder.flv (the three as one Enhanced RTMP multitrack publish), ~6 Mbit/s in
// all, 10 s. It returns the directory. The first call encodes 10 s of 1080p
// with libx264: run it under the heavy-test lock. RTMPGATE_LADDER_DIR names
// a directory of such clips made otherwise (make-ladder.sh with other rates).
func LadderClips(tb testing.TB) string {
	tb.Helper()
	if dir := os.Getenv("RTMPGATE_LADDER_DIR"); dir != "" {
		return dir
	}
	NeedTools(tb, "ffmpeg", "go")
	root, err := ModuleRoot()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(root, "tmp", "ladder")
	Run(tb, "bash", filepath.Join(root, "testdata", "make-ladder.sh"), dir)
	return dir
}
