package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// memoryCgroup is a memory cgroup of the test's own with a hard limit.
type memoryCgroup struct {
	dir   string
	procs string // write a pid here to move it in
}

// newMemoryCgroup makes a memory cgroup limited to limit bytes below the test
// process's own (cgroup v1's memory hierarchy, or v2 where this process sits at
// the root with the memory controller). Under CI=true not having one is a failure.
func newMemoryCgroup(t *testing.T, limit int64) memoryCgroup {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Helper()
		testkit.Missing(t, "a memory cgroup", fmt.Errorf(format, args...))
	}
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		fail("no /proc/self/cgroup: %v", err)
	}
	var base, limitFile string
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 {
			continue
		}
		if hasController(f[1], "memory") {
			base, limitFile = filepath.Join("/sys/fs/cgroup/memory", f[2]), "memory.limit_in_bytes"
			break
		}
		if f[0] == "0" && f[1] == "" && f[2] == "/" {
			if c, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil && hasController(strings.TrimSpace(string(c)), "memory") {
				base, limitFile = "/sys/fs/cgroup", "memory.max"
			}
		}
	}
	if base == "" {
		fail("no memory cgroup to nest in (%q)", raw)
	}
	dir := filepath.Join(base, fmt.Sprintf("rtmpgate-test-%d", os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		fail("cannot make a memory cgroup: %v", err)
	}
	t.Cleanup(func() {
		// The gateway has exited by now (its cleanup ran first); an empty cgroup can go.
		for i := 0; i < 50 && os.Remove(dir) != nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
	})
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		t.Fatalf("set the cgroup's limit: %v", err)
	}
	// No swap either, where the kernel counts it: over the limit means killed.
	_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), []byte(strconv.FormatInt(limit, 10)), 0o644)
	_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0o644)
	return memoryCgroup{dir: dir, procs: filepath.Join(dir, "cgroup.procs")}
}

// peak is the most memory the cgroup used, bytes (0 where the kernel keeps no peak).
func (c memoryCgroup) peak() int64 {
	for _, file := range []string{"memory.max_usage_in_bytes", "memory.peak"} {
		if raw, err := os.ReadFile(filepath.Join(c.dir, file)); err == nil {
			n, _ := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
			return n
		}
	}
	return 0
}

// ooms reads how often the kernel's OOM killer acted in the cgroup.
func (c memoryCgroup) ooms(t *testing.T) int {
	for _, file := range []string{"memory.oom_control", "memory.events"} {
		raw, err := os.ReadFile(filepath.Join(c.dir, file))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if n, ok := strings.CutPrefix(line, "oom_kill "); ok {
				v, _ := strconv.Atoi(strings.TrimSpace(n))
				return v
			}
		}
	}
	t.Fatalf("no oom_kill counter in %s", c.dir)
	return 0
}

// TestStoreBudgetFollowsTheMemoryLimit runs the gateway in a 512 MiB memory
// cgroup with the default store budget and publishes ~30 Mbit/s live streams one
// after another: the budget follows the limit, and once the store reaches it a
// new stream is refused and /readyz answers 503 while the process lives on, the
// streams already live keep their playlists, and the kernel killed nothing.
func TestStoreBudgetFollowsTheMemoryLimit(t *testing.T) {
	testkit.NeedTools(t, "ffmpeg")
	const limit = 512 << 20
	cg := newMemoryCgroup(t, limit)
	heavy := filepath.Join(t.TempDir(), "heavy.flv")
	// Noise coded losslessly: ~30 Mbit/s from a small picture, cheap to make and send.
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "nullsrc=s=320x240:r=30,geq=random(1)*255:128:128",
		"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "4",
		"-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-g", "30", "-pix_fmt", "yuv420p",
		"-c:a", "aac", "-b:a", "64k", "-f", "flv", heavy).CombinedOutput(); err != nil {
		t.Fatalf("make the clip: %v\n%s", err, out)
	}
	g := startGatewayIn(t, cg.procs, "-segment-duration", "1s", "-window-segments", "3", "-linger", "2s", "-max-conns-per-ip", "64")

	var budget struct {
		MaxStoreBytes int64  `json:"max_store_bytes"`
		Source        string `json:"source"`
	}
	for _, line := range strings.Split(g.logs.String(), "\n") {
		if strings.Contains(line, `"message":"store budget"`) {
			_ = json.Unmarshal([]byte(line), &budget)
		}
	}
	if want := defaultStoreBudget(limit); budget.MaxStoreBytes != want || budget.Source != "cgroup" {
		t.Fatalf("store budget %d from %q, want %d from the cgroup\n%s", budget.MaxStoreBytes, budget.Source, want, tail(g.logs.String(), 5))
	}

	storeBytes := func() int64 {
		_, body := httpGet(t, "http://"+g.httpAddr+"/metrics")
		for _, line := range strings.Split(string(body), "\n") {
			if v, ok := strings.CutPrefix(line, "rtmpgate_store_bytes "); ok {
				f, _ := strconv.ParseFloat(v, 64)
				return int64(f)
			}
		}
		t.Fatal("no rtmpgate_store_bytes in /metrics")
		return 0
	}
	unready := false // /readyz said 503 at some point
	ready := func() {
		res, _ := opsGet(t, "http://"+g.httpAddr+"/readyz", nil)
		unready = unready || res.StatusCode == 503
	}
	var live []string
	refusedAt := -1
	for i := 0; i < 30 && refusedAt < 0; i++ {
		key := fmt.Sprintf("heavy%d", i)
		pub := startProcess(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-re",
			"-stream_loop", "-1", "-i", heavy, "-c", "copy", "-f", "flv", g.ingestURL(key))
		// Give this stream the time its window and kept segments take to fill
		// (2 windows and a segment), or see it refused (ffmpeg exits).
		deadline := time.Now().Add(8 * time.Second)
		for time.Now().Before(deadline) && refusedAt < 0 {
			select {
			case <-pub.done:
				refusedAt = i
			case <-time.After(500 * time.Millisecond):
				ready()
			}
		}
		if refusedAt < 0 {
			live = append(live, key)
		}
	}
	if refusedAt < 0 {
		t.Fatalf("30 streams published without a refusal; store %d of %d", storeBytes(), budget.MaxStoreBytes)
	}
	t.Logf("stream %d refused with %d live; store %d of %d bytes", refusedAt, len(live), storeBytes(), budget.MaxStoreBytes)
	if len(live) < 2 {
		t.Fatalf("only %d streams before the first refusal", len(live))
	}
	if !strings.Contains(g.logs.String(), "segment store full") {
		t.Errorf("the refusal does not say the store is full:\n%s", tail(g.logs.String(), 10))
	}
	if !unready {
		t.Errorf("/readyz never answered 503 while the store filled to its budget")
	}
	for _, key := range live {
		pl := waitPlaylist(t, g.tsPlaylistURL(key), 5*time.Second, func(pl mediaPlaylist) bool { return len(pl.segments) > 0 })
		if pl.endList {
			t.Errorf("%s ended while the store was full", key)
		}
	}
	select {
	case <-g.exited:
		t.Fatalf("the gateway died: %v", g.exitErr)
	default:
	}
	rss := processRSS(t, g.cmd.Process.Pid)
	t.Logf("gateway RSS %d bytes; the cgroup's peak use (with kernel memory and cache) %d of %d", rss, cg.peak(), limit)
	if rss > limit*7/8 {
		t.Errorf("RSS %d is within an eighth of the %d limit", rss, limit)
	}
	if n := cg.ooms(t); n != 0 {
		t.Fatalf("the kernel's OOM killer acted %d times in the gateway's cgroup", n)
	}
}

// processRSS reads a process's resident set, bytes.
func processRSS(t *testing.T, pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS for %d", pid)
	return 0
}
