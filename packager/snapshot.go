package packager

import (
	"time"

	"github.com/rtmpgate/rtmpgate/packager/manifest"
	"github.com/rtmpgate/rtmpgate/remux"
)

// Snapshot is a stream's state at one instant. It is immutable: a change builds a
// new Snapshot and closes the old one's Changed channel.
type Snapshot struct {
	App, Name  string
	Live       bool      // a publisher is on it
	Since      time.Time // first publish
	Remote     string    // the current or last publisher's address
	Tracks     []*remux.Track
	TSPlaylist []byte // the HLS media playlist; nil until the first segment exists and after eviction
	Segments   int    // segments in the playlist window
	Bytes      int64  // store bytes of this stream (window and segments kept after leaving it)
	// BitrateIn is the media bitrate over the playlist window, bits/s: CMAF
	// fragment bytes (TS bytes for a track set without CMAF) over their duration.
	BitrateIn int64
	// FrameRate is the video frame rate measured over the window; 0 when unknown.
	FrameRate float64
	// Changed is closed when a newer snapshot replaces this one, so a blocking
	// request can select on it with its own context and a time cap.
	Changed <-chan struct{}

	hub     *Hub
	modTime time.Time  // when the playlists last changed
	objects []*segment // servable segments: the window and those kept after leaving it
	inits   []*initSeg // servable CMAF init segments
	docs    *docCell   // fMP4 HLS playlists and the MPD: cell, or an earlier snapshot's when they did not change
	listed  [2]bool    // docs has the fMP4 media playlist of vIdx, aIdx
	cell    docCell    // this snapshot's documents when it changed them

	epoch   string   // the stream's name prefix
	nextMSN uint64   // media sequence number of the segment being produced
	open    *openSeg // its parts; nil when none or no publisher
	target  int64    // EXT-X-TARGETDURATION, s; 0 until known
	ended   bool     // the playlists carry EXT-X-ENDLIST
	ll      bool     // low latency on: parts, LL-HLS tags, chunked DASH

	// view is what the manifests are rendered from (docCell): the state above
	// and the window as plain data, immutable like the snapshot.
	view manifest.View
}

// TSUnavailable says why the stream's current track set has no MPEG-TS output
// (a codec HLS defines no TS mapping for), or "" when it has one.
func (snap *Snapshot) TSUnavailable() string { return tsUnavailable(snap.Tracks...) }
