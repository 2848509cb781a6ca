package httpserve

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// OBSConfig is the ladder rtmpgate hands to OBS Studio's "multitrack video"
// (Enhanced Broadcasting) through its GetClientConfiguration request
// (obsconfig.go). A nil *OBSConfig in Config leaves the route unserved.
type OBSConfig struct {
	// Renditions are the video tracks OBS is asked to encode, highest first.
	Renditions []OBSRendition
	// KeyframeInterval is every rendition's keyframe interval, whole seconds:
	// OBS aligns the renditions' keyframes, and segments are cut on them.
	KeyframeInterval time.Duration
	// AudioBitrate is the AAC bitrate asked of each audio track, kbit/s.
	AudioBitrate int
	// IngestURL is the rtmp://host[:port]/app OBS publishes to. Empty: the
	// host the request was sent to, RTMPPort and the app "live".
	IngestURL string
	// RTMPPort is the port the RTMP listener is bound to, for IngestURL's default.
	RTMPPort int
	// Encoder, when not "" or "auto", is the OBS encoder id every rendition
	// is given (obs_x264, jim_nvenc...); else one is chosen per client.
	Encoder string
}

// OBSRendition is one video track of the ladder.
type OBSRendition struct {
	Width   int    // 0: from the client's canvas aspect ratio (16:9 when unknown)
	Height  int    // lines
	FPS     int    // frame-rate cap; 0: the client's canvas rate
	Bitrate int    // kbit/s
	Codec   string // "h264", "hevc" or "av1"
}

// Bounds of a ladder entry. OBS encodes at most 10 video tracks (its
// MAX_OUTPUT_VIDEO_ENCODERS); sizes are even for 4:2:0 chroma.
const (
	MaxOBSRenditions  = 10
	minOBSLines       = 144
	maxOBSLines       = 4320
	maxOBSWidth       = 7680
	minOBSBitrateKbps = 50
	maxOBSBitrateKbps = 200_000
	maxOBSFPS         = 240
)

// DefaultOBSLadder is the ladder served when the operator names none:
// 1080p and 720p at the canvas frame rate and 360p at 30 fps, H.264, about
// 10 Mbit/s in all (an OBS user with less upload sets "Maximum Streaming
// Bandwidth", and the top renditions are left out to fit).
var DefaultOBSLadder = []string{"1080p 6000k", "720p 3000k", "360p 30fps 800k"}

// ParseOBSRendition reads one ladder entry: blank-separated tokens in any
// order, a size (1080p, or 1920x1080), a bitrate (6000k, or 6M, 2.5M), and
// optionally a frame-rate cap (30fps) and a codec (h264, the default; hevc;
// av1). For example "720p 30fps 2500k".
func ParseOBSRendition(s string) (OBSRendition, error) {
	var r OBSRendition
	var haveSize, haveFPS, haveCodec bool
	for _, tok := range strings.Fields(s) {
		t := strings.ToLower(tok)
		switch {
		case t == "h264" || t == "hevc" || t == "av1":
			if haveCodec {
				return r, fmt.Errorf("%q: two codecs", s)
			}
			r.Codec, haveCodec = t, true
		case strings.HasSuffix(t, "fps"):
			n, err := strconv.Atoi(strings.TrimSuffix(t, "fps"))
			if haveFPS || err != nil || n < 1 || n > maxOBSFPS {
				return r, fmt.Errorf("%q: frame rate %q is not 1fps to %dfps, once", s, tok, maxOBSFPS)
			}
			r.FPS, haveFPS = n, true
		case strings.HasSuffix(t, "p"):
			n, err := strconv.Atoi(strings.TrimSuffix(t, "p"))
			if haveSize || err != nil {
				return r, fmt.Errorf("%q: size %q is not HEIGHTp or WIDTHxHEIGHT, once", s, tok)
			}
			r.Height, haveSize = n, true
		case strings.Contains(t, "x"):
			ws, hs, _ := strings.Cut(t, "x")
			w, err1 := strconv.Atoi(ws)
			h, err2 := strconv.Atoi(hs)
			if haveSize || err1 != nil || err2 != nil {
				return r, fmt.Errorf("%q: size %q is not HEIGHTp or WIDTHxHEIGHT, once", s, tok)
			}
			if w < 2 || w > maxOBSWidth || w%2 != 0 {
				return r, fmt.Errorf("%q: width %d is not even and 2 to %d", s, w, maxOBSWidth)
			}
			r.Width, r.Height, haveSize = w, h, true
		case strings.HasSuffix(t, "k") || strings.HasSuffix(t, "m"):
			if r.Bitrate != 0 {
				return r, fmt.Errorf("%q: two bitrates", s)
			}
			kbps, err := parseKbps(t)
			if err != nil {
				return r, fmt.Errorf("%q: bitrate %q: %w", s, tok, err)
			}
			r.Bitrate = kbps
		default:
			return r, fmt.Errorf("%q: %q is not a size (1080p, 1920x1080), bitrate (6000k, 6M), frame rate (30fps) or codec (h264, hevc, av1)", s, tok)
		}
	}
	if !haveSize || r.Bitrate == 0 {
		return r, fmt.Errorf("%q: a rendition needs a size (1080p) and a bitrate (6000k)", s)
	}
	if r.Height < minOBSLines || r.Height > maxOBSLines || r.Height%2 != 0 {
		return r, fmt.Errorf("%q: height %d is not even and %d to %d", s, r.Height, minOBSLines, maxOBSLines)
	}
	if r.Codec == "" {
		r.Codec = "h264"
	}
	return r, nil
}

// parseKbps reads 6000k (kbit/s) or 6M / 2.5M (Mbit/s) as kbit/s.
func parseKbps(t string) (int, error) {
	errRange := fmt.Errorf("not %dk to %dk", minOBSBitrateKbps, maxOBSBitrateKbps)
	num, unit := t[:len(t)-1], t[len(t)-1]
	var kbps int
	if unit == 'k' {
		n, err := strconv.Atoi(num)
		if err != nil {
			return 0, errRange
		}
		kbps = n
	} else {
		// Mbit/s with at most three decimals, read without floating point so
		// 2.5M is exactly 2500k.
		whole, frac, _ := strings.Cut(num, ".")
		if whole == "" || len(frac) > 3 || strings.ContainsAny(whole+frac, "+-") {
			return 0, errRange
		}
		w, err := strconv.Atoi(whole)
		if err != nil || w > maxOBSBitrateKbps/1000 {
			return 0, errRange
		}
		f := 0
		if frac != "" {
			if f, err = strconv.Atoi((frac + "00")[:3]); err != nil {
				return 0, errRange
			}
		}
		kbps = w*1000 + f
	}
	if kbps < minOBSBitrateKbps || kbps > maxOBSBitrateKbps {
		return 0, errRange
	}
	return kbps, nil
}

// ParseOBSLadder reads a whole ladder: 1 to MaxOBSRenditions entries.
func ParseOBSLadder(entries []string) ([]OBSRendition, error) {
	if len(entries) == 0 {
		return nil, errors.New("no renditions")
	}
	if len(entries) > MaxOBSRenditions {
		return nil, fmt.Errorf("%d renditions, OBS encodes at most %d", len(entries), MaxOBSRenditions)
	}
	out := make([]OBSRendition, 0, len(entries))
	for _, e := range entries {
		r, err := ParseOBSRendition(e)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}
