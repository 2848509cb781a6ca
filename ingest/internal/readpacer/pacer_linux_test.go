package readpacer

import (
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// A round asks epoll once however many publishers have bytes. Readiness is
// level-triggered, so sockets whose goroutines have not read yet are reported
// again; a round that called until a short answer, with more sockets ready
// than its buffer held, never ended while none of them was read.
func TestRoundHearsEveryReadySocketOnce(t *testing.T) {
	const n = minEvents + 44
	p, err := New(time.Hour) // the loop's own ticks never come
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var pcs []*pacedConn
	defer func() {
		for _, pc := range pcs {
			pc.Close()
		}
		p.Close()
	}()
	for range n {
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		server, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		c, ok, err := p.Adopt(server)
		if !ok || err != nil {
			t.Fatalf("adopt: ok %v, %v", ok, err)
		}
		pc := c.(*pacedConn)
		pcs = append(pcs, pc)
		pc.waiting.Store(true)
		if _, err := client.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(50 * time.Millisecond) // the bytes reach every socket
	done := make(chan bool, 1)
	events := make([]unix.EpollEvent, minEvents)
	go func() { done <- p.round(&events) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("one round with %d sockets ready and unread did not end", n)
	}
	woken := 0
	for _, pc := range pcs {
		select {
		case <-pc.wake:
			woken++
		default:
		}
	}
	if woken != n {
		t.Fatalf("one round woke %d of %d connections with bytes", woken, n)
	}
}

// tcpPair is a connected loopback pair; the test closes both.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { server.Close() })
	return client, server
}

// newPacer makes a Pacer that the test's cleanup closes.
func newPacer(t *testing.T, interval time.Duration) *Pacer {
	t.Helper()
	p, err := New(interval)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// adoptPair adopts the server end of a new loopback pair.
func adoptPair(t *testing.T, p *Pacer) (client, c net.Conn) {
	t.Helper()
	client, server := tcpPair(t)
	c, ok, err := p.Adopt(server)
	if !ok || err != nil {
		t.Fatalf("adopt: ok %v, %v", ok, err)
	}
	return client, c
}

// An adopted connection reads what arrived since its last read once per tick,
// writes, honours its read deadline, ends with EOF when the peer hangs up, and
// gives its descriptor and the epoll set back once closed (ingest's
// TestPacedReadsReleaseEveryConnection counts the process's descriptors).
func TestAdoptedConnection(t *testing.T) {
	p := newPacer(t, 5*time.Millisecond)
	client, c := adoptPair(t, p)
	if p.Len() != 1 {
		t.Fatalf("Len %d after one Adopt", p.Len())
	}
	for _, b := range [][]byte{[]byte("one "), []byte("two")} {
		if _, err := client.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetDeadline(time.Now().Add(5 * time.Second)))
	got := make([]byte, 0, 16)
	buf := make([]byte, 16)
	for len(got) < 7 {
		n, err := c.Read(buf)
		must(err)
		got = append(got, buf[:n]...)
	}
	if string(got) != "one two" {
		t.Fatalf("read %q", got)
	}
	if _, err := c.Write([]byte("reply")); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := io.ReadFull(client, buf[:5]); err != nil || string(buf[:n]) != "reply" {
		t.Fatalf("peer read %q, %v", buf[:n], err)
	}

	// Silent past the read deadline: the next deadline scan ends the wait.
	must(c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)))
	if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent read: %v, want a deadline error", err)
	}
	must(c.SetReadDeadline(time.Time{}))
	client.Close()
	if _, err := c.Read(buf); err != io.EOF {
		t.Fatalf("after the peer closed: %v, want EOF", err)
	}
	must(c.Close())
	if pc := c.(*pacedConn); !pc.released {
		t.Fatal("descriptor kept after Close")
	}
	if _, err := c.Read(buf); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
	if p.Len() != 0 {
		t.Fatalf("Len %d after Close", p.Len())
	}
	p.Close()
	_, late := tcpPair(t)
	if _, ok, err := p.Adopt(late); ok || !errors.Is(err, ErrClosed) {
		t.Fatalf("Adopt after Close: ok %v, %v", ok, err)
	}
	if p.epfd != -1 {
		t.Fatal("epoll set kept after Close with no connection left")
	}
}

// Close from another goroutine ends a Read waiting for the next tick at once.
func TestCloseEndsWaitingRead(t *testing.T) {
	_, c := adoptPair(t, newPacer(t, time.Hour))
	done := make(chan error, 1)
	go func() {
		_, err := c.Read(make([]byte, 8))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	c.Close()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read still waiting after Close")
	}
}

// A connection that is not TCP (a test's pipe) is left where it is.
func TestAdoptLeavesPipes(t *testing.T) {
	p := newPacer(t, time.Hour)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	if c, ok, err := p.Adopt(a); ok || err != nil || c != a {
		t.Fatalf("pipe adopted: ok %v, %v", ok, err)
	}
}
