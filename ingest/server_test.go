package ingest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

func avcNALU(key bool, nalus ...[]byte) []byte {
	b := []byte{0x27, 1, 0, 0, 0}
	if key {
		b[0] = 0x17
	}
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

// waitFor polls cond for up to 5 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestCraftedMessages sends, after a good publish, each message that made
// gomedia's server panic or spin, and checks the connection either carries on
// (unsupported codecs) or is closed with a ProtocolError, within a bounded time.
func TestCraftedMessages(t *testing.T) {
	cp := loadCapture(t)
	h := newRecHandler()
	addr := startServer(t, &Server{Handler: h, Logger: testLogger(t)})

	type raw struct {
		typ     uint8
		payload []byte
	}
	// VP8 is a FourCC of the specification the outputs cannot carry.
	vp08 := append([]byte{0x90}, "vp08"...)
	vp08 = append(vp08, 1, 0, 0, 0, 0, 0x10, 1, 1, 1, 0, 0)
	ecma := rtmp.AppendAMF0(nil, "@setDataFrame")
	ecma = rtmp.AppendAMF0(ecma, "onMetaData")
	ecma = append(ecma, rtmp.AMF0ECMAArray, 0, 0, 0, 2)
	ecma = append(ecma, 0, 5, 'w', 'i', 'd', 't', 'h')
	ecma = rtmp.AppendAMF0(ecma, 640.0)
	numeric := rtmp.AppendAMF0(nil, 42.0)
	numeric = rtmp.AppendAMF0(numeric, 1.0)

	tests := []struct {
		name     string
		before   []raw // valid messages sent first (sequence headers)
		crafted  []raw
		rawBytes []byte // sent as is after the crafted messages
		closed   bool
		kind     string
		// when the connection survives: these follow and must arrive
		follow    []raw
		wantTrack int
	}{
		{name: "enhanced vp08 sequence start", crafted: []raw{{rtmp.MsgVideo, vp08}},
			follow: []raw{{rtmp.MsgVideo, cp.avcSeq}, {rtmp.MsgVideo, cp.avcKey}}, wantTrack: remux.TrackVideo},
		{name: "unknown video codec id", crafted: []raw{{rtmp.MsgVideo, []byte{0x1d, 0, 1, 2, 3}}},
			follow: []raw{{rtmp.MsgVideo, cp.avcSeq}, {rtmp.MsgVideo, cp.avcKey}}, wantTrack: remux.TrackVideo},
		{name: "speex audio", crafted: []raw{{rtmp.MsgAudio, []byte{0xb6, 1, 2, 3, 4}}},
			follow: []raw{{rtmp.MsgAudio, cp.aacSeq}, {rtmp.MsgAudio, cp.aacFrame}}, wantTrack: remux.TrackAudio},
		{name: "empty tag bodies", crafted: []raw{{rtmp.MsgAudio, nil}, {rtmp.MsgVideo, nil}},
			follow: []raw{{rtmp.MsgVideo, cp.avcSeq}, {rtmp.MsgVideo, cp.avcKey}}, wantTrack: remux.TrackVideo},
		{name: "numeric command name", crafted: []raw{{rtmp.MsgCommandAMF0, numeric}}, closed: true, kind: KindCommand},
		{name: "truncated ECMA array", crafted: []raw{{rtmp.MsgDataAMF0, ecma}}, closed: true, kind: KindAMF},
		{name: "NALU length past payload", before: []raw{{rtmp.MsgVideo, cp.avcSeq}},
			crafted: []raw{{rtmp.MsgVideo, append(avcNALU(true, []byte{0x65, 1, 2}), 0, 0, 0, 100, 0x41)}}, closed: true, kind: KindMedia},
		{name: "set chunk size 0", crafted: []raw{{rtmp.MsgSetChunkSize, []byte{0, 0, 0, 0}}}, closed: true, kind: KindChunk},
		{name: "set chunk size top bit", crafted: []raw{{rtmp.MsgSetChunkSize, []byte{0x80, 0, 0x10, 0}}}, closed: true, kind: KindChunk},
		// fmt 0 header on chunk stream 7 declaring a 16 MiB - 1 message.
		{name: "16 MiB declared message", rawBytes: []byte{7, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0, 0x17}, closed: true, kind: KindChunk},
		{name: "too many chunk streams", rawBytes: manyChunkStreams(70), closed: true, kind: KindChunk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			c := dialClient(t, addr)
			c.publish("live", "crafted")
			w := h.next(t)
			for _, m := range append(tc.before, tc.crafted...) {
				must(t, c.send(m.typ, 1, 0, m.payload))
			}
			if tc.rawBytes != nil {
				_, err := c.nc.Write(tc.rawBytes)
				must(t, err)
			}
			if tc.closed {
				c.expectClosed(5 * time.Second)
				w.wait(t)
				w.mu.Lock()
				defer w.mu.Unlock()
				var pe *ProtocolError
				if !errors.As(w.cause, &pe) || pe.Kind != tc.kind {
					t.Fatalf("Close cause %v, want a %q ProtocolError", w.cause, tc.kind)
				}
				if w.closes != 1 {
					t.Fatalf("Close called %d times", w.closes)
				}
			} else {
				for i, m := range tc.follow {
					must(t, c.send(m.typ, 1, uint32(i*20), m.payload))
				}
				waitFor(t, "a frame after the crafted message", func() bool {
					n, _ := w.count(tc.wantTrack)
					return n >= 1
				})
				must(t, c.command(1, "FCUnpublish", 5, nil, "crafted"))
				must(t, c.command(1, "deleteStream", 6, nil, 1.0))
				w.wait(t)
				if w.cause != nil {
					t.Fatalf("Close cause %v after a normal unpublish", w.cause)
				}
			}
			if d := time.Since(start); d > 8*time.Second {
				t.Fatalf("took %v", d)
			}
		})
	}
	t.Run("good client afterwards", func(t *testing.T) {
		c := dialClient(t, addr)
		c.publish("live", "after")
		h.next(t)
	})
}

// manyChunkStreams is n one-byte messages, each on its own chunk stream id.
func manyChunkStreams(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, 0, byte(i)) // fmt 0, 2-byte basic header: csid 64+i
		b = append(b, 0, 0, 0, 0, 0, 1, 18, 1, 0, 0, 0, rtmp.AMF0Null)
	}
	return b
}

func TestKick(t *testing.T) {
	h := newRecHandler()
	addr := startServer(t, &Server{Handler: h})
	c := dialClient(t, addr)
	c.publish("live", "kicked")
	w := h.next(t)
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.req.Kick()
		}()
	}
	wg.Wait()
	c.expectClosed(5 * time.Second)
	w.wait(t)
	time.Sleep(50 * time.Millisecond)
	w.req.Kick() // after the end: still harmless
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closes != 1 || !errors.Is(w.cause, ErrKicked) {
		t.Fatalf("Close called %d times with %v, want once with ErrKicked", w.closes, w.cause)
	}
}

func TestShutdownClosesWriters(t *testing.T) {
	h := newRecHandler()
	s := &Server{Handler: h}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	c := dialClient(t, ln.Addr().String())
	c.publish("live", "shutdown")
	w := h.next(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	must(t, s.Shutdown(ctx))
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	w.wait(t)
	if !errors.Is(w.cause, ErrServerClosed) || w.closes != 1 {
		t.Fatalf("Close %d times with %v", w.closes, w.cause)
	}
	if err := s.Serve(ln); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
}

func TestTimeouts(t *testing.T) {
	h := newRecHandler()
	addr := startServer(t, &Server{Handler: h, HandshakeTimeout: 200 * time.Millisecond, ReadTimeout: 300 * time.Millisecond})
	t.Run("handshake", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		must(t, err)
		defer nc.Close()
		// C0 and half of C1, then silence: the whole handshake is bounded.
		_, err = nc.Write(make([]byte, 1+rtmp.HandshakeSize/2))
		must(t, err)
		start := time.Now()
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 4096)
		for {
			if _, err := nc.Read(buf); err != nil {
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatal("server kept a stalled handshake open")
				}
				break
			}
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("closed after %v", d)
		}
	})
	t.Run("wrong version", func(t *testing.T) {
		nc, err := net.Dial("tcp", addr)
		must(t, err)
		defer nc.Close()
		_, err = nc.Write([]byte{6})
		must(t, err)
		nc.SetReadDeadline(time.Now().Add(2 * time.Second))
		if n, err := nc.Read(make([]byte, 10)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read %d, %v: want the connection closed", n, err)
		}
	})
	t.Run("idle publisher", func(t *testing.T) {
		c := dialClient(t, addr)
		c.publish("live", "idle")
		w := h.next(t)
		c.expectClosed(3 * time.Second)
		w.wait(t)
		if !errors.Is(w.cause, os.ErrDeadlineExceeded) {
			t.Fatalf("cause %v, want a deadline", w.cause)
		}
	})
}

func TestControlAndCommands(t *testing.T) {
	cp := loadCapture(t)
	h := newRecHandler()
	h.refuse["busy"] = errors.New("key busy")
	addr := startServer(t, &Server{Handler: h, WindowAckSize: 4096})

	t.Run("ping and acknowledgement", func(t *testing.T) {
		c := dialClient(t, addr)
		c.publish("live", "ctl")
		w := h.next(t)
		must(t, c.send(rtmp.MsgUserControl, 0, 0, []byte{0, rtmp.EventPingRequest, 0xde, 0xad, 0xbe, 0xef}))
		must(t, c.send(rtmp.MsgVideo, 1, 0, cp.avcSeq))
		for i := 0; i < 4; i++ {
			must(t, c.send(rtmp.MsgVideo, 1, uint32(i*33), cp.avcKey))
		}
		var pong, ack bool
		for !pong || !ack {
			m, err := c.r.Next()
			must(t, err)
			switch {
			case m.Type == rtmp.MsgUserControl && binary.BigEndian.Uint16(m.Payload) == rtmp.EventPingResponse:
				if binary.BigEndian.Uint32(m.Payload[2:]) != 0xdeadbeef {
					t.Fatalf("pong %x", m.Payload)
				}
				pong = true
			case m.Type == rtmp.MsgAck:
				if seq := binary.BigEndian.Uint32(m.Payload); seq < 4096 {
					t.Fatalf("acknowledged %d bytes, window is 4096", seq)
				}
				ack = true
			}
		}
		if n, keys := w.count(remux.TrackVideo); n != 4 || keys != 4 {
			waitFor(t, "4 key frames", func() bool { n, keys := w.count(remux.TrackVideo); return n == 4 && keys == 4 })
		}
	})
	t.Run("frame before sequence header is dropped", func(t *testing.T) {
		c := dialClient(t, addr)
		c.publish("live", "early")
		w := h.next(t)
		must(t, c.send(rtmp.MsgVideo, 1, 0, cp.avcKey))
		must(t, c.send(rtmp.MsgVideo, 1, 0, cp.avcSeq))
		must(t, c.send(rtmp.MsgVideo, 1, 40, cp.avcKey))
		waitFor(t, "one frame", func() bool { n, _ := w.count(remux.TrackVideo); return n == 1 })
		c.nc.Close()
		w.wait(t)
		if w.cause == nil {
			t.Fatal("EOF without unpublish closed the writer with a nil cause")
		}
		if n, _ := w.count(remux.TrackVideo); n != 1 {
			t.Fatalf("%d frames", n)
		}
	})
	t.Run("metadata as AMF0 and AMF3 data", func(t *testing.T) {
		c := dialClient(t, addr)
		c.publish("live", "meta")
		w := h.next(t)
		var md []byte
		md = rtmp.AppendAMF0(md, "@setDataFrame")
		md = rtmp.AppendAMF0(md, "onMetaData")
		md = rtmp.AppendAMF0(md, rtmp.ECMAArray{{Key: "width", Value: 1280.0}, {Key: "height", Value: 720.0}, {Key: "framerate", Value: 29.97},
			{Key: "videocodecid", Value: 7.0}, {Key: "videodatarate", Value: 2500.0}, {Key: "encoder", Value: "obs-output module"}})
		must(t, c.send(rtmp.MsgDataAMF0, 1, 0, md))
		md3 := append([]byte{0}, rtmp.AppendAMF0(rtmp.AppendAMF0(nil, "onMetaData"), rtmp.Object{{Key: "audiocodecid", Value: 10.0}, {Key: "audiodatarate", Value: 160.0}})...)
		must(t, c.send(rtmp.MsgDataAMF3, 1, 0, md3))
		waitFor(t, "two metadata", func() bool { w.mu.Lock(); defer w.mu.Unlock(); return len(w.metadata) == 2 })
		w.mu.Lock()
		defer w.mu.Unlock()
		want0 := remux.Metadata{HasVideo: true, Width: 1280, Height: 720, FrameRate: 29.97, VideoBitrate: 2500, Encoder: "obs-output module"}
		want1 := remux.Metadata{HasAudio: true, AudioBitrate: 160}
		if !reflect.DeepEqual(w.metadata[0], want0) || !reflect.DeepEqual(w.metadata[1], want1) {
			t.Fatalf("metadata %+v, want %+v and %+v", w.metadata, want0, want1)
		}
	})
	t.Run("busy key", func(t *testing.T) {
		c := dialClient(t, addr)
		must(t, c.command(0, "connect", 1, rtmp.Object{{Key: "app", Value: "live"}}))
		c.expectCommand("_result")
		must(t, c.command(0, "createStream", 2, nil))
		c.expectCommand("_result")
		must(t, c.command(1, "publish", 3, nil, "busy", "live"))
		st := c.expectCommand("onStatus")
		if code := rtmp.StatusCode(st); code != "NetStream.Publish.BadName" {
			t.Fatalf("code %q", code)
		}
		obj := st[3].(rtmp.Object)
		if d, _ := obj.GetString("description"); d != "key busy" {
			t.Fatalf("description %q", d)
		}
		c.expectClosed(5 * time.Second)
	})
	t.Run("play refused", func(t *testing.T) {
		c := dialClient(t, addr)
		must(t, c.command(0, "connect", 1, rtmp.Object{{Key: "app", Value: "live"}}))
		c.expectCommand("_result")
		must(t, c.command(1, "play", 0, nil, "x"))
		if code := rtmp.StatusCode(c.expectCommand("onStatus")); code != "NetStream.Play.Failed" {
			t.Fatalf("code %q", code)
		}
		c.expectClosed(5 * time.Second)
	})
	t.Run("unknown command", func(t *testing.T) {
		c := dialClient(t, addr)
		must(t, c.command(0, "connect", 1, rtmp.Object{{Key: "app", Value: "live"}}))
		c.expectCommand("_result")
		must(t, c.command(0, "frobnicate", 7, nil))
		if e := c.expectCommand("_error"); e[1] != 7.0 {
			t.Fatalf("_error %v", e)
		}
		must(t, c.command(0, "FCPublish", 8, nil, "s"))
		c.expectCommand("onFCPublish")
	})
}

// flakyListener fails its first Accept calls with errs, then accepts from ln.
type flakyListener struct {
	net.Listener
	errs []error
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if len(l.errs) > 0 {
		err := l.errs[0]
		l.errs = l.errs[1:]
		return nil, err
	}
	return l.Listener.Accept()
}

// TestServeSurvivesDescriptorExhaustion: an accept that fails for want of
// descriptors (HTTP clients holding them all) is waited out, and the next
// publisher is served.
func TestServeSurvivesDescriptorExhaustion(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	emfile := &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	srv := &Server{Handler: newRecHandler(), Logger: testLogger(t)}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(&flakyListener{Listener: ln, errs: []error{emfile, emfile}}) }()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The server answers a handshake only if it accepted the connection.
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c0c1 := make([]byte, 1+1536)
	c0c1[0] = 3
	if _, err := c.Write(c0c1); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1+1536)); err != nil {
		t.Fatalf("no handshake reply after two EMFILE accepts: %v", err)
	}
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
}
