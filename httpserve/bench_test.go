package httpserve_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/rtmpgate/rtmpgate/httpserve"
)

// sink is a ResponseWriter that keeps nothing, so a benchmark counts the
// handler's own work and allocations, not a recorder's.
type sink struct {
	h      http.Header
	status int
	n      int
	body   []byte // kept only when keep is set
	keep   bool
}

func (s *sink) Header() http.Header { return s.h }
func (s *sink) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
}
func (s *sink) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	s.n += len(b)
	if s.keep {
		s.body = append(s.body, b...)
	}
	return len(b), nil
}
func (s *sink) Flush() {}

func (s *sink) reset() {
	clear(s.h)
	s.status, s.n = 0, 0
}

func benchGet(b *testing.B, h http.Handler, url string, header map[string]string) {
	r, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	r.RemoteAddr = "127.0.0.1:40000"
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := &sink{h: make(http.Header)}
	h.ServeHTTP(w, r)
	if w.status != http.StatusOK || w.n == 0 {
		b.Fatalf("GET %s: status %d, %d bytes", url, w.status, w.n)
	}
	size := w.n
	b.ReportAllocs()
	b.SetBytes(int64(size))
	b.ResetTimer()
	for b.Loop() {
		w.reset()
		h.ServeHTTP(w, r)
	}
	b.StopTimer()
	if w.status != http.StatusOK || w.n != size {
		b.Fatalf("GET %s: status %d, %d bytes, want 200 and %d", url, w.status, w.n, size)
	}
}

// newestTS is the URL of the last segment the TS playlist lists.
func newestTS(b *testing.B, h http.Handler) string {
	r, _ := http.NewRequest(http.MethodGet, "/live/demo/ts/index.m3u8", nil)
	w := &sink{h: make(http.Header), keep: true}
	h.ServeHTTP(w, r)
	seg := ""
	for _, line := range strings.Split(string(w.body), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			seg = line
		}
	}
	if seg == "" {
		b.Fatalf("no segment in\n%s", w.body)
	}
	return "/live/demo/ts/" + seg
}

// BenchmarkPlaylistGET is one GET of a live stream's TS playlist, as wrk makes
// them in make bench-e2e, through the whole handler (routing, metrics, CORS,
// cache headers, the document cache); gzip is the same with Accept-Encoding gzip.
func BenchmarkPlaylistGET(b *testing.B) {
	h := httpserve.New(newDemoHub(b, false, 0), httpserve.Config{})
	b.Run("ts", func(b *testing.B) { benchGet(b, h, "/live/demo/ts/index.m3u8", nil) })
	b.Run("ll-fmp4", func(b *testing.B) { benchGet(b, h, "/live/demo/v/index.m3u8", nil) })
	b.Run("gzip", func(b *testing.B) {
		benchGet(b, h, "/live/demo/ts/index.m3u8", map[string]string{"Accept-Encoding": "gzip, deflate"})
	})
}

// BenchmarkSegmentGET is one GET of a TS segment (about 200 KB: 4 KB video frames).
func BenchmarkSegmentGET(b *testing.B) {
	h := httpserve.New(newDemoHub(b, false, 4096), httpserve.Config{})
	benchGet(b, h, newestTS(b, h), nil)
}
