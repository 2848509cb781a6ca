package httpserve_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/httpserve"
	"github.com/rtmpgate/rtmpgate/internal/test"
	"github.com/rtmpgate/rtmpgate/packager"
)

// liveFeed is streamtest's live/ll stream, served.
type liveFeed struct {
	*test.Live
	t   *testing.T
	srv *httptest.Server
}

func newLiveFeed(t *testing.T, cfg packager.Config) *liveFeed {
	t.Helper()
	f := &liveFeed{Live: test.NewLive(t, cfg), t: t}
	f.srv = httptest.NewServer(httpserve.New(f.Hub, httpserve.Config{}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *liveFeed) publish()               { f.Publish() }
func (f *liveFeed) feed(ms int64) int      { return f.Feed(ms) }
func (f *liveFeed) url(path string) string { return f.srv.URL + "/live/ll/" + path }

func (f *liveFeed) snap() *packager.Snapshot {
	st, err := f.Hub.Stream("live", "ll")
	if err != nil {
		f.t.Fatal(err)
	}
	return st.Snapshot()
}

var partRe = regexp.MustCompile(`#EXT-X-PART:DURATION=[0-9.]+,URI="([^"]+)"`)

// hinted returns the epoch, msn and part index the playlist's preload hint names.
var hinted = test.Hinted

type result struct {
	status int
	body   string
	took   time.Duration
	err    error
	res    *http.Response
}

func getAsync(ctx context.Context, url string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		start := time.Now()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		res, err := client.Do(req)
		if err != nil {
			ch <- result{err: err, took: time.Since(start)}
			return
		}
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		ch <- result{status: res.StatusCode, body: string(b), took: time.Since(start), err: err, res: res}
	}()
	return ch
}

func waitGauge(t *testing.T, f *liveFeed, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, _ := scrape(t, f.srv.URL+"/metrics")
		if m[name] == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v, want %v", name, m[name], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestBlockingReload checks RFC 8216bis blocking playlist reload over HTTP: a
// request for the next part waits and is answered with it as soon as it is cut;
// one for a segment far ahead is refused at once; one whose client goes away
// frees its slot at once; malformed directives are refused.
func TestBlockingReload(t *testing.T) {
	f := newLiveFeed(t, packager.Config{})
	f.feed(4300)
	_, pl := get(t, f.url("v/index.m3u8"), nil)
	epoch, msn, part := hinted(t, pl)
	if msn != 2 || part != 1 {
		t.Fatalf("hint %d.%d after 4.3 s, want 2.1:\n%s", msn, part, pl)
	}

	t.Run("waits for the next part", func(t *testing.T) {
		ch := getAsync(context.Background(), f.url(fmt.Sprintf("v/index.m3u8?_HLS_msn=%d&_HLS_part=%d", msn, part)))
		waitGauge(t, f, "rtmpgate_playlist_blocking_waits", 1)
		select {
		case r := <-ch:
			t.Fatalf("answered before the part existed: %d", r.status)
		case <-time.After(100 * time.Millisecond):
		}
		f.feed(4500) // the part [4200, 4400) is cut by the frame at 4400
		r := <-ch
		want := fmt.Sprintf(`URI="%s-%d.%d.m4s"`, epoch, msn, part)
		if r.err != nil || r.status != 200 || !strings.Contains(r.body, want) {
			t.Fatalf("status %d err %v, want the playlist with %s:\n%s", r.status, r.err, want, r.body)
		}
		waitGauge(t, f, "rtmpgate_playlist_blocking_waits", 0)
	})

	t.Run("hinted part waits then serves", func(t *testing.T) {
		_, pl := get(t, f.url("v/index.m3u8"), nil)
		epoch, msn, part := hinted(t, pl)
		path := fmt.Sprintf("v/%s-%d.%d.m4s", epoch, msn, part)
		ch := getAsync(context.Background(), f.url(path))
		waitGauge(t, f, "rtmpgate_media_blocking_waits", 1)
		f.feed(4700)
		r := <-ch
		obj, ok := f.snap().Object(path)
		if r.err != nil || r.status != 200 || !ok || r.body != string(obj.Data) {
			t.Fatalf("status %d err %v served %v: the part's bytes expected", r.status, r.err, ok)
		}
	})

	for _, tc := range []struct {
		name, query string
		status      int
	}{
		{"segment three ahead", "_HLS_msn=5", 400},
		{"part far ahead", "_HLS_msn=2&_HLS_part=40", 400}, // beyond 3 s of 200 ms parts
		{"part without msn", "_HLS_part=1", 400},
		{"not a number", "_HLS_msn=x", 400},
		{"already there", "_HLS_msn=1", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			res, body := get(t, f.url("v/index.m3u8?"+tc.query), nil)
			if res.StatusCode != tc.status || time.Since(start) > time.Second {
				t.Fatalf("status %d after %v, want %d at once: %s", res.StatusCode, time.Since(start), tc.status, body)
			}
		})
	}

	t.Run("client gone frees at once", func(t *testing.T) {
		before := runtime.NumGoroutine()
		ctx, cancel := context.WithCancel(context.Background())
		const n = 50
		var chs []<-chan result
		for i := 0; i < n; i++ {
			chs = append(chs, getAsync(ctx, f.url("v/index.m3u8?_HLS_msn=3&_HLS_part=0")))
		}
		waitGauge(t, f, "rtmpgate_playlist_blocking_waits", n)
		cancel()
		for _, ch := range chs {
			if r := <-ch; r.err == nil {
				t.Fatalf("request answered %d after its client went away", r.status)
			}
		}
		waitGauge(t, f, "rtmpgate_playlist_blocking_waits", 0)
		client.CloseIdleConnections()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before+5 {
			if time.Now().After(deadline) {
				t.Fatalf("goroutines %d, %d before the requests", runtime.NumGoroutine(), before)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("delta update", func(t *testing.T) {
		_, full := get(t, f.url("v/index.m3u8?_HLS_skip=YES"), nil)
		if strings.Contains(full, "EXT-X-SKIP") {
			t.Fatalf("skipped with a window shorter than CAN-SKIP-UNTIL:\n%s", full)
		}
	})

	// hls.js outside its low-latency mode reloads with the segment being
	// produced and the highest part index earlier segments had (9 here): within
	// RFC 8216bis's Advance Part Limit (3 s of parts), so held until the segment
	// completes, not refused; a 400 to it was a fatal playlist error in hls.js.
	t.Run("part ahead within the limit waits", func(t *testing.T) {
		ch := getAsync(context.Background(), f.url("v/index.m3u8?_HLS_msn=2&_HLS_part=9"))
		waitGauge(t, f, "rtmpgate_playlist_blocking_waits", 1)
		f.feed(6100) // the keyframe at 6000 closes segment 2 with parts 0 to 9
		r := <-ch
		want := fmt.Sprintf("%s-2.9.m4s", epoch)
		if r.err != nil || r.status != 200 || !strings.Contains(r.body, want) {
			t.Fatalf("status %d err %v, want the playlist with %s:\n%s", r.status, r.err, want, r.body)
		}
	})
}

// TestDeltaUpdate checks _HLS_skip on a window longer than CAN-SKIP-UNTIL.
func TestDeltaUpdate(t *testing.T) {
	f := newLiveFeed(t, packager.Config{WindowSegments: 10})
	f.feed(20300)
	_, full := get(t, f.url("v/index.m3u8"), nil)
	_, delta := get(t, f.url("v/index.m3u8?_HLS_skip=YES"), nil)
	if !strings.Contains(delta, "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n") || strings.Contains(full, "EXT-X-SKIP") {
		t.Fatalf("delta:\n%s\nfull:\n%s", delta, full)
	}
	// The delta lists the same segments as the full playlist's tail.
	fullSegs := regexp.MustCompile(`(?m)^\S+-\d+\.m4s$`).FindAllString(full, -1)
	deltaSegs := regexp.MustCompile(`(?m)^\S+-\d+\.m4s$`).FindAllString(delta, -1)
	if len(fullSegs) != 10 || strings.Join(fullSegs[4:], ",") != strings.Join(deltaSegs, ",") {
		t.Fatalf("full %v, delta %v", fullSegs, deltaSegs)
	}
	_, v2 := get(t, f.url("v/index.m3u8?_HLS_skip=v2&_HLS_msn=10&_HLS_part=0"), nil)
	if !strings.Contains(v2, "#EXT-X-SKIP:SKIPPED-SEGMENTS=4\n") {
		t.Fatalf("_HLS_skip=v2:\n%s", v2)
	}
}

// TestChunkedSegment requests the segment being produced: the response starts
// with its first parts and grows as parts are cut, in chunked transfer encoding,
// and ends as the finished segment's exact bytes.
func TestChunkedSegment(t *testing.T) {
	f := newLiveFeed(t, packager.Config{})
	f.feed(4300)
	_, pl := get(t, f.url("v/index.m3u8"), nil)
	epoch, msn, _ := hinted(t, pl)
	path := fmt.Sprintf("v/%s-%d.m4s", epoch, msn)
	res, err := client.Get(f.url(path))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || res.ContentLength != -1 || len(res.TransferEncoding) == 0 || res.TransferEncoding[0] != "chunked" {
		t.Fatalf("status %d, length %d, transfer encoding %v", res.StatusCode, res.ContentLength, res.TransferEncoding)
	}
	first := make([]byte, packager.StypSize)
	if _, err := io.ReadFull(res.Body, first); err != nil || string(first[4:8]) != "styp" {
		t.Fatalf("first bytes %q: %v", first, err)
	}
	done := make(chan []byte, 1)
	go func() {
		rest, _ := io.ReadAll(res.Body)
		done <- rest
	}()
	for ms := int64(4300); ms <= 6300; ms += 100 {
		f.feed(ms)
		time.Sleep(5 * time.Millisecond)
	}
	var rest []byte
	select {
	case rest = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the segment's response did not end once the segment was finished")
	}
	obj, ok := f.snap().Object(path)
	if !ok || !bytes.Equal(append(first, rest...), obj.Data) {
		t.Fatalf("streamed %d bytes, finished segment %d (served %v)", len(first)+len(rest), len(obj.Data), ok)
	}
	waitGauge(t, f, "rtmpgate_media_blocking_waits", 0)
}

// TestRepublishBlocking drops the publisher and brings it back on the same key:
// a blocking request for the next segment's part, made during the gap, is
// answered once the new session produces it, with the discontinuity and the new
// init segment, and no request fails.
func TestRepublishBlocking(t *testing.T) {
	f := newLiveFeed(t, packager.Config{})
	f.feed(4300)
	_, pl := get(t, f.url("v/index.m3u8"), nil)
	_, msn, _ := hinted(t, pl)
	if err := f.W.Close(nil); err != nil {
		t.Fatal(err)
	}
	// The stream ended: blocking requests answer at once (ENDLIST), never 400.
	res, body := get(t, f.url(fmt.Sprintf("v/index.m3u8?_HLS_msn=%d&_HLS_part=3", msn+1)), nil)
	if res.StatusCode != 200 || !strings.Contains(body, "#EXT-X-ENDLIST") {
		t.Fatalf("during the gap: %d\n%s", res.StatusCode, body)
	}
	f.VDTS += 1000 // the new session's clock starts elsewhere
	f.ADTS = f.VDTS
	f.AN = f.ADTS * 48 / 1024
	f.publish()
	// msn was finished by Close; the new session's first segment is msn+1.
	ch := getAsync(context.Background(), f.url(fmt.Sprintf("v/index.m3u8?_HLS_msn=%d&_HLS_part=0", msn+1)))
	time.Sleep(50 * time.Millisecond)
	f.feed(300)
	r := <-ch
	if r.err != nil || r.status != 200 {
		t.Fatalf("after republish: %d %v", r.status, r.err)
	}
	tail := r.body[strings.LastIndex(r.body, "#EXTINF"):]
	if !strings.Contains(tail, "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=") || !strings.Contains(tail, fmt.Sprintf("-%d.0.m4s", msn+1)) {
		t.Fatalf("no discontinuity, new map and part %d.0 after republish:\n%s", msn+1, r.body)
	}
	for _, m := range partRe.FindAllStringSubmatch(r.body, -1) {
		if res, _ := get(t, f.url("v/"+m[1]), nil); res.StatusCode != 200 {
			t.Fatalf("part %s: %d", m[1], res.StatusCode)
		}
	}
}

// TestManyBlockedRequests parks 2000 blocking playlist requests on a stream
// while frames keep coming, and checks that ingest keeps its pace (frames per
// second of WriteFrame time before and during), that every request is answered
// once its part exists, and that the gauge counts them.
func TestManyBlockedRequests(t *testing.T) {
	if testing.Short() {
		t.Skip("2000 connections")
	}
	f := newLiveFeed(t, packager.Config{})
	f.feed(4300)
	// rate feeds media in real time for d and returns frames per second of
	// time spent inside WriteFrame: the median over 20 ms steps, so that a
	// step preempted by another test's work does not decide.
	ms := int64(4300)
	rate := func(d time.Duration) float64 {
		var perFrame []float64
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			ms += 20
			start := time.Now()
			if n := f.feed(ms); n > 0 {
				perFrame = append(perFrame, time.Since(start).Seconds()/float64(n))
			}
			time.Sleep(20 * time.Millisecond)
		}
		sort.Float64s(perFrame)
		return 1 / max(perFrame[len(perFrame)/2], 1e-9)
	}
	before := rate(500 * time.Millisecond)

	n := 2000
	if raceOn {
		n = 200
	}
	tr := &http.Transport{MaxIdleConnsPerHost: n, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 90 * time.Second}
	_, pl := get(t, f.url("v/index.m3u8"), nil)
	_, msn, _ := hinted(t, pl)
	target := fmt.Sprintf("v/index.m3u8?_HLS_msn=%d&_HLS_part=0", msn+1) // the next segment's first part
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
	)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := c.Get(f.url(target))
			code := -1
			if err == nil {
				_, _ = io.Copy(io.Discard, res.Body)
				_ = res.Body.Close()
				code = res.StatusCode
			}
			mu.Lock()
			statuses[code]++
			mu.Unlock()
		}()
	}
	// All parked: measure ingest while they wait.
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, _ := scrape(t, f.srv.URL+"/metrics")
		if m["rtmpgate_playlist_blocking_waits"] == float64(n) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v requests parked after 10 s", m["rtmpgate_playlist_blocking_waits"])
		}
		ms += 20 // keep the stream going at the same pace
		time.Sleep(20 * time.Millisecond)
	}
	parked := time.Since(start)
	during := rate(500 * time.Millisecond)
	// Release them: the next segment's first part.
	answered := time.Now()
	for i := 0; i < 200; i++ {
		if m, _ := scrape(t, f.srv.URL+"/metrics"); m["rtmpgate_playlist_blocking_waits"] == 0 {
			break
		}
		ms += 100
		f.feed(ms)
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	t.Logf("%d requests parked in %v, answered in %v; ingest %.0f frames/s of WriteFrame time before, %.0f during",
		n, parked.Round(time.Millisecond), time.Since(answered).Round(time.Millisecond), before, during)
	if statuses[200] != n {
		t.Fatalf("statuses %v", statuses)
	}
	if during < before/2 && !raceOn { // the race detector's instrumentation swamps the timing
		t.Fatalf("ingest slowed from %.0f to %.0f frames/s by %d waiting requests", before, during, n)
	}
}
