package packager

import (
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/rtmpgate/rtmpgate/packager/manifest"
	"github.com/rtmpgate/rtmpgate/remux"
)

// Content types of the objects a stream serves.
const (
	ContentTypePlaylist = "application/vnd.apple.mpegurl"
	ContentTypeTS       = "video/mp2t"
	ContentTypeMPD      = "application/dash+xml"
	ContentTypeVideoMP4 = "video/mp4"
	ContentTypeAudioMP4 = "audio/mp4"

	// PlaylistPath is where Object finds the TS media playlist; segment paths are
	// "ts/<name>.ts", matching the playlist's relative URIs.
	PlaylistPath = "ts/index.m3u8"
	// MultivariantPath is the fMP4 HLS multivariant playlist; its media playlists
	// are VideoPlaylistPath and AudioPlaylistPath, whose init segments and
	// fragments are "v/init-<epoch>-<gen>.mp4", "v/<epoch>-<msn>.m4s" and the same
	// under "a/". MPDPath is the DASH MPD listing the same fragments.
	MultivariantPath  = "index.m3u8"
	VideoPlaylistPath = manifest.VideoPlaylistPath
	AudioPlaylistPath = manifest.AudioPlaylistPath
	MPDPath           = "index.mpd"

	// OriginPlaceholder stands in the MPD's UTCTiming URL ("ORIGIN/time") for the
	// scheme and host a request came to; httpserve replaces it per request.
	OriginPlaceholder = manifest.OriginPlaceholder
)

var contentTypeMP4 = [2]string{ContentTypeVideoMP4, ContentTypeAudioMP4}

// Stream is one publish key's state: its window of segments and its playlist. It
// outlives publish sessions: a republish within the linger time continues it.
type Stream struct {
	hub   *Hub
	app   string
	name  string
	since time.Time
	epoch string // in every segment name, so names never repeat across re-creations
	log   zerolog.Logger

	snap atomic.Pointer[Snapshot]

	// Frames and bytes received from publishers, all sessions: counted per frame
	// with one atomic add each, read by metrics at scrape time.
	framesIn, bytesIn atomic.Int64

	// trackIDs are the video track ids (1 up) whose renditions were ever
	// published as streams of their own (TrackStreamName) by this stream's
	// multitrack publishers, sorted; guarded by Hub.mu.
	trackIDs []uint8
	// audioIDs are the same for audio tracks (AudioTrackStreamName).
	audioIDs []uint8
	// labels are the audio tracks' labels of the current publish's metadata
	// (remux.Metadata.AudioLabels), for the ladder's renditions.
	labels atomic.Pointer[[]remux.TrackLabel]
	// peers are the other media playlists of the ladder the stream belongs
	// to, as of a Hub.members count (Stream.ladderReports).
	peers atomic.Pointer[ladderPeers]

	mu       sync.Mutex
	owner    *session // the live session; nil when none
	remote   string
	tracks   []*remux.Track
	window   []*segment
	retired  []*segment // left the window, still served until expires
	nextSeq  uint64
	discSeq  uint64
	target   int64       // EXT-X-TARGETDURATION, s; 0 until the first segment closes
	ended    bool        // the last session ended and no new one started
	endedNow atomic.Bool // ended, readable without mu: eviction scans skip live streams without waiting for their locks
	endedAt  time.Time
	evicted  bool
	bytes    int64
	// bytesNow and liveSince (unix ns of the live session's start, 0 when none)
	// are readable without mu: the store's admission projects every live
	// stream's growth from them without waiting for publishers' locks.
	bytesNow, liveSince atomic.Int64
	discNext            bool // the next segment follows a republish or takeover
	playlist            []byte
	plTime              time.Time
	changed             chan struct{}

	// CMAF: init segments still referenced (and the current set's), the DASH
	// timeline anchor and Periods.
	inits   []*initSeg
	initGen uint64
	ast     time.Time        // MPD availabilityStartTime, fixed by the first CMAF segment
	period  *manifest.Period // the Period new segments join
	periodN int

	// The documents of the last change, rendered when first asked for (docCell):
	// docs the current ones, full the last that renders the multivariant playlist
	// and MPD. rates and listed are known at once: the API and blocking requests
	// need them without a render.
	docs, full *docCell
	rates      rates
	listed     [2]bool // the fMP4 media playlists docs holds

	// What the snapshots share while the window and the init segments stay as
	// they are (between part changes): the servable segments and inits.
	objects   []*segment
	initsSnap []*initSeg
	views     []*manifest.Segment // the window's, as the manifests list it

	// open is the segment being produced, listed as parts after the window
	// (low latency); nil between segments and when no publisher is on.
	open *openSeg
	// waiters are the channels of blocking requests by what they wait for.
	waiters map[waitKey]chan struct{}
}

func (s *Stream) key() string { return streamKey(s.app, s.name) }

// Received returns the frames and media bytes received from this stream's
// publishers so far, every session included.
func (s *Stream) Received() (frames, bytes int64) { return s.framesIn.Load(), s.bytesIn.Load() }

// Snapshot returns the stream's current state. It never blocks.
func (s *Stream) Snapshot() *Snapshot { return s.snap.Load() }

// Object is a servable file: a playlist, the MPD, an init segment or a segment.
// Data must not be modified.
type Object struct {
	Data        []byte
	ModTime     time.Time
	ContentType string
	// Immutable is true for segments and init segments, whose names never
	// carry other bytes, and false for playlists and the MPD.
	Immutable bool
}

// Object finds a file by its path relative to /{app}/{stream}/: PlaylistPath,
// MultivariantPath, VideoPlaylistPath, AudioPlaylistPath, MPDPath, or a segment,
// fragment or init segment still in the window or kept after leaving it. It never
// blocks.
func (s *Stream) Object(path string) (Object, bool) { return s.snap.Load().Object(path) }

// Object finds a file in the snapshot, as Stream.Object does; a request that
// waited for a snapshot reads it from that one.
func (snap *Snapshot) Object(path string) (Object, bool) {
	var doc []byte
	ctype := ContentTypePlaylist
	switch path {
	case PlaylistPath:
		if snap.TSUnavailable() == "" {
			doc = snap.TSPlaylist
		}
	case MultivariantPath:
		doc = snap.docs.get().multivariant
	case VideoPlaylistPath:
		doc = snap.docs.get().media[vIdx]
	case AudioPlaylistPath:
		doc = snap.docs.get().media[aIdx]
	case MPDPath:
		doc, ctype = snap.docs.get().mpd, ContentTypeMPD
	default:
		return snap.segmentObject(path)
	}
	if doc == nil {
		return Object{}, false
	}
	return Object{Data: doc, ModTime: snap.modTime, ContentType: ctype}, true
}

func (snap *Snapshot) segmentObject(path string) (Object, bool) {
	i := -1
	switch {
	case strings.HasPrefix(path, "ts/"):
		for _, seg := range snap.objects {
			if seg.path == path && len(seg.data) > 0 {
				return Object{Data: seg.data, ModTime: seg.modTime, ContentType: ContentTypeTS, Immutable: true}, true
			}
		}
		return Object{}, false
	case strings.HasPrefix(path, trackDir[vIdx]):
		i = vIdx
	case strings.HasPrefix(path, trackDir[aIdx]):
		i = aIdx
	default:
		return Object{}, false
	}
	if strings.HasSuffix(path, ".mp4") {
		for _, in := range snap.inits {
			if in.path == path {
				return Object{Data: in.data, ModTime: snap.Since, ContentType: contentTypeMP4[i], Immutable: true}, true
			}
		}
		return Object{}, false
	}
	if snap.ll {
		if msn, n, ok := parsePartName(path[len(trackDir[i]):], snap.epoch); ok && n >= 0 {
			if p := snap.part(i, msn, n); p != nil {
				return Object{Data: p.Data, ModTime: snap.modTime, ContentType: contentTypeMP4[i], Immutable: true}, true
			}
			return Object{}, false
		}
	}
	for _, seg := range snap.objects {
		if f := seg.frag[i]; f != nil && f.path == path {
			return Object{Data: f.data, ModTime: seg.modTime, ContentType: contentTypeMP4[i], Immutable: true}, true
		}
	}
	return Object{}, false
}

func newStream(h *Hub, app, name string, now time.Time, epoch int64) *Stream {
	s := &Stream{
		hub:   h,
		app:   app,
		name:  name,
		since: now,
		epoch: strconv.FormatInt(epoch, 36),
		log:   h.log.With().Str("app", app).Str("stream", name).Logger(),
	}
	s.changed = make(chan struct{})
	s.snap.Store(&Snapshot{App: app, Name: name, Since: now, Changed: s.changed})
	return s
}

// Render levels of publishLocked.
const (
	renderNone  = iota // the documents are unchanged (tracks announced, segments expired)
	renderParts        // the open segment changed: the fMP4 media playlists only
	renderAll          // the window changed: every playlist and the MPD
)

// publishLocked swaps in a snapshot of the current state. The TS playlist of a
// changed window is rendered at once (once per segment); the fMP4 playlists and
// the MPD of what the change touched are left to the snapshot's docCell, which
// renders them when a request first asks: a part every 200 ms per track costs
// no render while nobody is watching.
//
// A renderParts change must not touch the window, the kept segments or the
// init segments: the snapshots share their copies until a change that does.
func (s *Stream) publishLocked(render int) {
	if render != renderParts || len(s.objects) != len(s.window)+len(s.retired) {
		s.objects = nil
		if n := len(s.window) + len(s.retired); n > 0 {
			s.objects = make([]*segment, 0, n)
			s.objects = append(s.objects, s.window...)
			s.objects = append(s.objects, s.retired...)
		}
		if !slices.Equal(s.initsSnap, s.inits) {
			s.initsSnap = append([]*initSeg(nil), s.inits...)
		}
		s.views = nil
		if len(s.window) > 0 {
			s.views = make([]*manifest.Segment, len(s.window))
			for i, seg := range s.window {
				s.views[i] = &seg.view
			}
		}
	}
	ch := make(chan struct{})
	cfg := &s.hub.cfg
	snap := &Snapshot{
		App:      s.app,
		Name:     s.name,
		Live:     s.owner != nil,
		Since:    s.since,
		Remote:   s.remote,
		Tracks:   s.tracks,
		Segments: len(s.window),
		Bytes:    s.bytes,
		Changed:  ch,
		hub:      s.hub,
		objects:  s.objects,
		inits:    s.initsSnap,
		epoch:    s.epoch,
		nextMSN:  s.nextSeq,
		target:   s.target,
		ended:    s.ended,
		ll:       !cfg.DisableLowLatency,
	}
	snap.view = manifest.View{
		Epoch:           s.epoch,
		Window:          s.views,
		NextMSN:         s.nextSeq,
		DiscSeq:         s.discSeq,
		Target:          s.target,
		Live:            s.owner != nil,
		Ended:           s.ended,
		DiscNext:        s.discNext,
		AST:             s.ast,
		LowLatency:      !cfg.DisableLowLatency,
		PartTarget:      cfg.PartTarget,
		SegmentDuration: cfg.SegmentDuration,
	}
	if s.owner != nil {
		snap.open = s.open
		if s.open != nil {
			snap.view.Open = &s.open.view
		}
	}
	switch render {
	case renderAll:
		s.playlist = nil
		if len(s.window) > 0 {
			s.playlist = manifest.MediaPlaylist(make([]byte, 0, 256+160*len(s.window)), &snap.view, manifest.TS)
		}
		s.plTime = cfg.Now()
		s.rates = measure(s.window)
		s.listed = manifest.Listed(&snap.view, true)
		snap.cell.view, snap.cell.full, snap.cell.src = &snap.view, true, s
		s.docs, s.full = &snap.cell, &snap.cell
	case renderParts:
		s.plTime = cfg.Now()
		s.listed = manifest.Listed(&snap.view, false)
		snap.cell.view, snap.cell.base, snap.cell.src = &snap.view, s.full, s
		s.docs = &snap.cell
	}
	snap.view.PublishTime, snap.view.Rates = s.plTime, s.rates
	snap.TSPlaylist = s.playlist
	snap.BitrateIn, snap.FrameRate = s.rates.Avg, s.rates.FPS
	snap.modTime = s.plTime
	snap.docs, snap.listed = s.docs, s.listed
	s.snap.Store(snap)
	close(s.changed)
	s.changed = ch
	s.wakeLocked(snap)
}

// setOpen lists the parts of the segment sess is producing.
func (s *Stream) setOpen(sess *session, o *openSeg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != sess || s.evicted {
		return
	}
	o.disc = o.disc || s.discNext
	o.view = manifest.Open{Disc: o.disc, Init: initViews(o.init), Parts: o.parts}
	first := s.open == nil
	s.open = o
	if first && s.target > 0 && (o.disc || s.period == nil || o.view.Init != s.period.Init) {
		s.publishLocked(renderAll) // the MPD no longer announces the segment being produced in the old Period
		return
	}
	s.publishLocked(renderParts)
}

// nextNumber is the media sequence number the next segment added will get.
func (s *Stream) nextNumber() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.nextSeq
}

// numberFrom makes n the number of sess's first segment, when the stream lists
// no segment and none is being produced: HLS numbers a playlist's segments
// consecutively, so a stream with segments continues their numbers.
func (s *Stream) numberFrom(sess *session, n uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner == sess && len(s.window) == 0 && s.open == nil {
		s.nextSeq = n
	}
}

// addSegment appends a closed segment for session sess and returns the fixed
// target duration. ok is false when sess no longer owns the stream.
func (s *Stream) addSegment(sess *session, seg *segment) (target int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != sess || s.evicted {
		return 0, false
	}
	cfg := &s.hub.cfg
	now := cfg.Now()
	seg.seq = s.nextSeq
	s.nextSeq++
	var nb [64]byte
	base := strconv.AppendUint(append(append(nb[:0], s.epoch...), '-'), seg.seq, 10)
	seg.path = "ts/" + string(base) + ".ts"
	seg.name = seg.path[len("ts/"):]
	for i, f := range seg.frag {
		if f != nil {
			f.path = trackDir[i] + string(base) + ".m4s"
			f.name = f.path[len(trackDir[i]):]
		}
	}
	s.open = nil
	seg.modTime = now
	if s.discNext {
		seg.disc = true
		s.discNext = false
	}
	if s.target == 0 {
		// Fixed once, from the first real segment, and never changed: RFC 8216
		// forbids changing EXT-X-TARGETDURATION. See session.maxDuration for how
		// later segments are kept within it. The audio rendition's share of a
		// segment can run one audio frame past the video's (it ends at the first
		// audio frame after the cut), so that frame counts: a steady 2.48 s GOP
		// gets 3, else its audio EXTINFs would reach 2.50 s and round above 2.
		s.target = max(ceilSeconds(cfg.SegmentDuration), roundSeconds(seg.dur+seg.spill))
		s.log.Info().Int64("target_duration", s.target).Msg("playlist target duration fixed")
	}
	seg.freeze()
	s.joinPeriodLocked(seg)
	s.window = append(s.window, seg)
	s.hold(seg.size())
	s.trimLocked(now)
	s.dropExpiredLocked(now)
	s.publishLocked(renderAll)
	return s.target, true
}

// trimLocked moves segments out of the window: beyond WindowSegments, but never
// leaving less than three target durations listed (RFC 8216 6.2.2) unless the
// window grew to four times its size. A removed segment stays served for its
// duration plus the duration of the playlist that last listed it (6.2.2).
func (s *Stream) trimLocked(now time.Time) {
	cfg := &s.hub.cfg
	var total int64
	for _, seg := range s.window {
		total += seg.dur
	}
	for len(s.window) > cfg.WindowSegments {
		old := s.window[0]
		if total-old.dur < 3*s.target*1000 && len(s.window) <= 4*cfg.WindowSegments {
			break
		}
		old.expires = now.Add(time.Duration(total+old.dur) * time.Millisecond)
		if old.disc {
			s.discSeq++
		}
		total -= old.dur
		s.window[0] = nil
		s.window = s.window[1:]
		s.retired = append(s.retired, old)
	}
}

// dropExpiredLocked deletes kept segments whose time is up and reports whether any
// went.
func (s *Stream) dropExpiredLocked(now time.Time) bool {
	n := 0
	for n < len(s.retired) && !s.retired[n].expires.After(now) {
		n++
	}
	return s.dropRetiredLocked(n)
}

// dropRetiredLocked deletes the n oldest kept segments.
func (s *Stream) dropRetiredLocked(n int) bool {
	if n == 0 {
		return false
	}
	var freed int64
	for i := 0; i < n; i++ {
		freed += s.retired[i].size()
		s.retired[i] = nil
	}
	s.retired = append(s.retired[:0], s.retired[n:]...)
	s.hold(-freed)
	s.pruneInitsLocked()
	return true
}

// setTracks records the session's track set and names and stores its CMAF init
// segments (nil where a track is absent or has no CMAF output).
func (s *Stream) setTracks(sess *session, tracks []*remux.Track, inits [2]*initSeg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != sess || s.evicted {
		return
	}
	s.tracks = tracks
	s.initGen++
	gen := strconv.FormatUint(s.initGen, 10)
	for i, in := range inits {
		if in == nil {
			continue
		}
		in.gen = s.initGen
		in.name = "init-" + s.epoch + "-" + gen + ".mp4"
		in.path = trackDir[i] + in.name
		in.view = manifest.Init{Name: in.name, Path: in.path, Track: in.track}
		s.inits = append(s.inits, in)
		s.hold(int64(len(in.data)))
	}
	s.pruneInitsLocked()
	s.publishLocked(renderNone)
}

// pruneInitsLocked forgets init segments that are neither the current set's nor
// referenced by a segment still served.
func (s *Stream) pruneInitsLocked() {
	keep := s.inits[:0]
	for _, in := range s.inits {
		if in.gen == s.initGen || referenced(in, s.window) || referenced(in, s.retired) {
			keep = append(keep, in)
			continue
		}
		s.hold(-int64(len(in.data)))
	}
	clear(s.inits[len(keep):])
	s.inits = keep
}

func referenced(in *initSeg, segs []*segment) bool {
	for _, seg := range segs {
		if seg.init[vIdx] == in || seg.init[aIdx] == in {
			return true
		}
	}
	return false
}

// endSession marks the stream ended if sess still owns it, and reports whether it
// did.
func (s *Stream) endSession(sess *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.owner != sess || s.evicted {
		return false
	}
	s.owner = nil
	s.open = nil
	s.ended = true
	s.endedNow.Store(true)
	s.liveSince.Store(0)
	s.endedAt = s.hub.cfg.Now()
	s.publishLocked(renderAll)
	return true
}

// hold counts n more bytes (less when negative) in the stream and the store.
func (s *Stream) hold(n int64) {
	s.bytes += n
	s.bytesNow.Store(s.bytes)
	s.hub.total.Add(n)
}

// evictLocked forgets every segment and leaves an empty snapshot, so that holders
// of the *Stream find nothing either.
func (s *Stream) evictLocked() {
	s.evicted = true
	s.hold(-s.bytes)
	s.window, s.retired, s.tracks, s.playlist = nil, nil, nil, nil
	s.inits, s.period, s.open = nil, nil, nil
	s.docs, s.full, s.rates, s.listed = nil, nil, rates{}, [2]bool{}
	s.publishLocked(renderNone)
}

// initViews is the manifests' view of a track set.
func initViews(inits [2]*initSeg) (v [2]*manifest.Init) {
	for i, in := range inits {
		if in != nil {
			v[i] = &in.view
		}
	}
	return v
}

// roundSeconds rounds a duration in ms to the nearest second, halves up, as HLS
// clients compare EXTINF against EXT-X-TARGETDURATION.
func roundSeconds(ms int64) int64 { return (ms + 500) / 1000 }

// ceilSeconds is d rounded up to whole seconds, at least 1.
func ceilSeconds(d time.Duration) int64 {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return s
}
