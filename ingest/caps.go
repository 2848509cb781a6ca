package ingest

import (
	"math"
	"sort"
	"strings"

	"github.com/rtmpgate/rtmpgate/ingest/rtmp"
)

// Enhanced RTMP capability flags of the connect command (E-RTMP v2,
// "Enhancing NetConnection connect Command").
const (
	capsExReconnect           = 0x01
	capsExMultitrack          = 0x02
	capsExModEx               = 0x04
	capsExTimestampNanoOffset = 0x08

	fourCCCanForward = 0x04 // FourCcInfoMask.CanForward
)

// serverCapsEx is what the server states in capsEx: it sends
// NetConnection.Connect.ReconnectRequest, takes multitrack (every video and
// audio track a rendition of the stream's ladder), parses ModEx and applies
// TimestampOffsetNano.
const serverCapsEx = capsExReconnect | capsExMultitrack | capsExModEx | capsExTimestampNanoOffset

// The FourCCs the outputs carry, as the connect _result states them.
var (
	acceptedVideo = []string{"avc1", "hvc1", "av01", "vp09"}
	acceptedAudio = []string{"mp4a", "Opus", "fLaC", "ac-3", "ec-3"}
)

// maxCapsEntries bounds what is kept of a client's lists and maps for the log.
const maxCapsEntries = 32

// clientCaps is what a client's connect command object says it supports.
type clientCaps struct {
	fourCCList     []string          // legacy fourCcList
	video, audio   map[string]uint32 // [video|audio]FourCcInfoMap: FourCC to FourCcInfoMask
	capsEx         uint32
	capsExAnnounce bool // capsEx was present
}

// readClientCaps reads fourCcList, videoFourCcInfoMap, audioFourCcInfoMap and
// capsEx from a connect command object. A map may come as an AMF0 object or
// an ECMA array, as the specification asks readers to accept; entries of the
// wrong type are skipped, and at most maxCapsEntries of each are kept.
func readClientCaps(obj rtmp.Object) clientCaps {
	var c clientCaps
	if v, ok := obj.Get("fourCcList"); ok {
		if list, ok := v.([]any); ok {
			for _, e := range list {
				if s, ok := e.(string); ok && len(c.fourCCList) < maxCapsEntries {
					c.fourCCList = append(c.fourCCList, truncate(s, 8))
				}
			}
		}
	}
	c.video = readInfoMap(obj, "videoFourCcInfoMap")
	c.audio = readInfoMap(obj, "audioFourCcInfoMap")
	if v, ok := obj.Get("capsEx"); ok {
		if f, ok := v.(float64); ok && f >= 0 && f <= math.MaxUint32 {
			c.capsEx, c.capsExAnnounce = uint32(f), true
		}
	}
	return c
}

func readInfoMap(obj rtmp.Object, key string) map[string]uint32 {
	v, ok := obj.Get(key)
	if !ok {
		return nil
	}
	var props []rtmp.Property
	switch m := v.(type) {
	case rtmp.Object:
		props = m
	case rtmp.ECMAArray:
		props = m
	default:
		return nil
	}
	out := make(map[string]uint32, min(len(props), maxCapsEntries))
	for _, p := range props {
		if f, ok := p.Value.(float64); ok && f >= 0 && f <= math.MaxUint32 && len(out) < maxCapsEntries {
			out[truncate(p.Key, 8)] = uint32(f)
		}
	}
	return out
}

// reconnect reports whether the client can act on a ReconnectRequest.
func (c clientCaps) reconnect() bool { return c.capsEx&capsExReconnect != 0 }

// mapString renders an info map for a log line, keys sorted: "av01:3,hvc1:3".
func mapString(m map[string]uint32) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte(':')
		b.WriteString(itoa(m[k]))
	}
	return b.String()
}

func itoa(v uint32) string {
	var buf [10]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + v%10)
		if v /= 10; v == 0 {
			return string(buf[i:])
		}
	}
}

// serverCapsProps are the properties the connect _result adds to its
// properties object, next to fmsVer and capabilities: the legacy fourCcList
// echo, the FourCC info maps (every accepted codec CanForward: rtmpgate
// repackages, it neither decodes nor encodes) and capsEx.
func serverCapsProps() []rtmp.Property {
	list := make([]any, 0, len(acceptedVideo)+len(acceptedAudio))
	vmap := make(rtmp.Object, 0, len(acceptedVideo))
	amap := make(rtmp.Object, 0, len(acceptedAudio))
	for _, f := range acceptedVideo {
		list = append(list, f)
		vmap = append(vmap, rtmp.Property{Key: f, Value: float64(fourCCCanForward)})
	}
	for _, f := range acceptedAudio {
		list = append(list, f)
		amap = append(amap, rtmp.Property{Key: f, Value: float64(fourCCCanForward)})
	}
	return []rtmp.Property{
		{Key: "fourCcList", Value: list},
		{Key: "videoFourCcInfoMap", Value: vmap},
		{Key: "audioFourCcInfoMap", Value: amap},
		{Key: "capsEx", Value: float64(serverCapsEx)},
	}
}
