// Package readpacer paces the reads of many long-lived TCP connections on Linux:
// one goroutine asks epoll once per interval which sockets have bytes and wakes
// only those connections' readers. Elsewhere New returns no Pacer and
// connections stay on Go's netpoller.
package readpacer

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Pacer paces the reads of every connection it adopted: one goroutine
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
// A connection is moved here by Adopt (ingest does so once it publishes): its
// descriptor is duplicated and the net.Conn closed, which takes the socket out of Go's netpoller (else every
// segment would still wake the runtime), and it is read and written with plain
// non-blocking system calls from then on.
type Pacer struct {
	interval time.Duration
	epfd     int

	mu      sync.Mutex
	conns   map[int32]*pacedConn // by descriptor; entries leave before the descriptor is closed
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

// ErrClosed is Adopt's error once Close ran.
var ErrClosed = errors.New("readpacer: closed")

// New makes a Pacer that reads once per interval; its goroutine starts with the
// first connection adopted and ends with Close.
func New(interval time.Duration) (*Pacer, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("readpacer: epoll_create1: %w", err)
	}
	return &Pacer{
		interval: interval,
		epfd:     epfd,
		conns:    make(map[int32]*pacedConn),
		idle:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}, nil
}

// Adopt moves nc to the pacer and returns the connection to use from now on,
// with ok true. On an error nc may be closed, and comes back with ok false. A
// connection that is not TCP (a test's pipe) comes back as it is, with ok false.
func (p *Pacer) Adopt(nc net.Conn) (net.Conn, bool, error) {
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
		return nc, false, fmt.Errorf("readpacer: dup: %w", dupErr)
	}
	pc := &pacedConn{
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
		return nc, false, ErrClosed
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(fd)}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return nc, false, fmt.Errorf("readpacer: epoll_ctl add: %w", err)
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
func (p *Pacer) forget(pc *pacedConn) {
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

func (p *Pacer) loop() {
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
func (p *Pacer) round(events *[]unix.EpollEvent) bool {
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
func (p *Pacer) wakeOverdue(now time.Time) {
	ns := now.UnixNano()
	p.mu.Lock()
	for _, pc := range p.conns {
		if d := pc.readBy.Load(); d != 0 && d <= ns {
			pc.signal()
		}
	}
	p.mu.Unlock()
}

// Len is the number of connections adopted and not yet closed.
func (p *Pacer) Len() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close ends the loop; connections still registered keep their descriptors
// until their owners close them (ingest's Server stops them first).
func (p *Pacer) Close() {
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
