package readpacer

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// pacedConn is a connection read through the Pacer. Read and
// Write are called by the connection's own goroutine only; Close may come from
// any goroutine (Kick, Shutdown) and the descriptor is released only when no
// system call is using it.
type pacedConn struct {
	poller        *Pacer
	fd            int
	local, remote net.Addr

	waiting atomic.Bool  // the owner waits in Read for the poller's signal
	readBy  atomic.Int64 // read deadline in Unix ns; 0: none
	writeBy time.Time    // write deadline; owner only
	full    bool         // the last read filled its buffer: read again without waiting

	wake   chan struct{} // capacity 1: bytes may be ready, or the read deadline passed
	stopCh chan struct{} // closed by Close

	mu       sync.Mutex
	busy     bool // the owner is in a system call on fd
	closed   bool
	released bool
}

// signal wakes the owner if it is waiting; a busy owner reads again anyway.
func (c *pacedConn) signal() {
	if c.waiting.CompareAndSwap(true, false) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

var errConnClosed = fmt.Errorf("readpacer: use of closed connection: %w", net.ErrClosed)

// enter marks a system call on fd; false if the connection is closed.
func (c *pacedConn) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.busy = true
	return true
}

func (c *pacedConn) exit() {
	c.mu.Lock()
	c.busy = false
	if c.closed {
		c.releaseLocked()
	}
	c.mu.Unlock()
}

func (c *pacedConn) releaseLocked() {
	if c.released {
		return
	}
	c.released = true
	c.poller.forget(c)
	unix.Close(c.fd)
}

// Read waits for the poller's next signal, unless the last read filled its
// buffer, and then reads once.
func (c *pacedConn) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	for {
		if !c.full {
			if err := c.waitReadable(); err != nil {
				return 0, err
			}
		}
		if !c.enter() {
			return 0, errConnClosed
		}
		n, err := unix.Read(c.fd, b)
		c.exit()
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			c.full = false
			continue
		case err != nil:
			return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.local, Addr: c.remote, Err: os.NewSyscallError("read", err)}
		case n == 0:
			return 0, io.EOF
		}
		c.full = n == len(b)
		return n, nil
	}
}

// waitReadable waits for the poller's signal: bytes or an end on the socket, or
// the read deadline passed.
func (c *pacedConn) waitReadable() error {
	c.waiting.Store(true)
	if c.overdue() {
		c.waiting.Store(false)
		return os.ErrDeadlineExceeded
	}
	select {
	case <-c.stopCh:
		c.waiting.Store(false)
		return errConnClosed
	case <-c.wake:
		// A token left from an earlier wait also lands here: then waiting is
		// still set, and must not invite more tokens while we read.
		c.waiting.Store(false)
		if c.overdue() {
			return os.ErrDeadlineExceeded
		}
		return nil
	}
}

func (c *pacedConn) overdue() bool {
	d := c.readBy.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

// Write writes all of b, waiting for room (rare: replies to a publisher are a
// few bytes) up to the write deadline.
func (c *pacedConn) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		if !c.enter() {
			return written, errConnClosed
		}
		n, err := unix.Write(c.fd, b[written:])
		c.exit()
		if n > 0 {
			written += n
		}
		switch {
		case err == nil || err == unix.EINTR:
			continue
		case err != unix.EAGAIN:
			return written, &net.OpError{Op: "write", Net: "tcp", Source: c.local, Addr: c.remote, Err: os.NewSyscallError("write", err)}
		}
		if err := c.waitWritable(); err != nil {
			return written, err
		}
	}
	return written, nil
}

// waitWritable polls for room in slices of at most 100 ms, so that Close and the
// deadline are noticed.
func (c *pacedConn) waitWritable() error {
	for {
		wait := 100 * time.Millisecond
		if !c.writeBy.IsZero() {
			left := time.Until(c.writeBy)
			if left <= 0 {
				return os.ErrDeadlineExceeded
			}
			wait = min(wait, left)
		}
		if !c.enter() {
			return errConnClosed
		}
		fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLOUT}}
		n, err := unix.Poll(fds, int(wait.Milliseconds())+1)
		c.exit()
		if err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
		if n > 0 {
			return nil
		}
	}
}

// Close ends the connection from any goroutine; a Read waiting for the poller
// returns at once.
func (c *pacedConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.stopCh)
	if !c.busy {
		c.releaseLocked()
	}
	return nil
}

func (c *pacedConn) LocalAddr() net.Addr  { return c.local }
func (c *pacedConn) RemoteAddr() net.Addr { return c.remote }

func (c *pacedConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *pacedConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		c.readBy.Store(0)
	} else {
		c.readBy.Store(t.UnixNano())
	}
	return nil
}

func (c *pacedConn) SetWriteDeadline(t time.Time) error {
	c.writeBy = t
	return nil
}
