package httpserve

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// OBSConfigPath is where OBS Studio's multitrack video asks for its encoder
// configuration: the URL given to OBS with --config-url (see README.md).
const OBSConfigPath = "/api/obs/client-configuration"

// maxOBSRequestBytes bounds a configuration request's body. OBS sends about
// 2 KB (its system, GPUs and canvases); the route is on the public port.
const maxOBSRequestBytes = maxRequestBody

// obsBodyTimeout bounds the wait for a request's body once its head is in.
const obsBodyTimeout = 10 * time.Second

// The request and the response are the GetClientConfiguration API's, as
// Amazon IVS publishes it and OBS Studio (frontend/models/multitrack-video.hpp,
// GoLiveAPI_PostData.cpp) sends and parses it; schema 2024-06-04 (OBS 30.2)
// and 2025-01-25 (OBS 31 on). Only the request fields the ladder depends on
// are read; the rest (the stream key in "authentication" among them) are
// ignored and never logged.
type obsRequest struct {
	Service       string    `json:"service"`
	SchemaVersion string    `json:"schema_version"`
	Client        obsClient `json:"client"`
	Capabilities  struct {
		GPU    []obsGPU `json:"gpu"`
		System struct {
			Name string `json:"name"`
			Arm  bool   `json:"arm"`
		} `json:"system"`
	} `json:"capabilities"`
	Preferences obsPreferences `json:"preferences"`
}

type obsClient struct {
	Name              string   `json:"name"`
	Version           string   `json:"version"`
	SupportedCodecs   []string `json:"supported_codecs"`   // "h264", "h265", "av1"
	SupportedEncoders []string `json:"supported_encoders"` // OBS encoder ids (OBS after 32.0)
}

type obsGPU struct {
	Model    string `json:"model"`
	VendorID uint32 `json:"vendor_id"`
}

type obsPreferences struct {
	MaximumAggregateBitrate *uint64     `json:"maximum_aggregate_bitrate"` // kbit/s, null: auto
	MaximumVideoTracks      *uint32     `json:"maximum_video_tracks"`      // null: auto
	VodTrackAudio           bool        `json:"vod_track_audio"`
	CompositionGPUIndex     *uint32     `json:"composition_gpu_index"`
	AudioChannels           uint32      `json:"audio_channels"`
	Canvases                []obsCanvas `json:"canvases"`
	// Schema 2024-06-04 gives the one canvas here.
	Width        uint32      `json:"width"`
	Height       uint32      `json:"height"`
	CanvasWidth  uint32      `json:"canvas_width"`
	CanvasHeight uint32      `json:"canvas_height"`
	Framerate    obsFraction `json:"framerate"`
}

type obsCanvas struct {
	Width        uint32      `json:"width"` // output (scaled) size
	Height       uint32      `json:"height"`
	CanvasWidth  uint32      `json:"canvas_width"`
	CanvasHeight uint32      `json:"canvas_height"`
	Framerate    obsFraction `json:"framerate"`
}

type obsFraction struct {
	Numerator   uint32 `json:"numerator"`
	Denominator uint32 `json:"denominator"`
}

type obsResponse struct {
	Meta                  obsMeta         `json:"meta"`
	Status                obsStatus       `json:"status"`
	IngestEndpoints       []obsIngest     `json:"ingest_endpoints"`
	EncoderConfigurations []obsVideo      `json:"encoder_configurations"`
	AudioConfigurations   obsAudioConfigs `json:"audio_configurations"`
}

type obsMeta struct {
	Service       string `json:"service"`
	SchemaVersion string `json:"schema_version"`
	ConfigID      string `json:"config_id"`
}

type obsStatus struct {
	Result   string `json:"result"` // "success", "warning" or "error"
	HTMLEnUS string `json:"html_en_us,omitempty"`
}

type obsIngest struct {
	Protocol    string `json:"protocol"`
	URLTemplate string `json:"url_template"`
}

type obsVideo struct {
	Type         string         `json:"type"`
	Width        int            `json:"width"`
	Height       int            `json:"height"`
	Framerate    *obsFraction   `json:"framerate,omitempty"`
	GPUScaleType string         `json:"gpu_scale_type"`
	Settings     map[string]any `json:"settings"`
	CanvasIndex  int            `json:"canvas_index"`
}

type obsAudioConfigs struct {
	Live []obsAudio `json:"live"`
	Vod  []obsAudio `json:"vod,omitempty"`
}

type obsAudio struct {
	Codec    string         `json:"codec"`
	TrackID  int            `json:"track_id"`
	Channels uint32         `json:"channels"`
	Settings map[string]any `json:"settings"`
}

// obsSchemaVersion is the schema our answers follow; OBS 30.2's parser reads
// them too (it ignores canvas_index).
const obsSchemaVersion = "2025-01-25"

// obsClientConfiguration answers OBS's POST with the ladder fitted to the
// client, and a GET (no client described) with the ladder as configured.
func (s *server) obsClientConfiguration(w http.ResponseWriter, r *http.Request) {
	var req obsRequest
	if r.Method == http.MethodPost {
		body, err := readOBSBody(w, r)
		if err == nil {
			err = parseOBSRequest(body, &req)
		}
		if err != nil {
			code := http.StatusBadRequest
			if errors.Is(err, errBodyTooLarge) {
				code = http.StatusRequestEntityTooLarge
			}
			writeError(w, code, err.Error())
			return
		}
	}
	host := ""
	if s.cfg.OBS.IngestURL == "" {
		var err error
		if host, err = requestHost(r.Host); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	resp := s.cfg.OBS.answer(&req, host)
	if r.Method == http.MethodPost {
		ev := s.cfg.Logger.Info().Str("remote", s.clientAddr(r)).Str("client", req.Client.Name+" "+req.Client.Version).
			Str("config_id", resp.Meta.ConfigID).Str("status", resp.Status.Result)
		tracks := make([]string, len(resp.EncoderConfigurations))
		for i, e := range resp.EncoderConfigurations {
			tracks[i] = fmt.Sprintf("%dx%d %dk %s", e.Width, e.Height, e.Settings["bitrate"], e.Type)
		}
		ev.Strs("tracks", tracks).Msg("obs configuration served")
	}
	writeJSON(w, http.StatusOK, resp)
}

var errBodyTooLarge = fmt.Errorf("request body over %d bytes", maxOBSRequestBytes)

// readOBSBody reads a request body of at most maxOBSRequestBytes within
// obsBodyTimeout.
func readOBSBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if r.ContentLength > maxOBSRequestBytes {
		return nil, errBodyTooLarge
	}
	// A client trickling its body holds a connection: bound the wait. Test
	// recorders cannot, which is fine.
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(obsBodyTimeout))
	body, err := io.ReadAll(io.LimitReader(r.Body, maxOBSRequestBytes+1))
	if err != nil {
		return nil, errors.New("request body cut short")
	}
	if len(body) > maxOBSRequestBytes {
		return nil, errBodyTooLarge
	}
	return body, nil
}

// parseOBSRequest decodes a GetClientConfiguration request: one JSON object,
// its fields of the types OBS sends.
func parseOBSRequest(body []byte, req *obsRequest) error {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return errors.New("request body is not a JSON object")
	}
	if err := json.Unmarshal(body, req); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return fmt.Errorf("request field %s: want %s, got %s", te.Field, te.Type, te.Value)
		}
		return fmt.Errorf("request body is not JSON: %v", err)
	}
	return nil
}

// requestHost is the host name of a Host header, without its port.
func requestHost(hostport string) (string, error) {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" || len(host) > 253 {
		return "", errors.New("request has no usable Host")
	}
	for i := 0; i < len(host); i++ {
		c := host[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == ':') {
			return "", errors.New("request Host is not a host name or address")
		}
	}
	return host, nil
}

// PCI vendor ids of the GPUs OBS reports.
const (
	vendorNVIDIA = 0x10de
	vendorAMD    = 0x1002
	vendorIntel  = 0x8086
)

// obsHardwareEncoders are OBS's hardware encoder ids per codec, preferred
// first: NVENC (OBS 31's and OBS 30's ids), AMD AMF, Intel Quick Sync, Apple
// VideoToolbox, VA-API. A client that lists its encoders gets the first it
// has. There is no software HEVC encoder in OBS, and software AV1 is too slow
// for several renditions at once: without hardware those renditions become
// H.264 on obs_x264.
var obsHardwareEncoders = map[string][]string{
	"h264": {"obs_nvenc_h264_tex", "jim_nvenc", "h264_texture_amf", "obs_qsv11_v2", "obs_qsv11",
		"com.apple.videotoolbox.videoencoder.ave.avc", "ffmpeg_vaapi_tex"},
	"hevc": {"obs_nvenc_hevc_tex", "jim_hevc_nvenc", "h265_texture_amf", "obs_qsv11_hevc",
		"com.apple.videotoolbox.videoencoder.ave.hevc", "hevc_ffmpeg_vaapi_tex"},
	"av1": {"obs_nvenc_av1_tex", "jim_av1_nvenc", "av1_texture_amf", "obs_qsv11_av1", "av1_ffmpeg_vaapi_tex"},
}

const obsSoftwareH264 = "obs_x264"

// obsCodecName is OBS's name of a codec in supported_codecs.
var obsCodecName = map[string]string{"h264": "h264", "hevc": "h265", "av1": "av1"}

// pickEncoder returns the OBS encoder id for codec on the client, or "" when
// the client has none for it. A client that lists its encoders (OBS after 32.0)
// gets the first hardware encoder it has; one that does not gets the H.264
// hardware encoder its GPU and system imply (ids OBS 30.2 to 32.0 have) and nothing
// for HEVC or AV1, which not every GPU of a vendor encodes.
func pickEncoder(req *obsRequest, codec string) string {
	if len(req.Client.SupportedCodecs) > 0 && !contains(req.Client.SupportedCodecs, obsCodecName[codec]) {
		return ""
	}
	if encs := req.Client.SupportedEncoders; len(encs) > 0 {
		for _, id := range obsHardwareEncoders[codec] {
			if contains(encs, id) {
				return id
			}
		}
		if codec == "h264" && contains(encs, obsSoftwareH264) {
			return obsSoftwareH264
		}
		return ""
	}
	if codec != "h264" {
		return ""
	}
	system := strings.ToLower(req.Capabilities.System.Name)
	switch {
	case system == "windows":
		switch compositionGPU(req) {
		case vendorNVIDIA:
			return "jim_nvenc"
		case vendorAMD:
			return "h264_texture_amf"
		case vendorIntel:
			return "obs_qsv11_v2"
		}
	case (strings.Contains(system, "mac") || system == "darwin") && req.Capabilities.System.Arm:
		return "com.apple.videotoolbox.videoencoder.ave.avc"
	}
	return obsSoftwareH264
}

// compositionGPU is the vendor of the GPU OBS composites on, 0 if unknown.
func compositionGPU(req *obsRequest) uint32 {
	gpus := req.Capabilities.GPU
	if i := req.Preferences.CompositionGPUIndex; i != nil && int64(*i) < int64(len(gpus)) {
		return gpus[*i].VendorID
	}
	if len(gpus) > 0 {
		return gpus[0].VendorID
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// obsCanvasOf is the client's main canvas: its base size (what OBS scales
// each rendition from, and warns about a rendition larger than), else its
// output size, and its frame rate; zero when the request gives none.
func obsCanvasOf(req *obsRequest) (width, height uint32, fps obsFraction) {
	p := &req.Preferences
	c := obsCanvas{Width: p.Width, Height: p.Height, CanvasWidth: p.CanvasWidth, CanvasHeight: p.CanvasHeight, Framerate: p.Framerate}
	if len(p.Canvases) > 0 {
		c = p.Canvases[0]
	}
	if c.CanvasWidth > 0 && c.CanvasHeight > 0 {
		return c.CanvasWidth, c.CanvasHeight, c.Framerate
	}
	return c.Width, c.Height, c.Framerate
}

// answer fits the ladder to the client: renditions no taller than its canvas
// (the smallest kept, at the canvas height, if none is), widths of the
// canvas's aspect ratio, frame rates at most each rendition's cap by a whole
// divisor of the canvas rate (OBS drops frames by a divisor), at most
// maximum_video_tracks renditions, and the highest left out until the whole
// fits maximum_aggregate_bitrate.
func (c *OBSConfig) answer(req *obsRequest, host string) obsResponse {
	cw, ch, cfps := obsCanvasOf(req)
	ladder := make([]OBSRendition, 0, len(c.Renditions))
	for _, r := range c.Renditions {
		if ch == 0 || uint32(r.Height) <= ch {
			ladder = append(ladder, r)
		}
	}
	if len(ladder) == 0 && len(c.Renditions) > 0 {
		r := c.Renditions[len(c.Renditions)-1]
		r.Height, r.Width = max(int(ch)&^1, 2), 0
		ladder = append(ladder, r)
	}
	if m := req.Preferences.MaximumVideoTracks; m != nil && *m > 0 && int64(*m) < int64(len(ladder)) {
		ladder = ladder[:*m]
	}

	channels := req.Preferences.AudioChannels
	if channels < 1 || channels > 8 {
		channels = 2 // OBS before 31 says nothing: stereo, its default
	}
	audio := func(track int) []obsAudio {
		return []obsAudio{{Codec: "aac", TrackID: track, Channels: channels,
			Settings: map[string]any{"bitrate": c.AudioBitrate}}}
	}
	audioKbps := c.AudioBitrate
	if req.Preferences.VodTrackAudio {
		audioKbps *= 2
	}

	status := obsStatus{Result: "success"}
	if m := req.Preferences.MaximumAggregateBitrate; m != nil && *m > 0 {
		for len(ladder) > 1 && uint64(sumKbps(ladder)+audioKbps) > *m {
			ladder = ladder[1:]
		}
		if need := sumKbps(ladder) + audioKbps; uint64(need) > *m {
			status = obsStatus{Result: "warning", HTMLEnUS: fmt.Sprintf(
				"The smallest rendition this server offers needs %d kbit/s with audio, more than the maximum streaming bandwidth of %d kbit/s set in OBS.",
				need, *m)}
		}
	}

	keyint := int((c.KeyframeInterval + time.Second - 1) / time.Second)
	video := make([]obsVideo, 0, len(ladder))
	for _, r := range ladder {
		codec := r.Codec
		enc := c.Encoder
		if enc == "" || enc == "auto" {
			if enc = pickEncoder(req, codec); enc == "" {
				codec, enc = "h264", pickEncoder(req, "h264")
				if enc == "" {
					enc = obsSoftwareH264
				}
			}
		}
		width := r.Width
		if width == 0 {
			aw, ah := uint32(16), uint32(9)
			if cw > 0 && ch > 0 {
				aw, ah = cw, ch
			}
			// The canvas's aspect ratio, rounded to the nearest even width.
			width = max(int((uint64(r.Height)*uint64(aw)+uint64(ah))/(2*uint64(ah)))*2, 2)
		}
		profile := "main"
		if codec == "h264" {
			profile = "high"
		}
		video = append(video, obsVideo{
			Type: enc, Width: width, Height: r.Height,
			Framerate:    obsFrameRate(cfps, r.FPS),
			GPUScaleType: "OBS_SCALE_BICUBIC",
			Settings: map[string]any{
				"rate_control": "CBR",
				"bitrate":      r.Bitrate,
				"keyint_sec":   keyint,
				"profile":      profile,
			},
		})
	}

	resp := obsResponse{
		Meta:   obsMeta{Service: "rtmpgate", SchemaVersion: obsSchemaVersion},
		Status: status,
		IngestEndpoints: []obsIngest{{Protocol: "RTMP",
			URLTemplate: c.ingestBase(host) + "/{stream_key}"}},
		EncoderConfigurations: video,
		AudioConfigurations:   obsAudioConfigs{Live: audio(0)},
	}
	if req.Preferences.VodTrackAudio {
		resp.AudioConfigurations.Vod = audio(1)
	}
	// The id names the configuration's content: the same answer, the same id.
	// OBS appends it to the stream key as ?clientConfigId=, which ingest
	// ignores.
	sum, _ := json.Marshal([]any{resp.EncoderConfigurations, resp.AudioConfigurations})
	h := sha256.Sum256(sum)
	resp.Meta.ConfigID = "rtmpgate-" + hex.EncodeToString(h[:6])
	return resp
}

func sumKbps(l []OBSRendition) int {
	n := 0
	for _, r := range l {
		n += r.Bitrate
	}
	return n
}

// obsFrameRate is the canvas rate divided by the smallest whole divisor that
// brings it to capFPS or below: OBS sends every n-th frame, n the canvas rate
// over the asked one rounded down, so the asked rate is the divided one
// exactly. Unknown canvas: the cap, or nothing (OBS keeps its rate).
func obsFrameRate(canvas obsFraction, capFPS int) *obsFraction {
	if canvas.Numerator == 0 || canvas.Denominator == 0 {
		if capFPS == 0 {
			return nil
		}
		return &obsFraction{Numerator: uint32(capFPS), Denominator: 1}
	}
	f := canvas
	if capFPS > 0 {
		// divisor = ceil(num / (den * cap)), in 64 bits.
		num, den := uint64(canvas.Numerator), uint64(canvas.Denominator)*uint64(capFPS)
		if d := (num + den - 1) / den; d > 1 && uint64(canvas.Denominator)*d <= 1<<32-1 {
			f.Denominator = uint32(uint64(canvas.Denominator) * d)
		}
	}
	return &f
}

// ingestBase is the rtmp://host:port/app OBS is told to publish to.
func (c *OBSConfig) ingestBase(host string) string {
	if c.IngestURL != "" {
		return strings.TrimSuffix(c.IngestURL, "/")
	}
	port := c.RTMPPort
	if port == 0 {
		port = 1935
	}
	return "rtmp://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/live"
}
