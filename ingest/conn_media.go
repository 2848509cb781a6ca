package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/flv"
	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
	"github.com/rtmpgate/rtmpgate/remux/codec/opus"
	"github.com/rtmpgate/rtmpgate/remux/codec/vp9"
)

// servedTracks is how many Enhanced RTMP track ids of each kind a session
// serves in its own Writer: track 0. A multitrack publish's other tracks,
// video and audio, go to renditions of their own (renditionTrack). The
// per-track state is an array indexed by track id so that
// it can grow to flv.MaxTracks.
const servedTracks = 1

// Bounds on a publisher that keeps re-initialising: more than
// maxConfigChanges differing sequence starts of one track within
// configChangeWindow is a protocol error, since each one is a new track for
// the outputs (a discontinuity in every playlist). Identical ones are ignored.
const (
	maxConfigChanges   = 8
	configChangeWindow = 10 * time.Second
)

// maxEarlyFrames bounds the coded frames of a track dropped for arriving
// before its first sequence start: a few are what a publisher joined mid-GOP
// (a relay) sends; a track that never starts is a protocol error.
const maxEarlyFrames = 300

// kindState is the publish session's state for one kind (video or audio).
type kindState struct {
	tracks        [servedTracks]trackState
	ignored       int  // packets of track ids not served, dropped
	legacyRefused bool // a legacy codec id or sound format was refused (logged once)
	// refused marks the track ids refused, each logged once: too many
	// tracks, a rendition that could not be opened; unstarted the track ids
	// whose packets came before a sequence start (logged once).
	refused, unstarted trackSet
}

// trackSet is a set of track ids.
type trackSet [256 / 64]uint64

func (s *trackSet) has(id uint8) bool { return s[id/64]&(1<<(id%64)) != 0 }

// mark adds id and reports whether it was there before.
func (s *trackSet) mark(id uint8) (before bool) {
	before = s.has(id)
	s[id/64] |= 1 << (id % 64)
	return before
}

// renditionTrack is a track other than 0 of a multitrack publish, served
// as a rendition of its own: its Writer (remux.TrackOpener or
// remux.AudioTrackOpener), its track state and its clock on the publish's
// timeline.
type renditionTrack struct {
	id    uint8
	video bool
	w     remux.Writer
	st    trackState
	clock trackClock
}

// track returns the state of track id, nil for a track this session does not
// serve.
func (k *kindState) track(id uint8) *trackState {
	if int(id) < len(k.tracks) {
		return &k.tracks[id]
	}
	return nil
}

// trackState is one track of the session, from its sequence start on.
type trackState struct {
	// wire is the FourCC its coded frames carry: the codec's, except for HEVC
	// signalled under legacy codec id 7 (frames then read as H.264 frames).
	wire    flv.FourCC
	started bool   // a sequence start was seen
	record  []byte // the last sequence start's configuration record, as sent
	track   *remux.Track
	// held is a VP9 track waiting for its first key frame, which gives the
	// picture size vpcC lacks; nil otherwise.
	held    *remux.Track
	refused bool // the codec cannot be carried: frames are dropped
	// color is the last colorInfo metadata of a video track: it applies to
	// the track built from every sequence start that follows.
	color *colorInfo
	// fromFrame is an AC-3 or E-AC-3 track, which has no configuration
	// record: its first coded frame describes it.
	fromFrame bool

	changes     int       // differing sequence starts since changesFrom
	changesFrom time.Time // start of the current change window
	early       int       // coded frames dropped before the first sequence start
}

// media handles one audio or video message of the live publish session.
func (c *conn) media(m *rtmp.Message) error {
	w := c.pub.writer
	if w == nil || len(m.Payload) == 0 {
		// Media before publish or after unpublish has no session to go to; empty
		// tag bodies are keep-alives some encoders send.
		return nil
	}
	video := m.Type == rtmp.MsgVideo
	var msg flv.Message
	var err error
	if video {
		msg, err = flv.SplitVideo(c.pub.pkts[:], m.Payload)
	} else {
		msg, err = flv.SplitAudio(c.pub.pkts[:], m.Payload)
	}
	if err != nil {
		if errors.Is(err, flv.ErrUnsupportedCodec) {
			// A legacy codec id or sound format other than H.264, HEVC (id 12)
			// and AAC: the whole message is track 0 of that codec.
			c.refuseLegacy(video, m.Payload[0], err)
			return nil
		}
		return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("%s message: %w", kindName(video), err)}
	}
	ts := m.Timestamp
	if msg.TimestampOffsetNano >= 500_000 {
		// The timeline is in milliseconds: the ModEx sub-millisecond offset
		// rounds the message's timestamp to the nearest one (see timeline.go).
		ts++
	}
	for i := range msg.Packets {
		if err := c.trackPacket(w, video, ts, &msg.Packets[i]); err != nil {
			return err
		}
	}
	return nil
}

// trackPacket handles one track's packet of a message at timestamp ts.
func (c *conn) trackPacket(w remux.Writer, video bool, ts uint32, p *flv.TrackPacket) error {
	k := &c.pub.kinds[kindIndex(video)]
	st := k.track(p.TrackID)
	clock := &c.pub.tl.tracks[kindIndex(video)]
	if st == nil {
		r := c.rendition(video, p)
		if r == nil {
			k.ignored++
			return nil
		}
		w, st, clock = r.w, &r.st, &r.clock
	}
	switch p.Type {
	case flv.PacketSequenceHeader:
		if p.FourCC == flv.FourCCOpus && opus.IsTags(p.Data) {
			return nil // the comment header may come as a sequence start too: nothing for a muxer
		}
		return c.sequenceStart(w, video, st, p)
	case flv.PacketFrame:
		return c.codedFrame(w, video, ts, st, clock, p)
	case flv.PacketMetadata:
		if video {
			return c.colorMetadata(w, p.TrackID, st, p.Data)
		}
	case flv.PacketMPEG2TSSequenceStart:
		if !st.started {
			// Only an MPEG-2 TS descriptor (AV1 video descriptor), no
			// configuration record: the track cannot be built, and its frames
			// are dropped as a refused codec's rather than as early ones.
			st.started, st.wire, st.refused = true, p.FourCC, true
			c.refuseCodec(video, p.TrackID, codecLabel(p.FourCC)+"-mpeg2ts", errMPEG2TSOnly)
		}
	}
	// End of sequence: nothing to carry, the track stays until a new sequence
	// start replaces it. Command frames, metadata other than colorInfo and
	// multichannel configuration change nothing the outputs use today.
	return nil
}

// rendition returns the rendition of track p.TrackID (not 0) of a kind,
// opening it at the track's first sequence start; nil for a track not
// served, which is logged once: packets before its sequence start (dropped
// like early frames, and counted), a track past Server.MaxTracks, a Writer
// that serves no renditions of that kind, or a rendition the Handler refused
// (the store is full).
func (c *conn) rendition(video bool, p *flv.TrackPacket) *renditionTrack {
	n := 0
	for _, r := range c.pub.renditions {
		if r.video == video {
			if r.id == p.TrackID {
				return r
			}
			n++
		}
	}
	k := &c.pub.kinds[kindIndex(video)]
	if k.refused.has(p.TrackID) {
		return nil
	}
	if p.Type != flv.PacketSequenceHeader && p.Type != flv.PacketMPEG2TSSequenceStart && !(!video && isFrameDescribed(p.FourCC)) {
		if !k.unstarted.mark(p.TrackID) {
			c.log.Info().Str("track", kindName(video)).Uint8("track_id", p.TrackID).Stringer("fourcc", p.FourCC).Stringer("packet", p.Type).
				Msg("multitrack: track without a sequence start, its packets dropped until one comes")
		}
		return nil
	}
	var (
		w   remux.Writer
		err error
	)
	limit := orDefault(c.srv.MaxTracks, DefaultMaxTracks)
	switch {
	case n+1 >= limit:
		err = fmt.Errorf("more than %d %s tracks (max_tracks)", limit, kindName(video))
	case video:
		if o, ok := c.pub.writer.(remux.TrackOpener); ok {
			w, err = o.OpenTrack(p.TrackID)
		} else {
			err = errors.New("the publish serves one video track")
		}
	default:
		if o, ok := c.pub.writer.(remux.AudioTrackOpener); ok {
			w, err = o.OpenAudioTrack(p.TrackID)
		} else {
			err = errors.New("the publish serves one audio track")
		}
	}
	if err == nil && w == nil {
		err = errors.New("no writer")
	}
	if err != nil {
		if !k.refused.mark(p.TrackID) {
			c.log.Warn().Err(err).Str("track", kindName(video)).Uint8("track_id", p.TrackID).Stringer("fourcc", p.FourCC).Msg("multitrack: track refused")
		}
		return nil
	}
	r := &renditionTrack{id: p.TrackID, video: video, w: w}
	c.pub.renditions = append(c.pub.renditions, r)
	c.log.Info().Str("track", kindName(video)).Uint8("track_id", p.TrackID).Stringer("fourcc", p.FourCC).Msg("multitrack: track served as a rendition")
	if err := w.WriteMetadata(c.renditionMetadata(video)); err != nil {
		c.log.Warn().Err(err).Str("track", kindName(video)).Uint8("track_id", p.TrackID).Msg("multitrack: rendition metadata")
	}
	return r
}

// renditionMetadata is what a rendition is told of the publish: one kind
// only (it waits for no other track), at the publish's frame rate.
func (c *conn) renditionMetadata(video bool) *remux.Metadata {
	if !video {
		return &remux.Metadata{HasAudio: true, Encoder: c.pub.md.Encoder}
	}
	return &remux.Metadata{HasVideo: true, FrameRate: c.pub.md.FrameRate, Encoder: c.pub.md.Encoder}
}

var errMPEG2TSOnly = errors.New("sequence start by an MPEG-2 TS descriptor only, without a configuration record")

// sequenceStart announces a track from its configuration record. An
// identical record re-sent is ignored; a codec the outputs cannot carry is
// refused once; a broken record is a protocol error.
func (c *conn) sequenceStart(w remux.Writer, video bool, st *trackState, p *flv.TrackPacket) error {
	wire := p.FourCC
	if p.Signal == flv.SignalHEVCUnderAVC {
		wire = flv.FourCCAVC
	}
	if st.started && st.wire == wire && bytes.Equal(st.record, p.Data) {
		return nil
	}
	if st.started {
		if err := st.change(video, p.TrackID, "sequence start"); err != nil {
			return err
		}
	} else {
		st.changesFrom = time.Now()
	}
	st.started, st.wire, st.held, st.track, st.refused, st.fromFrame = true, wire, nil, nil, false, false
	st.record = append(st.record[:0], p.Data...)
	if isFrameDescribed(p.FourCC) {
		// Whatever the sequence start holds (Enhanced RTMP defines no payload
		// for these codecs), the next coded frame says what the track is.
		st.fromFrame = true
		return nil
	}
	if p.Signal == flv.SignalHEVCCodecID12 || p.Signal == flv.SignalHEVCUnderAVC {
		c.log.Info().Str("track", kindName(video)).Str("signal", p.Signal.String()).Msg("non-standard HEVC signalling accepted")
	}
	t, err := flv.NewTrack(p.FourCC, p.Data)
	if errors.Is(err, flv.ErrUnsupportedCodec) {
		st.refused = true
		c.refuseCodec(video, p.TrackID, codecLabel(p.FourCC), err)
		return nil
	}
	if err != nil {
		return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("%s track %d: %v sequence start: %w", kindName(video), p.TrackID, p.FourCC, err)}
	}
	if (t.Kind() == remux.KindVideo) != video {
		return protoErr(KindMedia, "%s message carries %v, a %v codec", kindName(video), p.FourCC, t.Kind())
	}
	t = withColor(t, st.color)
	if t.Codec == remux.CodecVP9 {
		st.held = t
		return nil
	}
	return c.announce(w, st, t)
}

// change counts a differing sequence start or colour description of a track:
// each is a new track for the outputs, so more than maxConfigChanges within
// configChangeWindow is a protocol error.
func (st *trackState) change(video bool, id uint8, what string) error {
	now := time.Now()
	if now.Sub(st.changesFrom) > configChangeWindow {
		st.changes, st.changesFrom = 0, now
	}
	if st.changes++; st.changes > maxConfigChanges {
		return protoErr(KindMedia, "%s track %d: %s changed %d times within %v", kindName(video), id, what, st.changes, configChangeWindow)
	}
	return nil
}

// colorMetadata applies a colorInfo Metadata packet: kept for the sequence
// starts to come and, when it changes the colour of the announced track,
// announced as a new track (the packager takes it without a discontinuity
// before the first segment). A repeated colorInfo changes nothing.
func (c *conn) colorMetadata(w remux.Writer, id uint8, st *trackState, data []byte) error {
	ci, ok := parseColorInfo(data)
	if !ok || st.color != nil && *st.color == ci {
		return nil
	}
	st.color = &ci
	if st.held != nil {
		st.held = withColor(st.held, st.color)
	}
	if st.track == nil {
		return nil
	}
	t := withColor(st.track, st.color)
	if t == st.track {
		return nil
	}
	if err := st.change(true, id, "colorInfo"); err != nil {
		return err
	}
	return c.announce(w, st, t)
}

func (c *conn) announce(w remux.Writer, st *trackState, t *remux.Track) error {
	st.track, st.held = t, nil
	if err := w.WriteTrack(t); err != nil {
		return fmt.Errorf("ingest: writer: track: %w", err)
	}
	return nil
}

// codedFrame hands a frame of an announced track to the Writer.
func (c *conn) codedFrame(w remux.Writer, video bool, ts uint32, st *trackState, clock *trackClock, p *flv.TrackPacket) error {
	if st.started && p.FourCC != st.wire {
		return protoErr(KindMedia, "%s track %d: coded frame of %v after a %v sequence start, without a new one", kindName(video), p.TrackID, p.FourCC, st.wire)
	}
	if st.refused {
		c.pub.unsupported[kindIndex(video)]++
		return nil
	}
	t := st.track
	if t == nil && (st.fromFrame || !st.started && isFrameDescribed(p.FourCC)) {
		// AC-3, E-AC-3: the frame is the description, with or without a
		// sequence start before it.
		nt, err := flv.NewTrack(p.FourCC, p.Data)
		if err != nil {
			return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("%s track %d: %v frame at %d ms: %w", kindName(video), p.TrackID, p.FourCC, ts, err)}
		}
		if !st.started {
			st.started, st.wire, st.changesFrom = true, p.FourCC, time.Now()
		}
		st.fromFrame, t = false, nt
		if err := c.announce(w, st, t); err != nil {
			return err
		}
	}
	if t == nil && st.held != nil {
		// VP9: the first key frame gives the size; frames before it are dropped
		// like frames before a sequence start.
		f, err := vp9.ParseFrame(p.Data)
		if err != nil {
			return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("video frame at %d ms: %w", ts, err)}
		}
		if f.Key {
			st.held.Width, st.held.Height = f.Width, f.Height
			t = st.held
			if err := c.announce(w, st, t); err != nil {
				return err
			}
		}
	}
	if t == nil {
		if st.early++; st.early > maxEarlyFrames {
			return protoErr(KindMedia, "%s track %d: %d coded frames without a sequence start", kindName(video), p.TrackID, st.early)
		}
		c.pub.early++
		return nil
	}
	key := p.Key
	switch t.Codec {
	case remux.CodecH264:
		if err := flv.CheckNALUs(p.Data, t.NALULengthSize); err != nil {
			return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("video frame at %d ms: %w", ts, err)}
		}
	case remux.CodecHEVC, remux.CodecAV1, remux.CodecVP9:
		if t.Codec == remux.CodecHEVC {
			if err := flv.CheckNALUs(p.Data, t.NALULengthSize); err != nil {
				return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("video frame at %d ms: %w", ts, err)}
			}
		}
		// The bitstream says what a sync sample is; encoders set the FLV frame
		// type loosely for these codecs. A VP9 frame header is read once here,
		// for the key flag and for the size a key frame may change.
		var err error
		var f vp9.Frame
		if t.Codec == remux.CodecVP9 {
			f, err = vp9.ParseFrame(p.Data)
			key = f.Key
		} else {
			key, err = flv.IsKey(t, p.Data)
		}
		if err != nil {
			return &ProtocolError{Kind: KindMedia, Err: fmt.Errorf("video frame at %d ms: %w", ts, err)}
		}
		if key != p.Key {
			c.pub.keyMismatch++
		}
		if f.Key && (f.Width != t.Width || f.Height != t.Height) {
			// VP9 may change its frame size at any key frame without a new
			// vpcC: the outputs need a new init segment with the new size.
			if err := st.change(true, p.TrackID, "VP9 frame size"); err != nil {
				return err
			}
			nt := *t
			nt.Width, nt.Height = f.Width, f.Height
			t = &nt
			if err := c.announce(w, st, t); err != nil {
				return err
			}
		}
	default:
		key = true
	}
	c.pub.frame = remux.Frame{Track: t, DTS: c.pub.tl.dtsOn(clock, ts), CTS: p.CTS, Key: key, Data: p.Data}
	if err := w.WriteFrame(&c.pub.frame); err != nil {
		return fmt.Errorf("ingest: writer: frame: %w", err)
	}
	c.pub.frames++
	c.framesUncounted++
	c.pub.bytes += int64(len(p.Data))
	return nil
}

// isFrameDescribed reports whether a codec's track is described by its coded
// frames rather than by a sequence start: AC-3 and E-AC-3.
func isFrameDescribed(f flv.FourCC) bool { return f == flv.FourCCAC3 || f == flv.FourCCEAC3 }

// refuseLegacy drops a legacy message of a codec the outputs cannot carry,
// logging and counting the refusal once per session and kind. The track
// state is left alone: a stray message of another codec does not end a good
// track, as it did not before Enhanced RTMP.
func (c *conn) refuseLegacy(video bool, b0 byte, err error) {
	k := &c.pub.kinds[kindIndex(video)]
	if !k.legacyRefused {
		k.legacyRefused = true
		label := "flv-audio-" + strconv.Itoa(int(b0>>4))
		if video {
			label = "flv-video-" + strconv.Itoa(int(b0&0x0f))
		}
		c.refuseCodec(video, 0, label, err)
	}
	c.pub.unsupported[kindIndex(video)]++
}

// refuseCodec logs and counts a track refused for its codec.
func (c *conn) refuseCodec(video bool, id uint8, label string, err error) {
	c.srv.stats.unsupportedCodec(label)
	c.log.Warn().Err(err).Str("track", kindName(video)).Uint8("track_id", id).Str("codec", label).
		Msg("unsupported codec: track ignored")
}

// codecLabel names a refused FourCC for logs and metrics: the FourCCs of the
// specification by name, anything else as "other", so that a hostile
// publisher cannot make up metric labels.
func codecLabel(f flv.FourCC) string {
	if f.IsVideo() || f.IsAudio() {
		return f.String()
	}
	return "other"
}

func kindIndex(video bool) int {
	if video {
		return 0
	}
	return 1
}

func kindName(video bool) string {
	if video {
		return "video"
	}
	return "audio"
}
