package main

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

// Client-side limits of one publisher session.
const (
	setupTimeout = 10 * time.Second
	flashVer     = "FMLE/3.0 (compatible; rtmpload)"
)

// target is where publishers push: the URL's host, app and the tcUrl.
type target struct {
	host  string
	app   string
	tcURL string
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "rtmp" {
		return target{}, fmt.Errorf("-url %q: scheme %q, want rtmp", raw, u.Scheme)
	}
	app := strings.Trim(u.Path, "/")
	if app == "" || strings.Contains(app, "/") {
		return target{}, fmt.Errorf("-url %q: want rtmp://HOST[:PORT]/APP", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1935")
	}
	return target{host: host, app: app, tcURL: strings.TrimRight(raw, "/")}, nil
}

// publisherState is how a publisher ended up; viewers read it to stop watching a
// stream that never went live.
type publisherState int32

const (
	stateWaiting publisherState = iota
	stateLive
	stateDone
	stateFailed
)

// publisher is one RTMP publishing session. Its counters are atomics so the
// progress line can read them while it runs.
type publisher struct {
	name     string
	start    time.Time // when it is scheduled to connect
	duration time.Duration
	loop     bool
	batch    time.Duration // tags leave on a grid of this step from the session's start
	clip     *rtmpclient.Clip
	target   target

	state        atomic.Int32
	err          error // set before state becomes stateFailed
	early        bool  // the connection was lost before the planned end
	videoFrames  atomic.Int64
	audioFrames  atomic.Int64
	payloadBytes atomic.Int64
	wireBytes    atomic.Int64
	live         time.Duration // from Publish.Start to the last tag sent
	endedAt      atomic.Int64  // unix nanoseconds, set when the session ends
}

// run publishes until its duration ends or ctx is cancelled. Failures are kept
// in p.err and the state, not returned: the summary counts them.
func (p *publisher) run(ctx context.Context) {
	if err := sleepUntil(ctx, nil, p.start); err != nil {
		p.finish(stateFailed)
		return
	}
	if err := p.session(ctx); err != nil {
		p.err = fmt.Errorf("%s: %w", p.name, err)
		p.finish(stateFailed)
		return
	}
	if ctx.Err() != nil {
		p.finish(stateFailed) // interrupted: viewers stop, nothing more is due
		return
	}
	p.finish(stateDone)
}

// finish records the end time before the state, so whoever sees the state sees
// the time.
func (p *publisher) finish(s publisherState) {
	p.endedAt.Store(time.Now().UnixNano())
	p.state.Store(int32(s))
}

// ended is when the session ended; the zero time while it runs.
func (p *publisher) ended() time.Time {
	if n := p.endedAt.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

func (p *publisher) session(ctx context.Context) error {
	// The write buffer holds the largest tag plus its chunk headers, so it never
	// grows while sending.
	pub, err := rtmpclient.Dial(ctx, p.target.tcURL+"/"+p.name, rtmpclient.Options{
		Timeout:    setupTimeout,
		FlashVer:   flashVer,
		BufferSize: p.clip.MaxTag + p.clip.MaxTag/rtmpclient.DefaultChunkSize*5 + 64,
	})
	if err != nil {
		return err
	}
	p.state.Store(int32(stateLive))
	sendErr := p.send(ctx, pub)
	closeErr := pub.Close()
	p.wireBytes.Store(pub.WireBytes())
	switch {
	case sendErr != nil && ctx.Err() != nil:
		return nil // interrupted by the user: not a failure of the server
	case sendErr != nil:
		p.early = true
		return sendErr
	case closeErr != nil:
		p.early = true
		return closeErr
	}
	return nil
}

// send paces the clip's tags in real time: each tag is due at the session's start
// plus its timestamp and leaves at the first tick of the publisher's batch grid
// at or after that, never early (an encoder cannot send a frame before it has
// it); tags leaving at one tick go in one write. A write is a loopback round
// through the kernel on both ends, so the step sets the cost per stream on both
// sides: 1 ms is about one write per frame, as an encoder sends. With loop the
// clip repeats, timestamps running on by the clip's period; sequence headers go
// out once.
func (p *publisher) send(ctx context.Context, pub *rtmpclient.Publisher) error {
	begin := time.Now()
	defer func() { p.live = time.Since(begin) }()
	if p.clip.Meta != nil {
		if err := pub.WriteMetadata(p.clip.Meta); err != nil {
			return err
		}
	}
	step := max(p.batch, time.Millisecond)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tags := p.clip.Tags
	var offset uint32
	var sentUpTo time.Duration // everything due up to here (from begin) may go now
	for pass := 0; ; pass++ {
		for i := range tags {
			t := &tags[i]
			if pass > 0 && t.Config {
				continue
			}
			ts := offset + t.Timestamp
			due := time.Duration(ts) * time.Millisecond
			if due > p.duration {
				return pub.Flush()
			}
			if due > sentUpTo {
				if err := pub.Flush(); err != nil {
					return err
				}
				p.wireBytes.Store(pub.WireBytes())
				select {
				case <-pub.Done():
					return fmt.Errorf("connection closed by server after %s: %w", time.Since(begin).Round(time.Millisecond), pub.Err())
				default:
				}
				sentUpTo = (due + step - 1) / step * step
				if err := sleepUntil(ctx, timer, begin.Add(sentUpTo)); err != nil {
					return err
				}
			}
			frames := &p.audioFrames
			if t.Type == rtmpclient.TagVideo {
				frames = &p.videoFrames
				pub.AppendVideo(ts, t.Body)
			} else {
				pub.AppendAudio(ts, t.Body)
			}
			if !t.Config {
				frames.Add(1)
			}
			p.payloadBytes.Add(int64(len(t.Body)))
		}
		if !p.loop {
			return pub.Flush()
		}
		offset += p.clip.Period
	}
}

// sleepUntil waits for the wall-clock time at or ctx's end, reusing timer when
// given (one timer per publisher: no allocation per wait).
func sleepUntil(ctx context.Context, timer *time.Timer, at time.Time) error {
	d := time.Until(at)
	if d <= 0 {
		return ctx.Err()
	}
	if timer == nil {
		timer = time.NewTimer(d)
		defer timer.Stop()
	} else {
		timer.Reset(d)
	}
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
