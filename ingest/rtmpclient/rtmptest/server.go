// Package rtmptest is a minimal RTMP server for testing publishing clients, in
// the manner of net/http/httptest: it answers connect, createStream and publish,
// records media messages, and can refuse the publish or drop the connection.
package rtmptest

import (
	"crypto/rand"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
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

// A message as large as rtmpgate accepts, on as many chunk streams.
const (
	maxMessage   = 8 << 20
	maxChunkSize = 1 << 24
	maxStreams   = 64
)

func (s *Server) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	c := make([]byte, 1+rtmp.HandshakeSize)
	if _, err := io.ReadFull(conn, c); err != nil {
		s.SetupErrors.Add(1)
		return
	}
	hs, _, err := rtmp.HandshakeReply(c, 0, rand.Reader)
	if err != nil {
		s.SetupErrors.Add(1)
		return
	}
	if _, err := conn.Write(hs); err != nil {
		return
	}
	if _, err := io.ReadFull(conn, c[:rtmp.HandshakeSize]); err != nil {
		return
	}
	cr := rtmp.NewReader(conn, rtmp.NewChunkReader(maxMessage, maxChunkSize, maxStreams))
	w := rtmp.ChunkWriter{ChunkSize: rtmp.DefaultChunkSize}
	reply := func(streamID uint32, vals ...any) {
		w.Buf = w.Buf[:0]
		w.AppendCommand(streamID, vals...)
		_, _ = conn.Write(w.Buf)
	}
	var media int64
	for {
		msg, err := cr.Next()
		if err != nil {
			return
		}
		switch msg.Type {
		case rtmp.MsgAudio, rtmp.MsgVideo, rtmp.MsgDataAMF0:
			if s.opts.Keep {
				s.mu.Lock()
				s.messages = append(s.messages, Message{msg.Type, msg.StreamID, msg.Timestamp, append([]byte(nil), msg.Payload...), time.Now()})
				s.mu.Unlock()
			}
			if msg.Type == rtmp.MsgDataAMF0 {
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
		case rtmp.MsgCommandAMF0:
			vals, err := rtmp.DecodeAMF0(msg.Payload)
			if err != nil || len(vals) < 2 {
				s.SetupErrors.Add(1)
				return
			}
			tx, _ := vals[1].(float64)
			switch vals[0] {
			case "connect":
				var obj rtmp.Object
				if len(vals) > 2 {
					obj, _ = vals[2].(rtmp.Object)
				}
				app, _ := obj.GetString("app")
				tcURL, _ := obj.GetString("tcUrl")
				flashVer, _ := obj.GetString("flashVer")
				if app == "" || !strings.HasSuffix(tcURL, "/"+app) || s.opts.FlashVer != "" && flashVer != s.opts.FlashVer {
					s.SetupErrors.Add(1)
				}
				reply(0, "_result", tx, rtmp.Object{{Key: "fmsVer", Value: "rtmptest"}}, rtmp.Object{{Key: "level", Value: "status"}, {Key: "code", Value: "NetConnection.Connect.Success"}})
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
				reply(msg.StreamID, "onStatus", 0, nil, rtmp.Object{{Key: "level", Value: level}, {Key: "code", Value: code}})
			case "deleteStream":
				s.CleanEnds.Add(1)
			}
		}
	}
}
