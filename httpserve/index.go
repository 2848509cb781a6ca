package httpserve

import (
	"io/fs"
	"net/http"

	"github.com/rtmpgate/rtmpgate/web"
)

// index serves the embedded page. The page itself lists streams from /api/streams.
func (s *server) index(w http.ResponseWriter, r *http.Request) {
	page, err := fs.ReadFile(web.FS, "index.html")
	if err != nil {
		http.Error(w, "page missing from build", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(page)
}
