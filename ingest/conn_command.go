package ingest

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
	"github.com/rtmpgate/rtmpgate/remux"
)

// publishStreamID is the only message stream id we hand out: a publisher needs one.
const publishStreamID = 1

// errPlayRefused ends a connection that asked to play.
var errPlayRefused = errors.New("ingest: play refused: rtmpgate does not serve RTMP playback")

// command handles one AMF0 command message (spec 7.2).
func (c *conn) command(streamID uint32, p []byte) error {
	vals, err := rtmp.DecodeAMF0(p)
	if err != nil {
		return &ProtocolError{Kind: KindAMF, Err: fmt.Errorf("command: %w", err)}
	}
	if len(vals) == 0 {
		return protoErr(KindCommand, "empty command message")
	}
	name, ok := vals[0].(string)
	if !ok {
		return protoErr(KindCommand, "command name is %s, want a string", amfTypeName(vals[0]))
	}
	var tx float64
	if len(vals) > 1 {
		tx, _ = vals[1].(float64)
	}
	var args []any // after the command object
	if len(vals) > 3 {
		args = vals[3:]
	}
	switch name {
	case "connect":
		var obj rtmp.Object
		if len(vals) > 2 {
			obj, _ = vals[2].(rtmp.Object)
		}
		return c.connect(tx, obj)
	case "releaseStream":
		if tx > 0 {
			c.w.AppendCommand(0, "_result", tx, nil, rtmp.Undefined{})
		}
	case "FCPublish":
		c.w.AppendCommand(0, "onFCPublish", 0, nil, rtmp.Object{
			{Key: "code", Value: "NetStream.Publish.Start"},
			{Key: "description", Value: argString(args, 0)},
		})
	case "createStream":
		c.w.AppendCommand(0, "_result", tx, nil, publishStreamID)
		c.w.AppendUserControl(rtmp.EventStreamBegin, publishStreamID)
	case "publish":
		return c.publish(streamID, argString(args, 0))
	case "FCUnpublish":
		c.pub.unpublishing = true
	case "deleteStream", "closeStream":
		c.pub.unpublishing = true
		c.endPublish(nil)
	case "play", "play2":
		c.w.AppendCommand(streamID, "onStatus", 0, nil, rtmp.Object{
			{Key: "level", Value: "error"},
			{Key: "code", Value: "NetStream.Play.Failed"},
			{Key: "description", Value: "rtmpgate does not serve RTMP playback"},
		})
		return errPlayRefused
	case "_result", "_error", "onStatus", "onBWDone", "_checkbw", "getStreamLength":
		// Replies to nothing we asked, and bandwidth probes some encoders send
		// after connect: nothing to answer.
	default:
		if tx > 0 {
			c.w.AppendCommand(0, "_error", tx, nil, rtmp.Object{
				{Key: "level", Value: "error"},
				{Key: "code", Value: "NetConnection.Call.Failed"},
				{Key: "description", Value: "unknown command " + truncate(name, 64)},
			})
		}
	}
	return nil
}

func argString(args []any, i int) string {
	if i < len(args) {
		s, _ := args[i].(string)
		return s
	}
	return ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func amfTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case rtmp.Object:
		return "an object"
	case rtmp.ECMAArray:
		return "an ECMA array"
	case []any:
		return "a strict array"
	case rtmp.Undefined:
		return "undefined"
	case rtmp.Date:
		return "a date"
	}
	return fmt.Sprintf("%T", v)
}

// connect answers NetConnection.connect: window, bandwidth and chunk size first,
// then _result, as Flash Media Server and nginx-rtmp order them.
func (c *conn) connect(tx float64, obj rtmp.Object) error {
	app, _ := obj.GetString("app")
	c.tcURL, _ = obj.GetString("tcUrl")
	c.app, _, _ = strings.Cut(app, "?")
	if _, q, ok := strings.Cut(c.tcURL, "?"); ok {
		c.tcQuery = q
	} else if _, q, ok := strings.Cut(app, "?"); ok {
		c.tcQuery = q
	}
	encoding := 0.0
	if v, ok := obj.Get("objectEncoding"); ok {
		encoding, _ = v.(float64)
	}
	c.connected = true
	c.log = c.log.With().Str("app", c.app).Logger()
	// The query is left out of the log: it may carry a publish token.
	tcURL, _, _ := strings.Cut(c.tcURL, "?")
	ev := c.log.Info().Str("tc_url", tcURL).Bool("digest_handshake", c.digest)
	if v, ok := obj.GetString("flashVer"); ok {
		ev = ev.Str("flash_ver", v)
	}
	// Enhanced RTMP: what the client can send and do, logged once here;
	// flv says per message what we can carry.
	c.caps = readClientCaps(obj)
	if c.caps.fourCCList != nil {
		ev = ev.Strs("fourcc_list", c.caps.fourCCList)
	}
	if c.caps.video != nil {
		ev = ev.Str("video_fourcc_info_map", mapString(c.caps.video))
	}
	if c.caps.audio != nil {
		ev = ev.Str("audio_fourcc_info_map", mapString(c.caps.audio))
	}
	if c.caps.capsExAnnounce {
		ev = ev.Uint32("caps_ex", c.caps.capsEx)
	}
	ev.Msg("connect")

	c.w.AppendControl(rtmp.MsgWindowAckSize, c.window)
	c.w.AppendSetPeerBandwidth(c.window)
	c.w.AppendControl(rtmp.MsgSetChunkSize, uint32(c.chunkSize))
	c.w.ChunkSize = c.chunkSize
	c.w.AppendCommand(0, "_result", tx,
		append(rtmp.Object{
			{Key: "fmsVer", Value: "FMS/3,0,1,123"},
			{Key: "capabilities", Value: 31},
		}, serverCapsProps()...),
		rtmp.Object{
			{Key: "level", Value: "status"},
			{Key: "code", Value: "NetConnection.Connect.Success"},
			{Key: "description", Value: "Connection succeeded."},
			{Key: "objectEncoding", Value: encoding},
		})
	return nil
}

// publish asks the Handler for a Writer. A refusal is answered with the
// PublishError's code, else NetStream.Publish.BadName, and ends the connection.
func (c *conn) publish(streamID uint32, full string) error {
	if !c.connected {
		return protoErr(KindCommand, "publish before connect")
	}
	name, query, _ := strings.Cut(full, "?")
	if query == "" {
		query = c.tcQuery
	}
	var err error
	var w remux.Writer
	switch {
	case name == "":
		err = errors.New("empty stream name")
	case c.pub.writer != nil:
		err = fmt.Errorf("already publishing %q on this connection", c.pub.name)
	default:
		w, err = c.srv.Handler.OnPublish(c.ctx, PublishRequest{
			App: c.app, Name: name, Query: query, Remote: c.nc.RemoteAddr(), Kick: c.kick,
		})
		if err == nil && w == nil {
			err = errors.New("handler returned no writer")
		}
	}
	if err != nil {
		code, desc := StatusPublishBadName, err.Error()
		var pe *PublishError
		if errors.As(err, &pe) {
			code = pe.status()
			if pe.Err != nil {
				desc = pe.Err.Error()
			}
			if pe.Withhold {
				name = "(withheld)"
			}
		}
		c.w.AppendCommand(streamID, "onStatus", 0, nil, rtmp.Object{
			{Key: "level", Value: "error"},
			{Key: "code", Value: code},
			{Key: "description", Value: truncate(desc, 256)},
		})
		c.srv.stats.publishRefused.Add(1)
		c.log.Info().Str("stream", name).Str("code", code).Err(err).Msg("publish refused")
		return fmt.Errorf("ingest: publish %s/%s refused: %w", c.app, name, err)
	}
	if r, ok := w.(Renamed); ok {
		name = r.PublicName()
	}
	c.pub = pubState{writer: w, name: name, started: time.Now()}
	c.mu.Lock()
	c.stream = liveStream{app: c.app, name: name, live: true, reconnect: c.caps.reconnect()}
	c.mu.Unlock()
	c.published = true
	c.srv.stats.publishing.Add(1)
	c.log = c.log.With().Str("stream", name).Logger()
	c.log.Info().Msg("publish")
	c.w.AppendUserControl(rtmp.EventStreamBegin, streamID)
	c.w.AppendCommand(streamID, "onStatus", 0, nil, rtmp.Object{
		{Key: "level", Value: "status"},
		{Key: "code", Value: "NetStream.Publish.Start"},
		{Key: "description", Value: name + " is now published."},
		{Key: "details", Value: name},
	})
	return nil
}

// data handles an AMF0 data message: @setDataFrame / onMetaData become
// remux.Metadata; other data messages are ignored.
func (c *conn) data(p []byte) error {
	vals, err := rtmp.DecodeAMF0(p)
	if err != nil {
		return &ProtocolError{Kind: KindAMF, Err: fmt.Errorf("data message: %w", err)}
	}
	if len(vals) > 0 && vals[0] == "@setDataFrame" {
		vals = vals[1:]
	}
	if len(vals) < 2 || vals[0] != "onMetaData" || c.pub.writer == nil {
		return nil
	}
	var props rtmp.Object
	switch v := vals[1].(type) {
	case rtmp.Object:
		props = v
	case rtmp.ECMAArray:
		props = rtmp.Object(v)
	default:
		return nil
	}
	md := &remux.Metadata{}
	num := func(key string) float64 {
		v, _ := props.Get(key)
		f, _ := v.(float64)
		return f
	}
	_, md.HasVideo = props.Get("videocodecid")
	_, md.HasAudio = props.Get("audiocodecid")
	// Enhanced RTMP sends the FourCC as the number its four bytes make.
	md.VideoFourCC = metadataFourCC(num("videocodecid"))
	md.AudioFourCC = metadataFourCC(num("audiocodecid"))
	md.Width = int(clampDim(num("width")))
	md.Height = int(clampDim(num("height")))
	md.FrameRate = num("framerate")
	md.VideoBitrate = num("videodatarate")
	md.AudioBitrate = num("audiodatarate")
	if v, ok := props.Get("encoder"); ok {
		md.Encoder, _ = v.(string)
	}
	md.AudioLabels = audioLabels(props)
	if err := c.pub.writer.WriteMetadata(md); err != nil {
		return fmt.Errorf("ingest: writer: metadata: %w", err)
	}
	c.pub.md = *md
	for _, r := range c.pub.renditions {
		if err := r.w.WriteMetadata(c.renditionMetadata(r.video)); err != nil {
			return fmt.Errorf("ingest: rendition writer: metadata: %w", err)
		}
	}
	return nil
}

// maxLabel bounds a track label's name, language and role, as read.
const maxLabel = 64

// audioLabels reads onMetaData's audioTrackIdInfoMap (Enhanced RTMP v2,
// "Enhancing onMetaData": an object or ECMA array keyed by track id, each
// value an object of the ways the track differs from the default). The
// specification names no label fields, so the ones encoders and tools use
// for a track's title and language are read: name, title or label; language
// or lang; role or kind. Entries that name nothing, keys that are no track
// id and values of other types are skipped; at most 256 are kept, by id.
func audioLabels(props rtmp.Object) []remux.TrackLabel {
	v, ok := props.Get("audioTrackIdInfoMap")
	if !ok {
		return nil
	}
	var entries []rtmp.Property
	switch m := v.(type) {
	case rtmp.Object:
		entries = m
	case rtmp.ECMAArray:
		entries = m
	default:
		return nil
	}
	var out []remux.TrackLabel
	for _, e := range entries {
		id, err := strconv.ParseUint(e.Key, 10, 8)
		if err != nil || len(out) >= 256 {
			continue
		}
		var info rtmp.Object
		switch t := e.Value.(type) {
		case rtmp.Object:
			info = t
		case rtmp.ECMAArray:
			info = rtmp.Object(t)
		default:
			continue
		}
		str := func(keys ...string) string {
			for _, k := range keys {
				if v, ok := info.Get(k); ok {
					if s, ok := v.(string); ok && s != "" {
						return truncate(s, maxLabel)
					}
				}
			}
			return ""
		}
		l := remux.TrackLabel{ID: uint8(id), Name: str("name", "title", "label"), Language: str("language", "lang"), Role: str("role", "kind")}
		if l.Name == "" && l.Language == "" && l.Role == "" {
			continue
		}
		if i := slices.IndexFunc(out, func(o remux.TrackLabel) bool { return o.ID == l.ID }); i >= 0 {
			out[i] = l
			continue
		}
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b remux.TrackLabel) int { return int(a.ID) - int(b.ID) })
	return out
}

// metadataFourCC reads a videocodecid or audiocodecid that holds a FourCC
// (E-RTMP v2, "Enhancing onMetaData": 'hvc1' is 0x68766331): "" for a legacy
// codec id (a small number) or anything that is not four printable ASCII bytes.
func metadataFourCC(f float64) string {
	if !(f >= 1<<24 && f <= math.MaxUint32) || f != math.Trunc(f) {
		return ""
	}
	v := uint32(f)
	b := []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return ""
		}
	}
	return string(b)
}

// clampDim keeps a peer's width or height within what an int conversion and any
// real picture allow (NaN and negatives become 0).
func clampDim(f float64) float64 {
	if !(f > 0) {
		return 0
	}
	return min(f, 1<<16)
}
