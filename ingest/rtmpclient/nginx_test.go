package rtmpclient

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/testkit"
)

// The client against a server that shares no code with it: nginx-rtmp records
// what a Publisher sends with small chunks (fmt 3 continuations everywhere),
// header compression, and timestamps and a delta in the extended field (which
// continuation chunks repeat), and the recording must hold the same frames at
// the same relative times. (rtmptest
// and rtmpgate use our own rtmp codec, which cannot catch its own mirror-image
// bugs.)
func TestPublishToNginxRTMP(t *testing.T) {
	testkit.NeedTools(t, "nginx")
	module := "/usr/lib/nginx/modules/ngx_rtmp_module.so"
	if _, err := os.Stat(module); err != nil {
		testkit.Missing(t, "libnginx-mod-rtmp", err)
	}
	dir, clip := makeClip(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rec := filepath.Join(dir, "rec")
	if err := os.Mkdir(rec, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`load_module %s;
daemon off;
master_process off;
user root;
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 16; }
rtmp {
  server {
    listen %s;
    application live {
      live on;
      record all;
      record_path %s;
      record_unique off;
    }
  }
}
`, module, dir, addr, rec)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	ngx := exec.Command("nginx", "-p", dir, "-c", confPath)
	ngx.Stdout, ngx.Stderr = &out, &out
	if err := ngx.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = ngx.Process.Signal(syscall.SIGQUIT)
		_ = ngx.Wait()
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var p *Publisher
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if p, err = Dial(ctx, "rtmp://"+addr+"/live/rec", Options{ChunkSize: 128}); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("publish to nginx-rtmp: %v\n%s", err, out.String())
		}
	}
	// The clip's times start past 2^24 ms, so each chunk stream's first (fmt 0)
	// header has an extended timestamp, and halfway they jump 2^24 ms forward,
	// so the next header on each has an extended delta.
	const base, jump = 0x1000000, 0x1000000
	var sent []Tag
	for i, tg := range clip.Tags {
		tg.Timestamp += base
		if i >= len(clip.Tags)/2 {
			tg.Timestamp += jump
		}
		if tg.Type == TagVideo {
			p.AppendVideo(tg.Timestamp, tg.Body)
		} else {
			p.AppendAudio(tg.Timestamp, tg.Body)
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		sent = append(sent, tg)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}

	// nginx finishes the recording when the publisher leaves.
	var got *Clip
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		got, err = ReadFLV(filepath.Join(rec, "rec.flv"))
		if err == nil && got.Video+got.Audio >= len(sent) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording: %v (%d tags of %d)\n%s", err, tagCount(got), len(sent), out.String())
		}
	}
	// The recording starts at the first frame sent, at nginx's own epoch: every
	// frame must come back in order with its bytes and its distance from the
	// first. nginx writes the sequence headers again from its codec state, so
	// those only have to be there.
	frames := func(c []Tag) (out []Tag, configs [][]byte) {
		for _, tg := range c {
			if tg.Config {
				configs = append(configs, tg.Body)
			} else {
				out = append(out, tg)
			}
		}
		return out, configs
	}
	gotFrames, gotConfigs := frames(got.Tags)
	sentFrames, sentConfigs := frames(sent)
	if len(gotFrames) != len(sentFrames) {
		t.Fatalf("recorded %d frames, sent %d", len(gotFrames), len(sentFrames))
	}
	for i, g := range gotFrames {
		s := sentFrames[i]
		if g.Type != s.Type || !bytes.Equal(g.Body, s.Body) || g.Timestamp-got.Tags[0].Timestamp != s.Timestamp-sent[0].Timestamp {
			t.Fatalf("frame %d: recorded type %d at +%d ms (%d bytes), sent type %d at +%d ms (%d bytes)",
				i, g.Type, g.Timestamp-got.Tags[0].Timestamp, len(g.Body), s.Type, s.Timestamp-sent[0].Timestamp, len(s.Body))
		}
	}
	for _, sc := range sentConfigs {
		if !slices.ContainsFunc(gotConfigs, func(b []byte) bool { return bytes.Equal(b, sc) }) {
			t.Fatalf("sequence header % x not recorded", sc)
		}
	}
}

func tagCount(c *Clip) int {
	if c == nil {
		return 0
	}
	return len(c.Tags)
}
