package httpserve

import (
	"net/http"

	"github.com/rtmpgate/rtmpgate/packager"
)

// serveLadderMPD answers app/name/index.mpd for a ladder of separately
// published keys (packager.Ladder.MPD) with the headers, caching, gzip and
// time source a stream's MPD has. It reports whether it answered: false while
// no member has a CMAF segment, or when there is no such ladder.
func (s *server) serveLadderMPD(w http.ResponseWriter, r *http.Request, app, name string) bool {
	l, err := s.hub.Ladder(app, name)
	if err != nil {
		return false
	}
	doc := s.hub.LadderMPD(l)
	if doc == nil {
		return false
	}
	s.writeDoc(w, r, s.docs.getKey(docKey{ladder: app + "/" + name, path: packager.MPDPath}, doc), packager.ContentTypeMPD)
	return true
}
