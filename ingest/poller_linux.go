package ingest

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// readPoller paces the reads of every publishing connection: one goroutine
// wakes once per interval, asks one epoll set which sockets have bytes, and
// wakes just those connections' goroutines, each of which then reads once and
// takes everything that arrived since its last read.
//
// Why not Go's netpoller, which every net.Conn uses: it wakes a connection's
// goroutine for each segment an encoder writes (a frame at a time, ~70 a second
// per stream), and each wakeup costs a read that finds the frame plus a read that
// finds nothing, and on an idle machine a sleeping CPU woken to do it. Reading
// on a shared tick makes that one wakeup per interval for all connections, and
// a read only where epoll says there are bytes (it is level-triggered, so bytes
// a busy connection has not read yet are reported again on the next tick).
//
// A connection is moved here once it publishes: its descriptor is duplicated and
// the net.Conn closed, which takes the socket out of Go's netpoller (else every
// segment would still wake the runtime), and it is read and written with plain
// non-blocking system calls from then on. Set up and handshakes stay on net.Conn.
type readPoller struct {
	interval time.Duration
	epfd     int

	mu      sync.Mutex
	conns   map[int32]*polledConn // by descriptor; entries leave before the descriptor is closed
	closed  bool
	started bool
	idle    chan struct{} // signalled when the first connection arrives while the loop waits for one
	done    chan struct{} // closed by close: the loop ends
	wg      sync.WaitGroup
}

// deadlineScanEvery is how often the loop looks for connections waiting past
// their read deadline; a silent publisher is closed at most this late.
const deadlineScanEvery = 100 * time.Millisecond

// minEvents is the smallest epoll_wait buffer; it grows with the set, so one
// call per round hears every publisher.
const minEvents = 256

func newReadPoller(interval time.Duration) (*readPoller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("ingest: epoll_create1: %w", err)
	}
	return &readPoller{
		interval: interval,
		epfd:     epfd,
		conns:    make(map[int32]*polledConn),
		idle:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}, nil
}

// adopt moves nc to the poller and returns the connection to use from now on,
// with ok true. On an error nc may be closed, and comes back with ok false. A
// connection that is not TCP (a test's pipe) comes back as it is, with ok false.
func (p *readPoller) adopt(nc net.Conn) (net.Conn, bool, error) {
	sc, isSys := nc.(syscall.Conn)
	if _, isTCP := nc.(*net.TCPConn); !isTCP || !isSys {
		return nc, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nc, false, err
	}
	fd := -1
	var dupErr error
	if err := rc.Control(func(s uintptr) {
		fd, dupErr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return nc, false, err
	}
	if dupErr != nil {
		return nc, false, fmt.Errorf("ingest: dup: %w", dupErr)
	}
	pc := &polledConn{
		poller: p,
		fd:     fd,
		local:  nc.LocalAddr(),
		remote: nc.RemoteAddr(),
		wake:   make(chan struct{}, 1),
		stopCh: make(chan struct{}),
	}
	// Closing nc removes its descriptor from Go's netpoller; the socket stays open
	// through the duplicate, which shares its non-blocking mode.
	nc.Close()

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		unix.Close(fd)
		return nc, false, ErrServerClosed
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return nc, false, fmt.Errorf("ingest: epoll_ctl add: %w", err)
	}
	p.conns[int32(fd)] = pc
	if !p.started {
		p.started = true
		p.wg.Add(1)
		go p.loop()
	}
	if len(p.conns) == 1 {
		select {
		case p.idle <- struct{}{}:
		default:
		}
	}
	return pc, true, nil
}

// forget removes pc's descriptor from the set; called before the descriptor is
// closed so that a number reused by a later socket is never mistaken for it.
func (p *readPoller) forget(pc *polledConn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[int32(pc.fd)] != pc {
		return
	}
	delete(p.conns, int32(pc.fd))
	if p.epfd < 0 {
		return
	}
	var ev unix.EpollEvent
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, pc.fd, &ev)
	if p.closed && len(p.conns) == 0 {
		unix.Close(p.epfd)
		p.epfd = -1
	}
}

func (p *readPoller) loop() {
	defer p.wg.Done()
	events := make([]unix.EpollEvent, minEvents)
	ticker := time.NewTicker(p.interval)
	defer ticker.Stop()
	var lastScan time.Time
	for {
		select {
		case <-p.done:
			return
		case now := <-ticker.C:
			if !p.round(&events) {
				// No connection: sleep until one comes rather than ticking idle.
				ticker.Stop()
				select {
				case <-p.done:
					return
				case <-p.idle:
				}
				ticker.Reset(p.interval)
				continue
			}
			if now.Sub(lastScan) >= deadlineScanEvery {
				lastScan = now
				p.wakeOverdue(now)
			}
		}
	}
}

// round wakes every waiting connection whose socket has bytes (or an end); it
// reports whether any connection is registered.
func (p *readPoller) round(events *[]unix.EpollEvent) bool {
	// One call a round. The set is level-triggered, so a socket whose
	// goroutine has not read yet is reported again: calling until a short
	// answer, as this once did, spun on the same ready sockets while their
	// goroutines waited for the CPU the spinning took, and at 1000 publishers
	// the backlog fed itself until publishers timed out. A buffer as large as
	// the set hears every socket in the one call.
	p.mu.Lock()
	if n := len(p.conns); n > len(*events) {
		*events = make([]unix.EpollEvent, n+n/4)
	}
	p.mu.Unlock()
	n, err := unix.EpollWait(p.epfd, *events, 0)
	for err == unix.EINTR {
		n, err = unix.EpollWait(p.epfd, *events, 0)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, ev := range (*events)[:max(n, 0)] {
		if pc := p.conns[ev.Fd]; pc != nil {
			pc.signal()
		}
	}
	return len(p.conns) > 0
}

// wakeOverdue wakes connections waiting past their read deadline, whose Read
// then returns os.ErrDeadlineExceeded.
func (p *readPoller) wakeOverdue(now time.Time) {
	ns := now.UnixNano()
	p.mu.Lock()
	for _, pc := range p.conns {
		if d := pc.readBy.Load(); d != 0 && d <= ns {
			pc.signal()
		}
	}
	p.mu.Unlock()
}

// close ends the loop; connections still registered keep their descriptors
// until their own goroutines close them (Server.closeAll stops them first).
func (p *readPoller) close() {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	p.wg.Wait()
	p.mu.Lock()
	if len(p.conns) == 0 && p.epfd >= 0 {
		unix.Close(p.epfd)
		p.epfd = -1
	}
	p.mu.Unlock()
}

// polledConn is a publishing connection read through the readPoller. Read and
// Write are called by the connection's own goroutine only; Close may come from
// any goroutine (Kick, Shutdown) and the descriptor is released only when no
// system call is using it.
type polledConn struct {
	poller        *readPoller
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
func (c *polledConn) signal() {
	if c.waiting.CompareAndSwap(true, false) {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

var errPolledClosed = fmt.Errorf("ingest: use of closed connection: %w", net.ErrClosed)

// enter marks a system call on fd; false if the connection is closed.
func (c *polledConn) enter() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	c.busy = true
	return true
}

func (c *polledConn) exit() {
	c.mu.Lock()
	c.busy = false
	if c.closed {
		c.releaseLocked()
	}
	c.mu.Unlock()
}

func (c *polledConn) releaseLocked() {
	if c.released {
		return
	}
	c.released = true
	c.poller.forget(c)
	unix.Close(c.fd)
}

// Read waits for the poller's next signal, unless the last read filled its
// buffer, and then reads once.
func (c *polledConn) Read(b []byte) (int, error) {
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
			return 0, errPolledClosed
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
func (c *polledConn) waitReadable() error {
	c.waiting.Store(true)
	if c.overdue() {
		c.waiting.Store(false)
		return os.ErrDeadlineExceeded
	}
	select {
	case <-c.stopCh:
		c.waiting.Store(false)
		return errPolledClosed
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

func (c *polledConn) overdue() bool {
	d := c.readBy.Load()
	return d != 0 && time.Now().UnixNano() >= d
}

// Write writes all of b, waiting for room (rare: replies to a publisher are a
// few bytes) up to the write deadline.
func (c *polledConn) Write(b []byte) (int, error) {
	written := 0
	for written < len(b) {
		if !c.enter() {
			return written, errPolledClosed
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
func (c *polledConn) waitWritable() error {
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
			return errPolledClosed
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
func (c *polledConn) Close() error {
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

func (c *polledConn) LocalAddr() net.Addr  { return c.local }
func (c *polledConn) RemoteAddr() net.Addr { return c.remote }

func (c *polledConn) SetDeadline(t time.Time) error {
	c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *polledConn) SetReadDeadline(t time.Time) error {
	if t.IsZero() {
		c.readBy.Store(0)
	} else {
		c.readBy.Store(t.UnixNano())
	}
	return nil
}

func (c *polledConn) SetWriteDeadline(t time.Time) error {
	c.writeBy = t
	return nil
}
