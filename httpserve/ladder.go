package httpserve

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/rtmpgate/rtmpgate/packager"
)

// serveLadder answers a request for app/name's files when no stream has that
// name but a ladder of its variants does (packager.Hub.Ladder): the fMP4
// multivariant playlist, the MPD (serveLadderMPD), and under each member's
// name its files (ladderFile). Everything else of a ladder is 404. It reports
// whether it answered.
func (s *server) serveLadder(w http.ResponseWriter, r *http.Request, app, name, path string) bool {
	if path == packager.MPDPath {
		return s.serveLadderMPD(w, r, app, name)
	}
	if path != packager.MultivariantPath {
		member, rest, ok := s.ladderFile(app, name, path)
		if !ok {
			return false
		}
		st, err := s.hub.Stream(app, member)
		if err == nil && (rest == packager.VideoPlaylistPath || rest == packager.AudioPlaylistPath) {
			// A blocking reload that waited while its member left is answered
			// as ladderFile answers now, not with the member's last playlist
			// (EXT-X-ENDLIST would end the player instead of moving it).
			s.servePlaylist(w, r, st, rest, func() bool {
				_, _, ok := s.ladderFile(app, name, path)
				return ok
			})
			return true
		}
		s.object(w, r, app, member, rest)
		return true
	}
	l, err := s.hub.Ladder(app, name)
	if err != nil {
		return false
	}
	doc := l.Multivariant()
	if doc == nil {
		return false
	}
	s.writeDoc(w, r, s.docs.getKey(docKey{ladder: app + "/" + name, path: path}, doc), packager.ContentTypePlaylist)
	return true
}

// trackPath maps a path under a multitrack stream to its track rendition's
// stream: "v1/v/index.m3u8" under demo is "v/index.m3u8" of demo/v1
// (packager.TrackStreamName), "a1/a/index.m3u8" is "a/index.m3u8" of demo/a1
// (packager.AudioTrackStreamName), while that stream is held. A stream's own
// paths never start with "v" or "a" and a digit.
func (s *server) trackPath(app, name, path string) (string, string) {
	if len(path) < 3 || path[0] != 'v' && path[0] != 'a' || path[1] < '1' || path[1] > '9' {
		return name, path
	}
	dir, rest, ok := strings.Cut(path, "/")
	if !ok || rest == "" {
		return name, path
	}
	member := name + "/" + dir
	if _, id, _, ok := packager.AnyTrackOf(member); !ok || id == 0 {
		return name, path
	}
	if _, err := s.hub.Stream(app, member); err != nil {
		return name, path
	}
	return member, rest
}

// serveTrackLadder answers the multivariant playlist or the MPD (path) of a
// stream published with several video tracks (Enhanced RTMP multitrack): the
// ladder of its renditions, which share its audio. It reports whether it
// answered: a stream without track renditions has its own.
func (s *server) serveTrackLadder(w http.ResponseWriter, r *http.Request, app, name, path string) bool {
	l, err := s.hub.Ladder(app, name)
	if err != nil || !l.Tracks {
		return false
	}
	doc, ctype := l.Multivariant(), packager.ContentTypePlaylist
	if path == packager.MPDPath {
		doc, ctype = s.hub.LadderMPD(l), packager.ContentTypeMPD
	}
	if doc == nil {
		return false
	}
	s.writeDoc(w, r, s.docs.getKey(docKey{ladder: app + "/" + name, path: path}, doc), ctype)
	return true
}

// ladderFile maps path under ladder app/name, "demo_hi/v/index.m3u8", to a
// member's file: the member stream and the path within it. A member that is
// no longer live while others are has no playlists there (its segments stay):
// players read the multivariant playlist once, and a 404 where the member's
// own playlist would end (EXT-X-ENDLIST, which ends playback) makes them move
// to another variant.
func (s *server) ladderFile(app, name, path string) (member, rest string, ok bool) {
	member, rest, ok = strings.Cut(path, "/")
	if !ok || rest == "" {
		return "", "", false
	}
	if base, ok := s.hub.LadderOf(member); !ok || base != name {
		return "", "", false
	}
	l, err := s.hub.Ladder(app, name)
	if err != nil {
		return "", "", false
	}
	var live, found bool
	for _, m := range l.Members {
		live = live || m.Snapshot.Live
		if m.Snapshot.Name == member {
			found = m.Snapshot.Live
			if !found && !strings.HasSuffix(rest, ".m3u8") && !strings.HasSuffix(rest, ".mpd") {
				return member, rest, true // a segment of a member that left
			}
		}
	}
	if found || !live {
		return member, rest, true // while none is live, every member ends as itself
	}
	return "", "", false
}

// ladderJSON describes the ladder a stream is a rendition of.
type ladderJSON struct {
	Name string `json:"name"`
	// HLS is the ladder's multivariant playlist and DASH its MPD; empty
	// while a stream of the ladder's own name shadows it.
	HLS  string `json:"hls,omitempty"`
	DASH string `json:"dash,omitempty"`
	// Renditions are the member streams the multivariant playlist lists.
	Renditions []string `json:"renditions"`
	// Aligned says whether the live renditions' segment boundaries start at
	// the same wall-clock instants (EXT-X-PROGRAM-DATE-TIME, within
	// AlignToleranceMs); MaxOffsetMs is the largest distance found over
	// ComparedSegments segment starts.
	Aligned          bool  `json:"aligned"`
	MaxOffsetMs      int64 `json:"max_offset_ms"`
	ComparedSegments int   `json:"compared_segments"`
	AlignToleranceMs int64 `json:"align_tolerance_ms"`
}

func (s *server) ladderEntry(app, name string) *ladderJSON {
	base, ok := s.hub.LadderOf(name)
	if tb, _, _, track := packager.AnyTrackOf(name); track {
		base, ok = tb, true // a rendition of a multitrack stream's ladder
	}
	if !ok {
		l, err := s.hub.Ladder(app, name)
		if err != nil || !l.Tracks {
			return nil
		}
		base = name // a multitrack stream is its own ladder
	}
	lj := &ladderJSON{Name: base, Renditions: []string{}, AlignToleranceMs: packager.LadderAlignTolerance.Milliseconds()}
	l, err := s.hub.Ladder(app, base)
	if err != nil {
		return lj // shadowed by a stream of the ladder's name
	}
	if l.Multivariant() != nil {
		lj.HLS = "/" + url.PathEscape(app) + "/" + escapeName(base) + "/" + packager.MultivariantPath
	}
	if s.hub.LadderMPD(l) != nil {
		lj.DASH = "/" + url.PathEscape(app) + "/" + url.PathEscape(base) + "/" + packager.MPDPath
	}
	for _, m := range l.Listed() {
		lj.Renditions = append(lj.Renditions, m.Snapshot.Name)
	}
	a := l.Alignment()
	lj.Aligned, lj.MaxOffsetMs, lj.ComparedSegments = a.Aligned, a.MaxOffset.Milliseconds(), a.Compared
	return lj
}

// escapeName escapes a stream name for a URL path, keeping the "/" of a
// track rendition's name (demo/v1, demo/a1), which is served at that path.
func escapeName(name string) string {
	if base, id, audio, ok := packager.AnyTrackOf(name); ok {
		if audio {
			return url.PathEscape(base) + "/a" + strconv.Itoa(int(id))
		}
		return url.PathEscape(base) + "/v" + strconv.Itoa(int(id))
	}
	return url.PathEscape(name)
}
