package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// Client-side limits of one publisher session.
const (
	handshakeSize  = 1536
	outChunkSize   = 4096
	setupTimeout   = 10 * time.Second
	writeTimeout   = 10 * time.Second
	closeWait      = 2 * time.Second
	coalesceWindow = time.Millisecond
	flashVer       = "FMLE/3.0 (compatible; rtmpload)"
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
	clip     *clip
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

	w       *chunkWriter
	scratch []byte
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
	d := net.Dialer{Timeout: setupTimeout}
	conn, err := d.DialContext(ctx, "tcp", p.target.host)
	if err != nil {
		return fmt.Errorf("dial: %w", err)
	}
	defer conn.Close()
	// Closing the socket is what unblocks a read or write when ctx ends.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	if err := conn.SetDeadline(time.Now().Add(setupTimeout)); err != nil {
		return err
	}
	if err := handshake(conn); err != nil {
		return err
	}
	p.w = newChunkWriter(128)
	p.w.buf = make([]byte, 0, p.clip.maxTag+p.clip.maxTag/outChunkSize*5+64)
	cr := newChunkReader(conn)
	streamID, err := p.setup(conn, cr)
	if err != nil {
		return err
	}
	p.state.Store(int32(stateLive))

	// From here the server only acknowledges; a reader drains it so its writes
	// never block, and reports the connection's end.
	if err := conn.SetReadDeadline(time.Time{}); err != nil {
		return err
	}
	rd := &reader{done: make(chan struct{})}
	go func() { rd.err = drain(cr); close(rd.done) }()

	sendErr := p.send(ctx, conn, streamID, rd)
	if sendErr != nil {
		conn.Close()
		<-rd.done
		if ctx.Err() != nil {
			return nil // interrupted by the user: not a failure of the server
		}
		p.early = true
		return sendErr
	}
	// Say goodbye properly, then wait (bounded) for the server to close.
	p.w.buf = p.w.buf[:0]
	p.scratch = p.w.appendCommand(0, p.scratch, "FCUnpublish", 6, nil, p.name)
	p.scratch = p.w.appendCommand(0, p.scratch, "deleteStream", 7, nil, float64(streamID))
	if err := p.write(conn); err != nil {
		conn.Close()
		<-rd.done
		p.early = true
		return fmt.Errorf("unpublish: %w", err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
	select {
	case <-rd.done:
	case <-time.After(closeWait):
		conn.Close()
		<-rd.done
	}
	return nil
}

// reader is the draining goroutine's outcome: err is set before done closes.
type reader struct {
	done chan struct{}
	err  error
}

// handshake runs the simple RTMP handshake (spec 5.2): C0 C1, then S0 S1 S2, then
// C2 echoing S1.
func handshake(conn net.Conn) error {
	c := make([]byte, 1+handshakeSize)
	c[0] = 3
	for i := 9; i < len(c); i++ {
		c[i] = byte(i*7 + i>>8)
	}
	if _, err := conn.Write(c); err != nil {
		return fmt.Errorf("handshake: write C0C1: %w", err)
	}
	s := make([]byte, 1+2*handshakeSize)
	if _, err := io.ReadFull(conn, s); err != nil {
		return fmt.Errorf("handshake: read S0S1S2: %w", err)
	}
	if s[0] != 3 {
		return fmt.Errorf("handshake: server version %d, want 3", s[0])
	}
	if _, err := conn.Write(s[1 : 1+handshakeSize]); err != nil {
		return fmt.Errorf("handshake: write C2: %w", err)
	}
	return nil
}

// setup runs connect, createStream and publish and returns the message stream id.
func (p *publisher) setup(conn net.Conn, cr *chunkReader) (uint32, error) {
	w := p.w
	w.appendSetChunkSize(outChunkSize)
	w.chunkSize = outChunkSize
	p.scratch = w.appendCommand(0, p.scratch, "connect", 1, []amfField{
		{"app", p.target.app},
		{"type", "nonprivate"},
		{"flashVer", flashVer},
		{"tcUrl", p.target.tcURL},
	})
	if err := p.write(conn); err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	res, err := expect(cr, "_result", 1)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	if code := statusCode(res); code != "NetConnection.Connect.Success" {
		return 0, fmt.Errorf("connect: %q", code)
	}
	p.scratch = w.appendCommand(0, p.scratch, "releaseStream", 2, nil, p.name)
	p.scratch = w.appendCommand(0, p.scratch, "FCPublish", 3, nil, p.name)
	p.scratch = w.appendCommand(0, p.scratch, "createStream", 4, nil)
	if err := p.write(conn); err != nil {
		return 0, fmt.Errorf("createStream: %w", err)
	}
	res, err = expect(cr, "_result", 4)
	if err != nil {
		return 0, fmt.Errorf("createStream: %w", err)
	}
	id, _ := res[3].(float64)
	if id < 1 || id > 1<<20 {
		return 0, fmt.Errorf("createStream: stream id %v", res[3])
	}
	streamID := uint32(id)
	p.scratch = w.appendCommand(streamID, p.scratch, "publish", 5, nil, p.name, "live")
	if err := p.write(conn); err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	res, err = expect(cr, "onStatus", -1)
	if err != nil {
		return 0, fmt.Errorf("publish: %w", err)
	}
	if code := statusCode(res); code != "NetStream.Publish.Start" {
		return 0, fmt.Errorf("publish refused: %s", code)
	}
	return streamID, nil
}

// expect reads messages until the command name arrives (with the transaction id
// tx unless tx < 0) and returns its values, at least 4 of them. An _error reply
// to tx ends the wait.
func expect(cr *chunkReader, name string, tx float64) ([]any, error) {
	for range 64 {
		msg, err := cr.next()
		if err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", name, err)
		}
		if msg.typ != msgCommandAMF0 {
			continue
		}
		vals, err := decodeAMF0(msg.payload)
		if err != nil {
			return nil, fmt.Errorf("waiting for %s: %w", name, err)
		}
		if len(vals) < 2 {
			continue
		}
		cmd, _ := vals[0].(string)
		id, _ := vals[1].(float64)
		if cmd == "_error" && id == tx {
			return nil, fmt.Errorf("server answered _error: %s", statusCode(pad(vals)))
		}
		if cmd == name && (tx < 0 || id == tx) {
			return pad(vals), nil
		}
	}
	return nil, fmt.Errorf("waiting for %s: 64 other messages first", name)
}

func pad(vals []any) []any {
	for len(vals) < 4 {
		vals = append(vals, nil)
	}
	return vals
}

// statusCode is the "code" of a reply's info object (the fourth value).
func statusCode(vals []any) string {
	if len(vals) < 4 {
		return ""
	}
	obj, _ := vals[3].(map[string]any)
	code, _ := obj["code"].(string)
	return code
}

// drain reads and discards the server's messages until the connection ends; an
// onStatus error (a kick, for one) ends it too.
func drain(cr *chunkReader) error {
	for {
		msg, err := cr.next()
		if err != nil {
			return err
		}
		if msg.typ != msgCommandAMF0 {
			continue
		}
		if vals, err := decodeAMF0(msg.payload); err == nil && len(vals) >= 4 && vals[0] == "onStatus" {
			if obj, _ := vals[3].(map[string]any); obj["level"] == "error" {
				return fmt.Errorf("server: %s", statusCode(vals))
			}
		}
	}
}

func (p *publisher) write(conn net.Conn) error {
	if len(p.w.buf) == 0 {
		return nil
	}
	if err := conn.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return err
	}
	n, err := conn.Write(p.w.buf)
	p.wireBytes.Add(int64(n))
	p.w.buf = p.w.buf[:0]
	return err
}

var setDataFrame = appendAMF0(nil, "@setDataFrame")

// send paces the clip's tags in real time: each tag goes out at the session's
// start plus its timestamp, tags due within coalesceWindow of each other in one
// write. With loop the clip repeats, timestamps running on by the clip's period;
// sequence headers go out once.
func (p *publisher) send(ctx context.Context, conn net.Conn, streamID uint32, rd *reader) error {
	begin := time.Now()
	end := begin.Add(p.duration)
	defer func() { p.live = time.Since(begin) }()
	if p.clip.meta != nil {
		p.scratch = append(append(p.scratch[:0], setDataFrame...), p.clip.meta...)
		p.w.appendMessage(csidData, msgDataAMF0, streamID, 0, p.scratch)
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	tags := p.clip.tags
	var offset uint32
	for pass := 0; ; pass++ {
		for i := range tags {
			t := &tags[i]
			if pass > 0 && t.config {
				continue
			}
			ts := offset + t.ts
			due := begin.Add(time.Duration(ts) * time.Millisecond)
			if due.After(end) {
				return p.write(conn)
			}
			if wait := time.Until(due); wait > coalesceWindow {
				if err := p.write(conn); err != nil {
					return fmt.Errorf("send: %w", err)
				}
				select {
				case <-rd.done:
					return fmt.Errorf("connection closed by server after %s: %w", time.Since(begin).Round(time.Millisecond), orEOF(rd.err))
				default:
				}
				if err := sleepUntil(ctx, timer, due); err != nil {
					return err
				}
			}
			typ, csid, frames := uint8(msgAudio), uint8(csidAudio), &p.audioFrames
			if t.typ == tagVideo {
				typ, csid, frames = msgVideo, csidVideo, &p.videoFrames
			}
			if !t.config {
				frames.Add(1)
			}
			p.payloadBytes.Add(int64(len(t.body)))
			p.w.appendMessage(csid, typ, streamID, ts, t.body)
		}
		if !p.loop {
			return p.write(conn)
		}
		offset += p.clip.period
	}
}

func orEOF(err error) error {
	if err == nil {
		return io.EOF
	}
	return err
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
