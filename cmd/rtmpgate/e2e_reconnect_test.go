package main

import (
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmpclient"
)

// reconnectingPublisher publishes a clip's tags at real time with
// rtmpclient, announcing the Enhanced RTMP Reconnect capability. When the
// gateway asks it to reconnect it does what the specification asks of a
// client: it publishes up to the next video key frame, unpublishes, connects
// to the URL the request named and publishes again from that key frame,
// metadata and sequence headers first. onTag runs before each tag is sent.
func reconnectingPublisher(t *testing.T, url string, c *rtmpclient.Clip, onTag func(ts uint32)) (moves int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(u string) *rtmpclient.Publisher {
		p, err := rtmpclient.Dial(ctx, u, rtmpclient.Options{Reconnect: true})
		if err != nil {
			t.Fatal(err)
		}
		if c.Meta != nil {
			noErr(t, p.WriteMetadata(c.Meta))
		}
		for _, tg := range c.Tags {
			if tg.Config {
				noErr(t, write(p, tg))
			}
		}
		return p
	}
	p := dial(url)
	begin := time.Now()
	for _, tg := range c.Tags {
		if tg.Config {
			continue
		}
		if d := time.Until(begin.Add(time.Duration(tg.Timestamp) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		onTag(tg.Timestamp)
		select {
		case <-p.ReconnectRequested():
			if tg.Type == rtmpclient.TagVideo && tg.Body[0]>>4 == 1 {
				to, err := p.ReconnectURL()
				noErr(t, err)
				noErr(t, p.Close())
				moves++
				p = dial(to)
			}
		default:
		}
		noErr(t, write(p, tg))
	}
	noErr(t, p.Close())
	return moves
}

func write(p *rtmpclient.Publisher, tg rtmpclient.Tag) error {
	if tg.Type == rtmpclient.TagVideo {
		return p.WriteVideo(tg.Timestamp, tg.Body)
	}
	return p.WriteAudio(tg.Timestamp, tg.Body)
}

// TestAPIReconnectMovesPublisher: POST .../reconnect with the operator's token
// sends the publisher a ReconnectRequest; it moves (here back to the same
// gateway) at its next key frame, and the stream's playlists show it as one
// discontinuity between two runs of segments, every segment starting on a
// key frame.
func TestAPIReconnectMovesPublisher(t *testing.T) {
	const token = "0123456789abcdef0123"
	g := startGateway(t, "-api-token", token)
	c := avClip(t, "reconnect", "320x240", 8, 30)
	asked := false
	moves := reconnectingPublisher(t, g.ingestURL("move"), c, func(ts uint32) {
		if ts < 3000 || asked {
			return
		}
		asked = true
		req, _ := http.NewRequest(http.MethodPost, "http://"+g.httpAddr+"/api/streams/live/move/reconnect", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusAccepted {
			t.Fatalf("POST reconnect: status %d", res.StatusCode)
		}
	})
	if moves != 1 {
		t.Fatalf("%d moves, want 1", moves)
	}
	pl := waitPlaylist(t, g.tsPlaylistURL("move"), 10*time.Second, ended)
	disc := 0
	for _, s := range pl.segments {
		if s.discontinuity {
			disc++
		}
	}
	if disc != 1 {
		t.Fatalf("%d discontinuities, want 1:\n%s", disc, pl.raw)
	}
	if n := strings.Count(g.logs.String(), `"message":"reconnect requested"`); n != 1 {
		t.Fatalf("%d reconnect requests logged", n)
	}
}

// TestShutdownAsksPublishersToReconnect: on SIGTERM the gateway sends the
// ReconnectRequest to a publisher that announced the capability and keeps
// ingesting until it leaves, then exits 0 well within shutdown_timeout.
func TestShutdownAsksPublishersToReconnect(t *testing.T) {
	g := startGateway(t, "-shutdown-timeout", "20s")
	c := avClip(t, "reconnect", "320x240", 8, 30)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	p, err := rtmpclient.Dial(ctx, g.ingestURL("leaving"), rtmpclient.Options{Reconnect: true})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	var signalled time.Time
	for _, tg := range c.Tags {
		if d := time.Until(begin.Add(time.Duration(tg.Timestamp) * time.Millisecond)); d > 0 {
			time.Sleep(d)
		}
		if tg.Timestamp >= 2000 && signalled.IsZero() {
			signalled = time.Now()
			noErr(t, g.cmd.Process.Signal(syscall.SIGTERM))
		}
		select {
		case <-p.ReconnectRequested():
			noErr(t, p.Close())
			select {
			case <-g.exited:
			case <-time.After(5 * time.Second):
				t.Fatal("the gateway did not exit within 5 s of the publisher leaving")
			}
			if !strings.Contains(g.logs.String(), "shutdown: publishers asked to reconnect") {
				t.Fatal("no shutdown reconnect log line")
			}
			t.Logf("asked and gone %v after SIGTERM", time.Since(signalled).Round(time.Millisecond))
			return
		default:
		}
		noErr(t, write(p, tg))
	}
	t.Fatal("no ReconnectRequest by the end of the clip")
}

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
