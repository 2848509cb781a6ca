package ingest

import (
	"context"
	"errors"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
)

// StatusReconnectRequest is the NetConnection onStatus code with which the
// server asks a client to reconnect (E-RTMP v2, "Reconnect Request").
const StatusReconnectRequest = "NetConnection.Connect.ReconnectRequest"

// Errors of RequestReconnect.
var (
	ErrNotPublishing = errors.New("ingest: nobody publishes that stream here")
	// ErrNoReconnect: the publisher did not announce the Reconnect capability
	// (capsEx bit 0x01) in its connect command, so it would not understand.
	ErrNoReconnect = errors.New("ingest: the publisher did not announce reconnect support")
)

// liveStream is what other goroutines may learn of a connection's publish
// session; guarded by conn.mu.
type liveStream struct {
	app, name string
	live      bool
	reconnect bool // the client announced capsEx Reconnect
	tcURL     string
	asked     bool // a ReconnectRequest is due or was sent
}

// askReconnect marks a live, reconnect-capable session for a
// ReconnectRequest (tcURL "" omits the property: the client reconnects to the
// URL it used). It reports false when the session cannot take one.
func (c *conn) askReconnect(tcURL string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.stream.live || !c.stream.reconnect {
		return false
	}
	c.stream.asked, c.stream.tcURL = true, tcURL
	c.reconnectDue.Store(true)
	return true
}

// sendReconnect queues the ReconnectRequest, once per publish session. It
// runs on the connection's goroutine after each read batch, so the request
// goes out with the publisher's next bytes: a publisher sends many a second.
func (c *conn) sendReconnect() {
	c.reconnectDue.Store(false)
	c.mu.Lock()
	tcURL, asked := c.stream.tcURL, c.stream.asked
	c.mu.Unlock()
	if !asked || c.pub.writer == nil || c.pub.reconnectSent {
		return
	}
	c.pub.reconnectSent = true
	info := rtmp.Object{
		{Key: "level", Value: "status"},
		{Key: "code", Value: StatusReconnectRequest},
		{Key: "description", Value: "The server asks the publisher to reconnect."},
	}
	if tcURL != "" {
		info = append(info, rtmp.Property{Key: "tcUrl", Value: tcURL})
	}
	c.w.AppendCommand(0, "onStatus", 0, nil, info)
	ev := c.log.Info()
	if tcURL != "" {
		ev = ev.Str("to", tcURL)
	}
	ev.Msg("reconnect requested")
}

// RequestReconnect asks the publisher of app/name (the public name, as the
// Handler's Writer is known by) to reconnect, per Enhanced RTMP: it gets an
// onStatus NetConnection.Connect.ReconnectRequest, with tcUrl when tcURL is
// not empty, and the server goes on ingesting until it leaves. A publisher
// that did not announce the capability gets nothing: ErrNoReconnect.
func (s *Server) RequestReconnect(app, name, tcURL string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	found := false
	for c := range s.conns {
		c.mu.Lock()
		match := c.stream.live && c.stream.app == app && c.stream.name == name
		c.mu.Unlock()
		if !match {
			continue
		}
		found = true
		if c.askReconnect(tcURL) {
			return nil
		}
	}
	if found {
		return ErrNoReconnect
	}
	return ErrNotPublishing
}

// drain begins a graceful shutdown: no more accepts, every publisher that
// announced Reconnect is asked to reconnect and keeps publishing, every other
// connection is ended. It returns how many publishers were asked.
func (s *Server) drain() (asked int, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for ln := range s.listeners {
		if e := ln.Close(); e != nil && err == nil {
			err = e
		}
		delete(s.listeners, ln) // closeAll must not close it again
	}
	for c := range s.conns {
		if c.askReconnect("") {
			asked++
			continue
		}
		c.stop(ErrServerClosed)
	}
	if asked > 0 {
		s.Logger.Info().Int("publishers", asked).Msg("shutdown: publishers asked to reconnect")
	}
	return asked, err
}

// reconnectGrace is how long Shutdown keeps ingesting from publishers it
// asked to reconnect: ReconnectGrace, else half of what ctx leaves, else
// defaultReconnectGrace.
func (s *Server) reconnectGrace(ctx context.Context) time.Duration {
	if s.ReconnectGrace > 0 {
		return s.ReconnectGrace
	}
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d) / 2
	}
	return defaultReconnectGrace
}

const defaultReconnectGrace = 5 * time.Second
