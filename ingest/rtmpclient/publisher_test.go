package rtmpclient_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient/rtmptest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func body(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

// What the caller writes is what the server receives: type, timestamp (wraps,
// jumps back and forward, values needing the extended field) and bytes, empty
// bodies and messages larger than many chunks included.
func TestPublisherDeliversMessages(t *testing.T) {
	type send struct {
		video bool
		ts    uint32
		body  []byte
	}
	tests := []struct {
		name  string
		sends []send
	}{
		{"audio and video", []send{{true, 0, body(30, 1)}, {false, 0, body(7, 2)}, {false, 21, body(7, 3)}, {true, 33, body(9000, 4)}}},
		{"empty bodies", []send{{true, 0, nil}, {false, 0, nil}, {true, 33, body(5, 1)}}},
		{"big frame", []send{{true, 0, body(2<<20, 9)}, {true, 10, body(3, 1)}}},
		{"jump back", []send{{true, 10000, body(5, 1)}, {true, 5000, body(5, 2)}, {true, 5033, body(5, 3)}}},
		{"jump forward by minutes", []send{{true, 1000, body(5, 1)}, {true, 181000, body(5, 2)}}},
		{"extended timestamps", []send{{true, 0xfffffe, body(300, 1)}, {true, 0x1000020, body(5000, 2)}}},
		{"wrap at 2^32", []send{{true, 0xfffff000, body(5, 1)}, {true, 0xffffffdf, body(5000, 2)}, {true, 0x10, body(5, 3)}, {true, 0x31, body(5, 4)}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := rtmptest.NewServer(t, rtmptest.Options{Keep: true, FlashVer: "test/1"})
			p, err := rtmpclient.Dial(context.Background(), srv.URL("live")+"/key?token=abc&expires=9", rtmpclient.Options{FlashVer: "test/1", ChunkSize: 128})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range tc.sends {
				write := p.WriteAudio
				if s.video {
					write = p.WriteVideo
				}
				if err := write(s.ts, s.body); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			if srv.CleanEnds.Load() != 1 || srv.SetupErrors.Load() != 0 {
				t.Errorf("clean ends %d, setup errors %d", srv.CleanEnds.Load(), srv.SetupErrors.Load())
			}
			if names := srv.Names(); len(names) != 1 || names[0] != "key?token=abc&expires=9" {
				t.Errorf("published names %q", names)
			}
			got := srv.Messages()
			if len(got) != len(tc.sends) {
				t.Fatalf("server got %d messages, sent %d", len(got), len(tc.sends))
			}
			for i, s := range tc.sends {
				typ := uint8(8)
				if s.video {
					typ = 9
				}
				if g := got[i]; g.Type != typ || g.Timestamp != s.ts || g.StreamID != 1 || !bytes.Equal(g.Payload, s.body) {
					t.Errorf("message %d: type %d ts %#x stream %d len %d; want type %d ts %#x len %d", i, g.Type, g.Timestamp, g.StreamID, len(g.Payload), typ, s.ts, len(s.body))
				}
			}
		})
	}
}

func TestSetDataFrame(t *testing.T) {
	srv := rtmptest.NewServer(t, rtmptest.Options{Keep: true})
	p, err := rtmpclient.Dial(context.Background(), srv.URL("live")+"/meta", rtmpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetDataFrame(map[string]any{"width": 640, "videocodecid": 7, "encoder": "x"}); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 || msgs[0].Type != 18 {
		t.Fatalf("messages %+v", msgs)
	}
	// "@setDataFrame", "onMetaData", then an object with sorted keys.
	want := "\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData\x03\x00\x07encoder\x02\x00\x01x\x00\x0cvideocodecid\x00\x40\x1c\x00\x00\x00\x00\x00\x00\x00\x05width\x00\x40\x84\x00\x00\x00\x00\x00\x00\x00\x00\x09"
	if string(msgs[0].Payload) != want {
		t.Errorf("payload %q\nwant    %q", msgs[0].Payload, want)
	}
}

func TestDialErrors(t *testing.T) {
	refusing := rtmptest.NewServer(t, rtmptest.Options{Refuse: true})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"refused publish", refusing.URL("live") + "/k", "publish refused: NetStream.Publish.BadName"},
		{"nothing listening", "rtmp://" + closed + "/live/k", "dial:"},
		{"not rtmp", "http://127.0.0.1/live/k", "want rtmp"},
		{"no stream", "rtmp://127.0.0.1/live", "want rtmp://HOST[:PORT]/APP/STREAM"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := rtmpclient.Dial(context.Background(), tc.url, rtmpclient.Options{Timeout: 2 * time.Second})
			if err == nil {
				p.Close()
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
	var se *rtmpclient.StatusError
	_, err = rtmpclient.Dial(context.Background(), refusing.URL("live")+"/k", rtmpclient.Options{})
	if !errors.As(err, &se) || se.Code != "NetStream.Publish.BadName" {
		t.Errorf("error %v, want a *StatusError with the code", err)
	}
}

// A server that never answers: the setup ends at the timeout, or when ctx ends.
func TestDialSilentServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	defer func() {
		ln.Close()
		for c := range accepted {
			c.Close()
		}
	}()
	url := "rtmp://" + ln.Addr().String() + "/live/k"
	began := time.Now()
	if _, err := rtmpclient.Dial(context.Background(), url, rtmpclient.Options{Timeout: 300 * time.Millisecond}); err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("error %v, want a handshake timeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := rtmpclient.Dial(ctx, url, rtmpclient.Options{}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v, want the context's", err)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Errorf("took %s", d)
	}
}

// A server that drops the connection: Done closes, writes fail, Close is quick.
func TestServerDropsConnection(t *testing.T) {
	srv := rtmptest.NewServer(t, rtmptest.Options{DropAfter: 3})
	p, err := rtmpclient.Dial(context.Background(), srv.URL("live")+"/k", rtmpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := p.WriteVideo(uint32(i*33), body(100, 1)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("Done not closed after the server dropped the connection")
	}
	if !errors.Is(p.Err(), io.EOF) {
		t.Errorf("Err %v, want EOF", p.Err())
	}
	var werr error
	for i := range 100 {
		if werr = p.WriteVideo(uint32(100+i*33), body(64<<10, 2)); werr != nil {
			break
		}
	}
	if werr == nil {
		t.Error("writes to a closed connection kept succeeding")
	}
	began := time.Now()
	p.Close()
	if d := time.Since(began); d > time.Second {
		t.Errorf("Close took %s", d)
	}
}

// Cancelling the session's context unblocks and fails writes.
func TestContextEndsSession(t *testing.T) {
	srv := rtmptest.NewServer(t, rtmptest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	p, err := rtmpclient.Dial(ctx, srv.URL("live")+"/k", rtmpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := p.WriteAudio(0, body(10, 1)); !errors.Is(err, context.Canceled) {
		t.Errorf("write after cancel: %v", err)
	}
	p.Close()
}

// Steady-state writes do not allocate.
func TestWriteDoesNotAllocate(t *testing.T) {
	srv := rtmptest.NewServer(t, rtmptest.Options{})
	p, err := rtmpclient.Dial(context.Background(), srv.URL("live")+"/k", rtmpclient.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	v, a := body(20000, 1), body(300, 2)
	ts := uint32(0)
	allocs := testing.AllocsPerRun(200, func() {
		ts += 33
		if err := p.WriteVideo(ts, v); err != nil {
			t.Fatal(err)
		}
		if err := p.WriteAudio(ts, a); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.1f allocations per audio and video write, want 0", allocs)
	}
	if p.WireBytes() < 200*20300 {
		t.Errorf("wire bytes %d", p.WireBytes())
	}
}

// A server that stops reading makes a write fail within the write timeout,
// though the deadline is moved only every half timeout.
func TestWriteTimeoutOnStalledServer(t *testing.T) {
	srv := rtmptest.NewServer(t, rtmptest.Options{StallAfter: 5})
	const timeout = 400 * time.Millisecond
	p, err := rtmpclient.Dial(context.Background(), srv.URL("live")+"/stall", rtmpclient.Options{WriteTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	frame := body(256<<10, 3)
	var lastOK time.Time
	for i := range 10000 {
		start := time.Now()
		if err := p.WriteVideo(uint32(i*33), frame); err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() {
				t.Fatalf("write %d: %v, want a timeout", i, err)
			}
			if stuck := time.Since(start); stuck > timeout+200*time.Millisecond {
				t.Fatalf("the stalled write took %v to fail, timeout %v", stuck, timeout)
			}
			t.Logf("write %d failed after %v blocked (last good write %v before): %v", i, time.Since(start), time.Since(lastOK), err)
			return
		}
		lastOK = time.Now()
		time.Sleep(time.Duration(i%3) * 50 * time.Millisecond) // let the deadline age between writes
	}
	t.Fatal("10000 writes of 256 KiB to a server that reads nothing all succeeded")
}
