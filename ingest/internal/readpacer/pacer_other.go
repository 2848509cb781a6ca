//go:build !linux

package readpacer

import (
	"errors"
	"net"
	"time"
)

// Pacer exists on Linux only (epoll); elsewhere New returns none and every
// connection is read through Go's netpoller as bytes arrive.
type Pacer struct{}

// ErrClosed is Adopt's error once Close ran.
var ErrClosed = errors.New("readpacer: closed")

func New(time.Duration) (*Pacer, error) { return nil, nil }

func (*Pacer) Adopt(nc net.Conn) (net.Conn, bool, error) { return nc, false, nil }
func (*Pacer) Len() int                                  { return 0 }
func (*Pacer) Close()                                    {}
