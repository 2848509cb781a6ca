// Package rtmptest is a minimal RTMP server for testing publishing clients, in
// the manner of net/http/httptest: it answers connect, createStream and publish,
// records media messages, and can refuse the publish or drop the connection.
package rtmptest

import (
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient/internal/wire"
)

// Options choose the server's misbehaviour; the zero value is a good server.
type Options struct {
	Refuse    bool  // answer publish with NetStream.Publish.BadName
	DropAfter int64 // close a connection after this many media messages (0: never)
	// StallAfter stops reading a connection after this many media messages
	// (0: never), leaving it open until the test ends: a server that hangs.
	StallAfter int64
	FlashVer   string // if set, a connect with another flashVer counts as a bad setup
	Keep       bool   // keep each media message (type, timestamp, payload copy) in Media
}

// Message is a media or data message as the server received it.
type Message struct {
	Type      uint8 // 8 audio, 9 video, 18 data
	StreamID  uint32
	Timestamp uint32
	Payload   []byte
	Received  time.Time // when its last byte was read
}

// Server is a running fake server; its counters may be read while it runs.
type Server struct {
	opts Options
	ln   net.Listener
	wg   sync.WaitGroup
	stop chan struct{} // closed when the test ends

	MediaCount  atomic.Int64 // audio and video messages, all connections
	CleanEnds   atomic.Int64 // sessions that sent deleteStream
	SetupErrors atomic.Int64 // bad handshakes, unreadable commands, unexpected connect fields

	mu       sync.Mutex
	messages []Message
	names    []string
}

// NewServer listens on 127.0.0.1:0; the test's cleanup closes it and waits for
// every connection's goroutine.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{opts: opts, ln: ln, stop: make(chan struct{})}
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	s.wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[conn] = struct{}{}
			mu.Unlock()
			s.wg.Go(func() {
				s.serve(conn)
				mu.Lock()
				delete(conns, conn)
				mu.Unlock()
			})
		}
	})
	t.Cleanup(func() {
		close(s.stop)
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		s.wg.Wait()
	})
	return s
}

// URL is rtmp://ADDR/app.
func (s *Server) URL(app string) string { return "rtmp://" + s.ln.Addr().String() + "/" + app }

// Messages returns the media and data messages kept so far (Options.Keep).
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// Names returns the stream names published so far, queries included.
func (s *Server) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

// Bounds: the handshake's fixed size; a message as large as rtmpgate accepts.
const (
	handshakeSize = 1536
	maxMessage    = 8 << 20
)

func (s *Server) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := make([]byte, 1+handshakeSize)
	if _, err := io.ReadFull(conn, c); err != nil || c[0] != 3 {
		s.SetupErrors.Add(1)
		return
	}
	hs := make([]byte, 1+2*handshakeSize)
	hs[0] = 3
	copy(hs[1+handshakeSize:], c[1:])
	if _, err := conn.Write(hs); err != nil {
		return
	}
	if _, err := io.ReadFull(conn, c[:handshakeSize]); err != nil {
		return
	}
	cr := wire.NewChunkReader(conn)
	cr.MaxMessage = maxMessage
	w := wire.NewChunkWriter(128)
	reply := func(streamID uint32, vals ...any) {
		w.Buf = w.Buf[:0]
		w.AppendCommand(streamID, nil, vals...)
		_, _ = conn.Write(w.Buf)
	}
	var media int64
	for {
		msg, err := cr.Next()
		if err != nil {
			return
		}
		switch msg.Type {
		case wire.MsgAudio, wire.MsgVideo, wire.MsgDataAMF0:
			if s.opts.Keep {
				s.mu.Lock()
				s.messages = append(s.messages, Message{msg.Type, msg.StreamID, msg.Timestamp, append([]byte(nil), msg.Payload...), time.Now()})
				s.mu.Unlock()
			}
			if msg.Type == wire.MsgDataAMF0 {
				continue
			}
			media++
			s.MediaCount.Add(1)
			if s.opts.DropAfter > 0 && media >= s.opts.DropAfter {
				return
			}
			if s.opts.StallAfter > 0 && media >= s.opts.StallAfter {
				<-s.stop
				return
			}
		case wire.MsgCommandAMF0:
			vals, err := wire.DecodeAMF0(msg.Payload)
			if err != nil || len(vals) < 2 {
				s.SetupErrors.Add(1)
				return
			}
			tx, _ := vals[1].(float64)
			switch vals[0] {
			case "connect":
				var obj map[string]any
				if len(vals) > 2 {
					obj, _ = vals[2].(map[string]any)
				}
				app, _ := obj["app"].(string)
				tcURL, _ := obj["tcUrl"].(string)
				if app == "" || !strings.HasSuffix(tcURL, "/"+app) || s.opts.FlashVer != "" && obj["flashVer"] != s.opts.FlashVer {
					s.SetupErrors.Add(1)
				}
				reply(0, "_result", tx, []wire.Field{{Key: "fmsVer", Value: "rtmptest"}}, []wire.Field{{Key: "level", Value: "status"}, {Key: "code", Value: "NetConnection.Connect.Success"}})
			case "createStream":
				reply(0, "_result", tx, nil, 1)
			case "publish":
				if len(vals) > 3 {
					name, _ := vals[3].(string)
					s.mu.Lock()
					s.names = append(s.names, name)
					s.mu.Unlock()
				}
				code, level := "NetStream.Publish.Start", "status"
				if s.opts.Refuse {
					code, level = "NetStream.Publish.BadName", "error"
				}
				reply(msg.StreamID, "onStatus", 0, nil, []wire.Field{{Key: "level", Value: level}, {Key: "code", Value: code}})
			case "deleteStream":
				s.CleanEnds.Add(1)
			}
		}
	}
}
