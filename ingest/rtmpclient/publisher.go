// Package rtmpclient is a small RTMP publishing client: the simple handshake,
// connect/releaseStream/FCPublish/createStream/publish, @setDataFrame, audio and
// video messages at timestamps the caller chooses (wraps and jumps included), and
// an FLV clip reader. Load generators and end-to-end tests use it to publish what
// real encoders would, and what odd ones do.
package rtmpclient

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
)

// Defaults of Options.
const (
	DefaultTimeout      = 10 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultChunkSize    = 4096
	DefaultFlashVer     = "FMLE/3.0 (compatible; rtmpclient)"
	defaultBufferSize   = 64 << 10
	closeWait           = 2 * time.Second
	maxChunkSize        = 1 << 24
	maxSetupMessages    = 64
)

// Bounds on what a server may send us: it answers commands and acknowledges
// bytes, nothing big.
const (
	maxInMessage   = 1 << 20
	maxInChunkSize = 1 << 24
	maxInStreams   = 16
)

// Options tune a Publisher; the zero value works.
type Options struct {
	Timeout      time.Duration // bound on dial, handshake and the publish exchange (DefaultTimeout)
	WriteTimeout time.Duration // bound on each write to the server (DefaultWriteTimeout)
	ChunkSize    int           // outgoing chunk size, announced with Set Chunk Size (DefaultChunkSize, at most 16 MiB)
	FlashVer     string        // connect's flashVer (DefaultFlashVer)
	BufferSize   int           // initial write buffer; it grows once to the largest message (64 KiB)
	// Reconnect announces the Enhanced RTMP Reconnect capability (capsEx 0x01)
	// in connect: the server may then send NetConnection.Connect.ReconnectRequest,
	// which ReconnectRequested reports. Moving is the caller's: Close, then Dial
	// ReconnectURL and publish again from a key frame.
	Reconnect bool
}

// StatusError is a refusal by the server: an _error reply or a status code other
// than the one that means success.
type StatusError struct {
	Command string // connect, createStream or publish
	Code    string // e.g. NetStream.Publish.BadName
}

func (e *StatusError) Error() string {
	if e.Command == "publish" {
		return "publish refused: " + e.Code
	}
	return fmt.Sprintf("%s: %q", e.Command, e.Code)
}

// Publisher is one publishing session. Its methods are for one goroutine, except
// Done, Err and WireBytes. A goroutine drains the server's messages from the
// publish on; Close ends it.
type Publisher struct {
	conn         net.Conn
	w            *rtmp.ChunkWriter
	scratch      []byte // WriteMetadata's message body
	name         string
	tcURL        string
	streamID     uint32
	writeTimeout time.Duration
	writeBy      time.Time // the write deadline set on conn; zero: none
	ctx          context.Context
	stop         func() bool

	done    chan struct{}
	readErr error // set before done closes

	reconnect   chan struct{} // closed when the server asked for a reconnect
	reconnectTo string        // its tcUrl, "" for none; set before reconnect closes
	failed      error         // the first write error: no goodbye after it
	closed      bool
	wireSent    atomic.Int64
}

// Dial connects to url, rtmp://HOST[:PORT]/APP/STREAM[?QUERY] (port 1935 by
// default; the query travels with the stream name, as ffmpeg sends it), and
// publishes STREAM live. It returns once the server answered
// NetStream.Publish.Start; a refusal is a *StatusError. ctx bounds the setup and
// the whole session: when it ends, writes fail and Close is quick.
func Dial(ctx context.Context, rawURL string, opts Options) (*Publisher, error) {
	host, app, name, tcURL, err := splitURL(rawURL)
	if err != nil {
		return nil, err
	}
	timeout := cmp.Or(opts.Timeout, DefaultTimeout)
	chunkSize := cmp.Or(opts.ChunkSize, DefaultChunkSize)
	if chunkSize < 1 || chunkSize > maxChunkSize {
		return nil, fmt.Errorf("rtmpclient: chunk size %d out of range 1..%d", chunkSize, maxChunkSize)
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	p := &Publisher{
		conn:         conn,
		w:            &rtmp.ChunkWriter{ChunkSize: rtmp.DefaultChunkSize, Compress: true},
		name:         name,
		tcURL:        tcURL,
		reconnect:    make(chan struct{}),
		writeTimeout: cmp.Or(opts.WriteTimeout, DefaultWriteTimeout),
		ctx:          ctx,
		done:         make(chan struct{}),
	}
	p.w.Buf = make([]byte, 0, max(opts.BufferSize, defaultBufferSize))
	// Expiring the deadlines is what unblocks a read or write when ctx ends.
	p.stop = context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	cr, err := p.setup(app, tcURL, cmp.Or(opts.FlashVer, DefaultFlashVer), chunkSize, timeout, opts.Reconnect)
	if err != nil {
		p.stop()
		conn.Close()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", err, ctx.Err())
		}
		return nil, err
	}
	go func() {
		p.readErr = p.drain(cr)
		close(p.done)
	}()
	return p, nil
}

// splitURL takes rtmp://HOST[:PORT]/APP/STREAM[?QUERY] apart.
func splitURL(raw string) (host, app, name, tcURL string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", "", "", fmt.Errorf("rtmpclient: %w", err)
	}
	if u.Scheme != "rtmp" {
		return "", "", "", "", fmt.Errorf("rtmpclient: %q: scheme %q, want rtmp", raw, u.Scheme)
	}
	app, name, _ = strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	if app == "" || name == "" {
		return "", "", "", "", fmt.Errorf("rtmpclient: %q: want rtmp://HOST[:PORT]/APP/STREAM", raw)
	}
	if u.RawQuery != "" {
		name += "?" + u.RawQuery
	}
	host = u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "1935")
	}
	return host, app, name, "rtmp://" + u.Host + "/" + app, nil
}

// setup runs the handshake, connect, createStream and publish.
func (p *Publisher) setup(app, tcURL, flashVer string, chunkSize int, timeout time.Duration, reconnect bool) (*rtmp.Reader, error) {
	if err := p.conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return nil, err
	}
	if err := handshake(p.conn); err != nil {
		return nil, err
	}
	cr := rtmp.NewReader(p.conn, rtmp.NewChunkReader(maxInMessage, maxInChunkSize, maxInStreams))
	w := p.w
	w.AppendControl(rtmp.MsgSetChunkSize, uint32(chunkSize))
	w.ChunkSize = chunkSize
	connect := rtmp.Object{
		{Key: "app", Value: app},
		{Key: "type", Value: "nonprivate"},
		{Key: "flashVer", Value: flashVer},
		{Key: "tcUrl", Value: tcURL},
	}
	if reconnect {
		connect = append(connect, rtmp.Property{Key: "capsEx", Value: float64(capsExReconnect)})
	}
	w.AppendCommand(0, "connect", 1, connect)
	if err := p.flush(); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	res, err := expect(cr, "connect", "_result", 1)
	if err != nil {
		return nil, err
	}
	if code := rtmp.StatusCode(res); code != "NetConnection.Connect.Success" {
		return nil, &StatusError{Command: "connect", Code: code}
	}
	w.AppendCommand(0, "releaseStream", 2, nil, p.name)
	w.AppendCommand(0, "FCPublish", 3, nil, p.name)
	w.AppendCommand(0, "createStream", 4, nil)
	if err := p.flush(); err != nil {
		return nil, fmt.Errorf("createStream: %w", err)
	}
	res, err = expect(cr, "createStream", "_result", 4)
	if err != nil {
		return nil, err
	}
	id, _ := res[3].(float64)
	if id < 1 || id > 1<<20 {
		return nil, fmt.Errorf("createStream: stream id %v", res[3])
	}
	p.streamID = uint32(id)
	w.AppendCommand(p.streamID, "publish", 5, nil, p.name, "live")
	if err := p.flush(); err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}
	res, err = expect(cr, "publish", "onStatus", -1)
	if err != nil {
		return nil, err
	}
	if code := rtmp.StatusCode(res); code != "NetStream.Publish.Start" {
		return nil, &StatusError{Command: "publish", Code: code}
	}
	// From here the server only acknowledges and tells of its end: no read deadline.
	if err := p.conn.SetDeadline(time.Time{}); err != nil {
		return nil, err
	}
	p.writeBy = time.Time{}
	return cr, nil
}

// handshake runs the simple RTMP handshake (spec 5.2): C0 C1, then S0 S1 S2, then
// C2 echoing S1.
func handshake(conn net.Conn) error {
	if _, err := conn.Write(rtmp.ClientHello()); err != nil {
		return fmt.Errorf("handshake: write C0C1: %w", err)
	}
	s := make([]byte, 1+2*rtmp.HandshakeSize)
	if _, err := io.ReadFull(conn, s); err != nil {
		return fmt.Errorf("handshake: read S0S1S2: %w", err)
	}
	c2, err := rtmp.ClientAck(s)
	if err != nil {
		return err
	}
	if _, err := conn.Write(c2); err != nil {
		return fmt.Errorf("handshake: write C2: %w", err)
	}
	return nil
}

// expect reads messages until the command name arrives (with the transaction id
// tx unless tx < 0) and returns its values, at least 4 of them. An _error reply
// to tx ends the wait.
func expect(cr *rtmp.Reader, step, name string, tx float64) ([]any, error) {
	for range maxSetupMessages {
		msg, err := cr.Next()
		if err != nil {
			return nil, fmt.Errorf("%s: waiting for %s: %w", step, name, err)
		}
		if msg.Type != rtmp.MsgCommandAMF0 {
			continue
		}
		vals, err := rtmp.DecodeAMF0(msg.Payload)
		if err != nil {
			return nil, fmt.Errorf("%s: waiting for %s: %w", step, name, err)
		}
		if len(vals) < 2 {
			continue
		}
		cmd, _ := vals[0].(string)
		id, _ := vals[1].(float64)
		if cmd == "_error" && id == tx {
			return nil, &StatusError{Command: step, Code: rtmp.StatusCode(pad(vals))}
		}
		if cmd == name && (tx < 0 || id == tx) {
			return pad(vals), nil
		}
	}
	return nil, fmt.Errorf("%s: waiting for %s: %d other messages first", step, name, maxSetupMessages)
}

func level(obj rtmp.Object) string {
	l, _ := obj.GetString("level")
	return l
}

func pad(vals []any) []any {
	for len(vals) < 4 {
		vals = append(vals, nil)
	}
	return vals
}

// drain reads and discards the server's messages until the connection ends; an
// onStatus error (a kick, for one) ends it too. A ReconnectRequest is noted
// for ReconnectRequested.
func (p *Publisher) drain(cr *rtmp.Reader) error {
	asked := false
	for {
		msg, err := cr.Next()
		if err != nil {
			return err
		}
		if msg.Type != rtmp.MsgCommandAMF0 {
			continue
		}
		vals, err := rtmp.DecodeAMF0(msg.Payload)
		if err != nil || len(vals) < 4 || vals[0] != "onStatus" {
			continue
		}
		obj, _ := vals[3].(rtmp.Object)
		if level(obj) == "error" {
			return &StatusError{Command: "onStatus", Code: rtmp.StatusCode(vals)}
		}
		if rtmp.StatusCode(vals) == statusReconnectRequest && !asked {
			asked = true
			p.reconnectTo, _ = obj.GetString("tcUrl")
			close(p.reconnect)
		}
	}
}

// Enhanced RTMP reconnect (E-RTMP v2, "Reconnect Request").
const (
	capsExReconnect        = 0x01
	statusReconnectRequest = "NetConnection.Connect.ReconnectRequest"
)

// ReconnectRequested is closed when the server sent
// NetConnection.Connect.ReconnectRequest (only to a Publisher dialled with
// Options.Reconnect). The spec asks the client to go on publishing up to the
// next key frame, then reconnect to ReconnectURL.
func (p *Publisher) ReconnectRequested() <-chan struct{} { return p.reconnect }

// ReconnectURL is where to publish again once ReconnectRequested is closed:
// the request's tcUrl, resolved against the connection's tcUrl when relative
// ("/app", "//host/app"), or that tcUrl when the request had none; then the
// stream name, with its query.
func (p *Publisher) ReconnectURL() (string, error) {
	select {
	case <-p.reconnect:
	default:
		return "", errors.New("rtmpclient: no reconnect requested")
	}
	base, err := url.Parse(p.tcURL + "/")
	if err != nil {
		return "", fmt.Errorf("rtmpclient: tcUrl %q: %w", p.tcURL, err)
	}
	to := base
	if p.reconnectTo != "" {
		ref, err := url.Parse(p.reconnectTo)
		if err != nil {
			return "", fmt.Errorf("rtmpclient: reconnect tcUrl %q: %w", p.reconnectTo, err)
		}
		to = base.ResolveReference(ref)
	}
	if to.Scheme != "rtmp" {
		return "", fmt.Errorf("rtmpclient: reconnect tcUrl %q: scheme %q, want rtmp", p.reconnectTo, to.Scheme)
	}
	return strings.TrimSuffix(to.String(), "/") + "/" + p.name, nil
}

var setDataFrame = rtmp.AppendAMF0(nil, "@setDataFrame")

// SetDataFrame sends @setDataFrame onMetaData with meta as an AMF0 object, keys
// in sorted order. Values may be float64, int, bool or string; others go as null.
func (p *Publisher) SetDataFrame(meta map[string]any) error {
	keys := make([]string, 0, len(meta))
	for k := range meta {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	obj := make(rtmp.Object, 0, len(keys))
	for _, k := range keys {
		v := meta[k]
		switch v.(type) {
		case float64, int, bool, string:
		default:
			v = nil
		}
		obj = append(obj, rtmp.Property{Key: k, Value: v})
	}
	body := rtmp.AppendAMF0(nil, "onMetaData")
	body = rtmp.AppendAMF0(body, obj)
	return p.WriteMetadata(body)
}

// WriteMetadata sends @setDataFrame followed by body, an FLV script tag's body
// ("onMetaData" and its array, as Clip.Meta holds it), at timestamp 0.
func (p *Publisher) WriteMetadata(body []byte) error {
	p.scratch = append(append(p.scratch[:0], setDataFrame...), body...)
	p.w.AppendMessage(rtmp.CSIDData, rtmp.MsgDataAMF0, p.streamID, 0, p.scratch)
	return p.Flush()
}

// WriteVideo sends an FLV VIDEODATA body at RTMP timestamp ts (milliseconds,
// 32 bits: the caller decides about wraps and jumps; a timestamp below the
// previous one goes with a full header). body may be empty. It does not allocate
// once the buffer has grown to the largest message.
func (p *Publisher) WriteVideo(ts uint32, body []byte) error {
	p.AppendVideo(ts, body)
	return p.Flush()
}

// WriteAudio sends an FLV AUDIODATA body at RTMP timestamp ts, as WriteVideo.
func (p *Publisher) WriteAudio(ts uint32, body []byte) error {
	p.AppendAudio(ts, body)
	return p.Flush()
}

// AppendVideo queues a video message for the next Flush, so that messages due
// together go out in one write.
func (p *Publisher) AppendVideo(ts uint32, body []byte) {
	p.w.AppendMessage(rtmp.CSIDVideo, rtmp.MsgVideo, p.streamID, ts, body)
}

// AppendAudio queues an audio message for the next Flush.
func (p *Publisher) AppendAudio(ts uint32, body []byte) {
	p.w.AppendMessage(rtmp.CSIDAudio, rtmp.MsgAudio, p.streamID, ts, body)
}

// Flush writes what the Append methods queued. After a write error the session
// is broken: every later write returns that error.
func (p *Publisher) Flush() error {
	if p.failed != nil {
		p.w.Buf = p.w.Buf[:0]
		return p.failed
	}
	if err := p.flush(); err != nil {
		p.failed = fmt.Errorf("send: %w", err)
		return p.failed
	}
	return nil
}

func (p *Publisher) flush() error {
	if len(p.w.Buf) == 0 {
		return nil
	}
	defer func() { p.w.Buf = p.w.Buf[:0] }()
	if err := p.ctx.Err(); err != nil {
		return err // the deadline ctx set must not be pushed back below
	}
	// Moving the deadline is a runtime timer update; at a write per frame it is
	// moved only once half the timeout has gone, so a stalled write still fails
	// within 0.5 to 1 times the timeout.
	if now := time.Now(); p.writeBy.Sub(now) < p.writeTimeout/2 {
		p.writeBy = now.Add(p.writeTimeout)
		if err := p.conn.SetWriteDeadline(p.writeBy); err != nil {
			return err
		}
	}
	n, err := p.conn.Write(p.w.Buf)
	p.wireSent.Add(int64(n))
	return err
}

// Done is closed when the server's side of the connection ended: it closed the
// connection, sent an error status (a kick), or Close ran.
func (p *Publisher) Done() <-chan struct{} { return p.done }

// Err is why the server's side ended, once Done is closed: io.EOF for a plain
// close, a *StatusError for an error status.
func (p *Publisher) Err() error {
	select {
	case <-p.done:
		if p.readErr == nil {
			return io.EOF
		}
		return p.readErr
	default:
		return nil
	}
}

// WireBytes is what went out on the connection so far, chunk headers included.
func (p *Publisher) WireBytes() int64 { return p.wireSent.Load() }

// Close says goodbye (FCUnpublish, deleteStream) unless a write failed, half
// closes, waits up to 2 s for the server to close, then closes the connection
// and ends the draining goroutine. It returns the goodbye's write error.
func (p *Publisher) Close() error {
	if p.closed {
		return errors.New("rtmpclient: already closed")
	}
	p.closed = true
	defer p.stop()
	var err error
	if p.failed == nil {
		p.w.Buf = p.w.Buf[:0]
		p.w.AppendCommand(0, "FCUnpublish", 6, nil, p.name)
		p.w.AppendCommand(0, "deleteStream", 7, nil, float64(p.streamID))
		if err = p.flush(); err != nil {
			err = fmt.Errorf("unpublish: %w", err)
		} else if tc, ok := p.conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
			timer := time.NewTimer(closeWait)
			select {
			case <-p.done:
			case <-timer.C:
			case <-p.ctx.Done():
			}
			timer.Stop()
		}
	}
	p.conn.Close()
	<-p.done
	return err
}
