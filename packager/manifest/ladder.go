package manifest

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Rung is one rendition of a ladder: its View and the URI prefix of its
// files relative to the ladder's multivariant playlist ("demo_hi/" for a
// separately published key, "v1/" for a track of a multitrack publish, ""
// for the publish's own track 0).
type Rung struct {
	Prefix string
	View   *View
	// Audio names the rung's audio as one track of a multitrack publish's
	// audio renditions (TrackLadder, LadderMPD); nil for a ladder of keys
	// and for a publish with one audio track.
	Audio *AudioLabel
}

// AudioLabel is one audio track of a multitrack publish as a ladder lists
// it: its Enhanced RTMP track id (0 is the default track) and what the
// publisher's metadata said of it, each field empty when it said nothing.
type AudioLabel struct {
	ID       int
	Name     string
	Language string // BCP 47; one that is not well formed is left out
	Role     string // a urn:mpeg:dash:role:2011 value; others are left out
}

// Ladder appends the fMP4 multivariant playlist of a ladder: one variant per
// rung whose window has a CMAF segment with video, highest peak bandwidth
// first (ties by prefix, so the order is stable). Each variant refers to the
// rung's own media playlists. Each rung's audio is its own EXT-X-MEDIA group
// ("aac-<i>"), all named alike: the renditions come from separate publishers
// on separate timelines, so one rung's audio would not line up with another
// rung's video, and a player switching variants switches audio with it. It
// returns dst unchanged when no rung has video.
func Ladder(dst []byte, rungs []Rung) []byte { return ladder(dst, rungs, nil) }

// TrackLadder appends the fMP4 multivariant playlist of a ladder made of one
// publish's tracks (Enhanced RTMP multitrack): one variant per video rung
// with a CMAF video track, ordered as Ladder orders them, all of them
// referring to one audio rendition group ("aac") of the audio rungs' audio
// playlists. The tracks come over one connection on one timeline, so every
// audio track lines up with every video track and a variant switch keeps the
// audio playing. A rung without audio of its own (a track rendition) is
// announced with the largest audio peak bitrate added to its own rates and
// the audio codecs in CODECS. With one audio rung without a label the group
// has one rendition named "audio"; with several (RFC 8216bis 4.4.6.1) each
// is a rendition of its own, track 0 first and the default, each with a
// unique NAME (the label's, else "Audio N", N counting from 1) and its
// LANGUAGE when known. It returns dst unchanged when no rung has video.
func TrackLadder(dst []byte, video []Rung, audio ...Rung) []byte {
	if len(audio) == 0 {
		audio = []Rung{{}}
	}
	return ladder(dst, video, audio)
}

// audioRendition is one EXT-X-MEDIA entry of a TrackLadder.
type audioRendition struct {
	prefix string
	init   *Init
	rate   int64
	label  AudioLabel
}

// trackAudio lists the audio rungs with a CMAF audio track, track 0 first.
func trackAudio(rungs []Rung) []audioRendition {
	var as []audioRendition
	for _, r := range rungs {
		if seg := lastCMAF(r.View); seg != nil && seg.Init[Audio] != nil {
			a := audioRendition{prefix: r.Prefix, init: seg.Init[Audio], rate: r.View.Rates.Track[Audio]}
			if r.Audio != nil {
				a.label = *r.Audio
			}
			as = append(as, a)
		}
	}
	sort.SliceStable(as, func(i, j int) bool { return as[i].label.ID < as[j].label.ID })
	return as
}

func lastCMAF(v *View) *Segment {
	if v == nil {
		return nil
	}
	for i := len(v.Window) - 1; i >= 0; i-- {
		if seg := v.Window[i]; seg.HasCMAF() {
			return seg
		}
	}
	return nil
}

// ladder renders Ladder (shared nil) or TrackLadder.
func ladder(dst []byte, rungs []Rung, shared []Rung) []byte {
	type entry struct {
		prefix string
		inits  [2]*Init
		rates  Rates
	}
	var (
		sharedAudio *Init
		sharedRate  int64
		audios      []audioRendition
		codecs      []string // the audio renditions' codecs, each once
		topRate     int64    // the largest audio peak
	)
	if shared != nil {
		audios = trackAudio(shared)
		for _, a := range audios {
			topRate = max(topRate, a.rate)
			if !slicesContains(codecs, a.init.Track.CodecString) {
				codecs = append(codecs, a.init.Track.CodecString)
			}
		}
		if len(audios) > 0 {
			sharedAudio, sharedRate = audios[0].init, audios[0].rate
		}
	}
	var es []entry
	for _, r := range rungs {
		if seg := lastCMAF(r.View); seg != nil && seg.Init[Video] != nil {
			e := entry{r.Prefix, seg.Init, r.View.Rates}
			if shared != nil {
				switch {
				case e.inits[Audio] == nil && sharedAudio != nil:
					e.rates.Peak += topRate
					e.rates.Avg += topRate
				case e.inits[Audio] != nil:
					// The rung's own rates hold its audio, track 0: a
					// larger audio rendition counts for the difference.
					e.rates.Peak += topRate - sharedRate
					e.rates.Avg += topRate - sharedRate
				}
				e.inits[Audio] = sharedAudio
			}
			es = append(es, e)
		}
	}
	if len(es) == 0 {
		return dst
	}
	sort.SliceStable(es, func(i, j int) bool {
		if es[i].rates.Peak != es[j].rates.Peak {
			return es[i].rates.Peak > es[j].rates.Peak
		}
		return es[i].prefix < es[j].prefix
	})
	b := append(dst, "#EXTM3U\n#EXT-X-VERSION:6\n"...)
	if sharedAudio != nil {
		b = appendAudioRenditions(b, audios)
	}
	for i, e := range es {
		if a := e.inits[Audio]; a != nil && shared == nil {
			b = append(b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac-`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="`...)
			b = strconv.AppendInt(b, int64(max(a.Track.Channels, 1)), 10)
			b = append(b, `",URI="`...)
			b = appendURI(b, e.prefix)
			b = append(b, AudioPlaylistPath...)
			b = append(b, "\"\n"...)
		}
		if e.rates.Captions {
			b = append(b, `#EXT-X-MEDIA:TYPE=CLOSED-CAPTIONS,GROUP-ID="cc-`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, `",NAME="CC1",DEFAULT=YES,AUTOSELECT=YES,INSTREAM-ID="CC1"`+"\n"...)
		}
	}
	for i, e := range es {
		v, a := e.inits[Video], e.inits[Audio]
		b = append(b, "#EXT-X-STREAM-INF:BANDWIDTH="...)
		b = strconv.AppendInt(b, e.rates.Peak, 10)
		b = append(b, ",AVERAGE-BANDWIDTH="...)
		b = strconv.AppendInt(b, e.rates.Avg, 10)
		b = append(b, `,CODECS="`...)
		b = appendToken(b, v.Track.CodecString)
		switch {
		case a != nil && shared != nil:
			for _, c := range codecs {
				b = append(b, ',')
				b = appendToken(b, c)
			}
		case a != nil:
			b = append(b, ',')
			b = appendToken(b, a.Track.CodecString)
		}
		b = append(b, `",RESOLUTION=`...)
		b = strconv.AppendInt(b, int64(v.Track.Width), 10)
		b = append(b, 'x')
		b = strconv.AppendInt(b, int64(v.Track.Height), 10)
		if e.rates.FPS > 0 {
			b = append(b, ",FRAME-RATE="...)
			b = strconv.AppendFloat(b, e.rates.FPS, 'f', 3, 64)
		}
		if a != nil {
			if shared != nil {
				b = append(b, `,AUDIO="aac"`...)
			} else {
				b = append(b, `,AUDIO="aac-`...)
				b = strconv.AppendInt(b, int64(i), 10)
				b = append(b, '"')
			}
		}
		if e.rates.Captions {
			b = append(b, `,CLOSED-CAPTIONS="cc-`...)
			b = strconv.AppendInt(b, int64(i), 10)
			b = append(b, '"')
		} else {
			b = append(b, ",CLOSED-CAPTIONS=NONE"...)
		}
		b = append(b, '\n')
		b = appendURI(b, e.prefix)
		b = append(b, VideoPlaylistPath...)
		b = append(b, '\n')
	}
	return b
}

// appendAudioRenditions appends a TrackLadder's EXT-X-MEDIA entries of
// group "aac".
func appendAudioRenditions(b []byte, as []audioRendition) []byte {
	single := len(as) == 1 && as[0].label == (AudioLabel{ID: as[0].label.ID})
	var names []string
	for i, a := range as {
		b = append(b, `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",NAME="`...)
		name := "audio"
		if !single {
			name = quotedText(a.label.Name)
			if name == "" {
				name = "Audio " + strconv.Itoa(a.label.ID+1)
			}
			// NAME is unique within the group (RFC 8216bis 4.4.6.1.1).
			for slicesContains(names, name) {
				name += " " + strconv.Itoa(a.label.ID+1)
			}
			names = append(names, name)
		}
		b = append(b, name...)
		b = append(b, '"')
		if lang := a.label.Language; lang != "" && ValidLanguage(lang) {
			b = append(b, `,LANGUAGE="`...)
			b = append(b, lang...)
			b = append(b, '"')
		}
		// One default: track 0, the publish's own audio, listed first.
		if i == 0 {
			b = append(b, ",DEFAULT=YES"...)
		} else {
			b = append(b, ",DEFAULT=NO"...)
		}
		b = append(b, `,AUTOSELECT=YES,CHANNELS="`...)
		b = strconv.AppendInt(b, int64(max(a.init.Track.Channels, 1)), 10)
		b = append(b, `",URI="`...)
		b = appendURI(b, a.prefix)
		b = append(b, AudioPlaylistPath...)
		b = append(b, "\"\n"...)
	}
	return b
}

// quotedText keeps what a quoted-string attribute may hold (RFC 8216bis
// 4.2: no double quote, CR or LF) and what XML may hold: printable text,
// control characters and invalid UTF-8 left out.
func quotedText(s string) string {
	var sb strings.Builder
	for _, r := range s {
		if r == '"' || r == utf8.RuneError || unicode.IsControl(r) {
			continue
		}
		sb.WriteRune(r)
	}
	return strings.TrimSpace(sb.String())
}

// ValidLanguage reports whether s is a well-formed BCP 47 language tag in
// its common shape: subtags of 1 to 8 letters or digits separated by "-",
// the first 2 to 3 letters (ISO 639) or "i"/"x" private use.
func ValidLanguage(s string) bool {
	if len(s) == 0 || len(s) > 35 {
		return false
	}
	for i, sub := range strings.Split(s, "-") {
		if len(sub) == 0 || len(sub) > 8 {
			return false
		}
		for _, c := range sub {
			letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
			if !letter && !(i > 0 && c >= '0' && c <= '9') {
				return false
			}
		}
		if i == 0 && (len(sub) > 3 || len(sub) == 1 && sub != "i" && sub != "x" && sub != "I" && sub != "X") {
			return false
		}
	}
	return true
}

func slicesContains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// appendURI appends a rung's prefix keeping it one line and free of quotes:
// stream names are checked at publish, this only guards the playlist's syntax.
func appendURI(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c > 0x20 && c != '"' && c < 0x7f {
			b = append(b, c)
		}
	}
	return b
}
