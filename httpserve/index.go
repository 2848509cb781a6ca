package httpserve

import (
	"net/http"

	"github.com/rtmpgate/rtmpgate/web"
)

// staticFiles serves the embedded page, the player page and the player libraries.
// They change only with the binary, so a short cache keeps upgrades visible.
func staticFiles() http.Handler {
	files := http.FileServer(http.FS(web.FS))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		files.ServeHTTP(w, r)
	})
}
