package httpserve

import (
	"net/http"
	"strconv"
)

// readyz tells a load balancer whether to send traffic here: not before the
// listeners are up, not while shutting down, and not while the segment store is
// at its budget or headed past it (new streams are refused then).
func (s *server) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: " + err.Error() + "\n"))
			return
		}
	}
	used, committed, limit := s.hub.StoreBytes(), s.hub.StoreCommitted(), s.cfg.MaxStoreBytes
	if used >= limit || committed > limit {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: store " + strconv.FormatInt(used, 10) + " bytes held, " + strconv.FormatInt(committed, 10) +
			" once live windows and one more fill, budget " + strconv.FormatInt(limit, 10) + ": new streams are refused\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
