package packager

import (
	"net/url"
	"strconv"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
)

// ladderPeers are the media playlists of a stream's ladder other than the
// stream's own, with their URIs relative to the stream's playlists, as the
// hub's membership stood at count gen (Hub.members).
type ladderPeers struct {
	gen   uint64
	peers []ladderPeer
}

type ladderPeer struct {
	st  *Stream
	i   int    // rendition: vIdx or aIdx
	uri string // from the reporting stream's v/ or a/ playlist
}

// ladderReports are the rendition reports (RFC 8216bis 4.4.5.4, 6.2.2) of
// the other media playlists of the multivariant playlist s is listed in:
// the other renditions of its multitrack publish, or the other members of
// its Config.Variants ladder. Each peer's last part is read from its
// published snapshot, so no report is ahead of the playlist it names; no
// stream lock is taken, and the hub's only when the membership changed.
// The count is bounded by max_tracks or the variants list.
func (s *Stream) ladderReports() []manifest.Report {
	h := s.hub
	p := s.peers.Load()
	if gen := h.members.Load(); p == nil || p.gen != gen {
		h.mu.Lock()
		p = &ladderPeers{gen: gen, peers: h.ladderPeersLocked(s)}
		h.mu.Unlock()
		s.peers.Store(p)
	}
	var rs []manifest.Report
	for _, m := range p.peers {
		snap := m.st.snap.Load()
		if !snap.Live || snap.Ended() || !snap.ll || !snap.listed[m.i] {
			continue // not listed by the multivariant playlist, or nothing to block on
		}
		if msn, part, ok := manifest.LastPart(&snap.view, m.i); ok {
			rs = append(rs, manifest.Report{URI: m.uri, MSN: msn, Part: part})
		}
	}
	return rs
}

// ladderPeersLocked lists the media playlists of s's ladders other than
// s's own, in each ladder's order; the caller holds h.mu. A multitrack
// publish's ladder is its stream (video and audio) at the ladder's URL, then
// its video track renditions (v1/v/) and audio track renditions (a1/a/)
// below it. A Config.Variants ladder lists each member (video and audio)
// under its name, one directory below the ladder's:
// "../../demo_mid/v/index.m3u8" resolves alike from the member's own URL
// (/live/demo_hi/v/) and the ladder's (/live/demo/demo_hi/v/). A member of
// such a ladder published with several tracks is in both.
func (h *Hub) ladderPeersLocked(s *Stream) []ladderPeer {
	var peers []ladderPeer
	add := func(up string, m *Stream, prefix string, tracks ...int) {
		if m == s {
			return // its own other track has its report already
		}
		for _, i := range tracks {
			peers = append(peers, ladderPeer{st: m, i: i, uri: up + prefix + trackDir[i] + "index.m3u8"})
		}
	}
	root, up := s, "../" // from the playlist's v/ or a/ to the ladder's directory
	if base, _, _, ok := AnyTrackOf(s.name); ok {
		root, up = h.streams[streamKey(s.app, base)], "../../"
	}
	if root != nil && len(root.trackIDs)+len(root.audioIDs) > 0 {
		add(up, root, "", vIdx, aIdx)
		for _, id := range root.trackIDs {
			if m := h.streams[streamKey(s.app, TrackStreamName(root.name, id))]; m != nil {
				add(up, m, "v"+strconv.Itoa(int(id))+"/", vIdx)
			}
		}
		for _, id := range root.audioIDs {
			if m := h.streams[streamKey(s.app, AudioTrackStreamName(root.name, id))]; m != nil {
				add(up, m, "a"+strconv.Itoa(int(id))+"/", aIdx)
			}
		}
	}
	// A stream of the ladder's name wins over the ladder (Hub.Ladder).
	if name, ok := h.LadderOf(s.name); ok && root == s && h.streams[streamKey(s.app, name)] == nil {
		for _, suf := range h.cfg.Variants {
			if m := h.streams[streamKey(s.app, name+suf)]; m != nil {
				add("../../", m, url.PathEscape(name+suf)+"/", vIdx, aIdx)
			}
		}
	}
	return peers
}
