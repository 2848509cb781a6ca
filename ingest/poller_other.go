//go:build !linux

package ingest

import (
	"net"
	"time"
)

// readPoller exists on Linux only (epoll); elsewhere every connection is read
// through Go's netpoller as bytes arrive, and Server.ReadInterval is ignored.
type readPoller struct{}

func newReadPoller(time.Duration) (*readPoller, error) { return nil, nil }

func (*readPoller) adopt(nc net.Conn) (net.Conn, bool, error) { return nc, false, nil }
func (*readPoller) close()                                    {}
