// Command rtmpload is a load generator for rtmpgate: a swarm of cheap RTMP
// publishers pushing one FLV clip in real time, and optionally a swarm of HLS
// viewers polling the playlists and fetching every segment.
//
//	rtmpload -url rtmp://127.0.0.1:1935/live -n 200 -prefix load -clip clip.flv \
//	    -duration 60s -loop -ramp 5s -viewers 200 -http http://127.0.0.1:8080 -json
//
// It exits non-zero if any publisher failed or was disconnected early, or any
// viewer saw an error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"
)

// config is the command line.
type config struct {
	url      string
	n        int
	prefix   string
	clipPath string
	duration time.Duration
	loop     bool
	ramp     time.Duration
	batch    time.Duration
	viewers  int
	httpBase string
	json     bool
	progress time.Duration
	endWait  time.Duration // not a flag: endWithin unless a test shortens it
}

// Bounds on the command line.
const (
	maxPublishers = 10000
	maxViewers    = 10000
	maxBatch      = time.Second // beyond it a stream arrives in bursts no encoder makes
)

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("rtmpload", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.url, "url", "rtmp://127.0.0.1:1935/live", "RTMP URL up to the app: rtmp://HOST[:PORT]/APP")
	fs.IntVar(&c.n, "n", 1, "publishers")
	fs.StringVar(&c.prefix, "prefix", "load", "stream names are PREFIX0000, PREFIX0001, ...")
	fs.StringVar(&c.clipPath, "clip", "", "FLV clip to publish (read once, shared by all publishers)")
	fs.DurationVar(&c.duration, "duration", 60*time.Second, "how long each publisher publishes")
	fs.BoolVar(&c.loop, "loop", false, "repeat the clip until the duration ends, timestamps running on")
	fs.DurationVar(&c.ramp, "ramp", 0, "spread the publishers' starts over this time")
	fs.DurationVar(&c.batch, "batch", time.Millisecond, "a publisher's sending step: tags due within one step leave in one write at its end (1ms: a write per frame, as encoders send; larger: fewer writes on both ends, burstier)")
	fs.IntVar(&c.viewers, "viewers", 0, "HLS viewers, round robin over the streams")
	fs.StringVar(&c.httpBase, "http", "", "gateway HTTP base URL for viewers, e.g. http://127.0.0.1:8080")
	fs.BoolVar(&c.json, "json", false, "print the summary as JSON on stdout")
	fs.DurationVar(&c.progress, "progress", 5*time.Second, "interval of the progress line on stderr (0: none)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.clipPath == "":
		return c, errors.New("-clip is required")
	case c.n < 1 || c.n > maxPublishers:
		return c, fmt.Errorf("-n %d out of range 1..%d", c.n, maxPublishers)
	case c.viewers < 0 || c.viewers > maxViewers:
		return c, fmt.Errorf("-viewers %d out of range 0..%d", c.viewers, maxViewers)
	case c.viewers > 0 && c.httpBase == "":
		return c, errors.New("-viewers needs -http")
	case c.duration <= 0:
		return c, fmt.Errorf("-duration %s must be positive", c.duration)
	case c.ramp < 0:
		return c, fmt.Errorf("-ramp %s must not be negative", c.ramp)
	case c.batch < time.Millisecond || c.batch > maxBatch:
		return c, fmt.Errorf("-batch %s out of range 1ms..%s", c.batch, maxBatch)
	}
	return c, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpload:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// RTMPLOAD_CPUPROFILE=FILE profiles the load generator itself, to show it is
	// not the bottleneck of a benchmark (an environment variable, not a flag: it is
	// a developer's tool, not part of the command line).
	stopProfile := func() {}
	if path := os.Getenv("RTMPLOAD_CPUPROFILE"); path != "" {
		if stopProfile, err = startCPUProfile(path); err != nil {
			fmt.Fprintln(os.Stderr, "rtmpload:", err)
			os.Exit(2)
		}
	}
	sum, err := run(ctx, cfg, os.Stderr)
	stopProfile()
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpload:", err)
		os.Exit(2)
	}
	if err := sum.write(os.Stdout, cfg.json); err != nil {
		fmt.Fprintln(os.Stderr, "rtmpload:", err)
		os.Exit(2)
	}
	if !sum.OK {
		os.Exit(1)
	}
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
