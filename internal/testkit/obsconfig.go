package testkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// OBS Studio's GetClientConfiguration exchange (its multitrack video, or
// Enhanced Broadcasting), for the tests of rtmpgate's answer to it: request
// bodies shaped as OBS sends them (GoLiveAPI_PostData.cpp and the
// NLOHMANN_DEFINE_TYPE_INTRUSIVE structs of models/multitrack-video.hpp,
// which write every field, null for an empty optional), and a parser of the
// answer as strict as OBS's own.

// OBSRequestBodies are request bodies as OBS versions send them, by a name
// saying which OBS on which machine.
var OBSRequestBodies = map[string]string{
	// OBS 30.2 (schema 2024-06-04): one canvas in preferences, system
	// revision a number, no codecs listed, extra_views.
	"obs30-windows-nvidia": `{"authentication":"live_1234_secret","capabilities":{"cpu":{"logical_cores":16,"name":"AMD Ryzen 7 5800X 8-Core Processor","physical_cores":8,"speed":3800},"extra_views":null,"gaming_features":{"game_bar_enabled":true,"game_dvr_allowed":true,"game_dvr_bg_recording":false,"game_dvr_enabled":false,"game_mode_enabled":true,"hags_enabled":false},"gpu":[{"dedicated_video_memory":8573157376,"device_id":9861,"driver_version":"31.0.15.5222","model":"NVIDIA GeForce RTX 3070","shared_system_memory":17134174208,"vendor_id":4318}],"memory":{"free":20012345344,"total":34268348416},"system":{"arm":false,"armEmulation":false,"bits":64,"build":22631,"name":"Windows","release":"23H2","revision":3737,"version":"10.0"}},"client":{"name":"obs-studio","supported_codecs":[],"version":"30.2.0"},"preferences":{"canvas_height":1080,"canvas_width":1920,"composition_gpu_index":0,"framerate":{"denominator":1,"numerator":60},"height":1080,"maximum_aggregate_bitrate":null,"maximum_video_tracks":null,"vod_track_audio":false,"width":1920},"schema_version":"2024-06-04","service":"IVS"}`,
	// OBS 31 (schema 2025-01-25): canvases, audio preferences, system
	// revision a string, codecs listed, no encoders listed.
	"obs31-windows-amd": `{"authentication":"demo","capabilities":{"cpu":{"logical_cores":12,"name":"Intel(R) Core(TM) i5-12400","physical_cores":6,"speed":2500},"gaming_features":{"game_bar_enabled":null,"game_dvr_allowed":null,"game_dvr_bg_recording":null,"game_dvr_enabled":true,"game_mode_enabled":null,"hags_enabled":false},"gpu":[{"dedicated_video_memory":17163091968,"device_id":29772,"driver_version":"32.0.11021.1011","model":"AMD Radeon RX 7800 XT","shared_system_memory":8565432320,"vendor_id":4098},{"dedicated_video_memory":134217728,"device_id":18060,"driver_version":"31.0.101.5186","model":"Intel(R) UHD Graphics 730","shared_system_memory":8565432320,"vendor_id":32902}],"memory":{"free":9123123123,"total":17130864640},"system":{"arm":false,"armEmulation":false,"bits":64,"build":22631,"name":"Windows","release":"23H2","revision":"4037","version":"10.0"}},"client":{"name":"obs-studio","supported_codecs":["h264","av1","h265"],"version":"31.0.2"},"preferences":{"audio_channels":2,"audio_fixed_buffering":false,"audio_max_buffering_ms":960,"audio_samples_per_sec":48000,"canvases":[{"canvas_height":1080,"canvas_width":1920,"framerate":{"denominator":1001,"numerator":60000},"height":720,"width":1280}],"composition_gpu_index":0,"maximum_aggregate_bitrate":null,"maximum_video_tracks":null,"vod_track_audio":true},"schema_version":"2025-01-25","service":"IVS"}`,
	// An OBS after 32.0 (schema 2025-01-25) listing its encoders; a vertical
	// second canvas; 5.1 audio; a bandwidth and track limit set.
	"obs-linux-nvidia-encoders": `{"authentication":"demo","capabilities":{"cpu":{"logical_cores":8,"name":"Intel(R) Core(TM) i7-7700K CPU @ 4.20GHz","physical_cores":4,"speed":4200},"gaming_features":null,"gpu":[{"dedicated_video_memory":8589934592,"device_id":7809,"driver_version":"550.120","model":"NVIDIA GeForce RTX 4060","shared_system_memory":0,"vendor_id":4318}],"memory":{"free":8123123123,"total":16654573568},"system":{"arm":false,"armEmulation":false,"bits":64,"build":0,"name":"Linux","release":"6.1.0-27-amd64","revision":"","version":"Debian GNU/Linux 12 (bookworm)"}},"client":{"name":"obs-studio","supported_codecs":["av1","h265","h264"],"supported_encoders":["ffmpeg_aac","ffmpeg_opus","obs_x264","obs_nvenc_h264_tex","obs_nvenc_hevc_tex","obs_nvenc_av1_tex","ffmpeg_svt_av1","ffmpeg_aom_av1"],"version":"32.1.0"},"preferences":{"audio_channels":6,"audio_fixed_buffering":false,"audio_max_buffering_ms":960,"audio_samples_per_sec":48000,"canvases":[{"canvas_height":1080,"canvas_width":1920,"framerate":{"denominator":1,"numerator":60},"height":1080,"width":1920},{"canvas_height":1920,"canvas_width":1080,"framerate":{"denominator":1,"numerator":60},"height":1920,"width":1080}],"composition_gpu_index":0,"maximum_aggregate_bitrate":7500,"maximum_video_tracks":4,"vod_track_audio":false},"schema_version":"2025-01-25","service":"IVS"}`,
	// OBS 31 on an Apple Silicon Mac; a 4:3 canvas at 30 fps.
	"obs31-macos-arm": `{"authentication":"demo","capabilities":{"cpu":{"logical_cores":8,"name":"Apple M1","physical_cores":8,"speed":null},"gaming_features":null,"gpu":null,"memory":{"free":2123123123,"total":17179869184},"system":{"arm":true,"armEmulation":false,"bits":64,"build":0,"name":"macOS","release":"14.5","revision":"","version":"14.5"}},"client":{"name":"obs-studio","supported_codecs":["h264","h265"],"version":"31.1.1"},"preferences":{"audio_channels":2,"audio_fixed_buffering":false,"audio_max_buffering_ms":960,"audio_samples_per_sec":48000,"canvases":[{"canvas_height":1080,"canvas_width":1440,"framerate":{"denominator":1,"numerator":30},"height":1080,"width":1440}],"composition_gpu_index":null,"maximum_aggregate_bitrate":null,"maximum_video_tracks":2,"vod_track_audio":false},"schema_version":"2025-01-25","service":"IVS"}`,
}

// OBSConfig is GoLiveApi::Config, the answer OBS parses.
type OBSConfig struct {
	Meta                  OBSMeta           `json:"meta"`
	Status                *OBSStatus        `json:"status"`
	IngestEndpoints       []OBSIngest       `json:"ingest_endpoints"`
	EncoderConfigurations []OBSVideoEncoder `json:"encoder_configurations"`
	AudioConfigurations   OBSAudioConfigs   `json:"audio_configurations"`
}

// OBSMeta is GoLiveApi::Meta: every field required.
type OBSMeta struct {
	Service       *string `json:"service"`
	SchemaVersion *string `json:"schema_version"`
	ConfigID      *string `json:"config_id"`
}

// OBSStatus is GoLiveApi::Status.
type OBSStatus struct {
	Result   *string `json:"result"`
	HTMLEnUS *string `json:"html_en_us"`
}

// OBSIngest is GoLiveApi::IngestEndpoint.
type OBSIngest struct {
	Protocol       string  `json:"protocol"`
	URLTemplate    string  `json:"url_template"`
	Authentication *string `json:"authentication"`
}

// OBSFraction is media_frames_per_second: both fields required.
type OBSFraction struct {
	Numerator   *uint32 `json:"numerator"`
	Denominator *uint32 `json:"denominator"`
}

// OBSVideoEncoder is GoLiveApi::VideoEncoderConfiguration.
type OBSVideoEncoder struct {
	Type         string          `json:"type"`
	Width        uint32          `json:"width"`
	Height       uint32          `json:"height"`
	Framerate    *OBSFraction    `json:"framerate"`
	GPUScaleType *string         `json:"gpu_scale_type"`
	Colorspace   *string         `json:"colorspace"`
	Range        *string         `json:"range"`
	Format       *string         `json:"format"`
	Settings     json.RawMessage `json:"settings"`
	CanvasIndex  uint32          `json:"canvas_index"`
}

// OBSAudioConfigs is GoLiveApi::AudioConfigurations.
type OBSAudioConfigs struct {
	Live []OBSAudioEncoder  `json:"live"`
	Vod  *[]OBSAudioEncoder `json:"vod"`
}

// OBSAudioEncoder is GoLiveApi::AudioEncoderConfiguration: every field required.
type OBSAudioEncoder struct {
	Codec    *string         `json:"codec"`
	TrackID  *uint32         `json:"track_id"`
	Channels *uint32         `json:"channels"`
	Settings json.RawMessage `json:"settings"`
}

// OBSEncoderSettings are the video encoder settings every OBS H.264, HEVC
// and AV1 encoder reads under these names.
type OBSEncoderSettings struct {
	RateControl string `json:"rate_control"`
	Bitrate     int    `json:"bitrate"` // kbit/s
	KeyintSec   int    `json:"keyint_sec"`
	Profile     string `json:"profile"`
}

// ParseOBSConfig decodes an answer as OBS would and also fails where OBS
// would stop the stream: a field of the wrong type or an unknown enum value
// (nlohmann throws, or the status reads as unknown), a required field
// missing, a key OBS's model does not have, no video or live audio
// encoder, settings that are not a JSON object, a vod list missing when
// wantVod, a canvas_index past canvases, or no RTMP(S) ingest URL template
// ending in /{stream_key}.
func ParseOBSConfig(body []byte, wantVod bool, canvases int) (OBSConfig, error) {
	var c OBSConfig
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("obs config: %w", err)
	}
	if dec.More() {
		return c, errors.New("obs config: data after the object")
	}
	m := c.Meta
	if m.Service == nil || m.SchemaVersion == nil || m.ConfigID == nil {
		return c, errors.New("obs config: meta needs service, schema_version and config_id")
	}
	if c.Status != nil && c.Status.Result != nil {
		switch *c.Status.Result {
		case "success", "warning", "error":
		default:
			return c, fmt.Errorf("obs config: status result %q", *c.Status.Result)
		}
	}
	if len(c.EncoderConfigurations) == 0 {
		return c, errors.New("obs config: no encoder_configurations")
	}
	scale := map[string]bool{"OBS_SCALE_DISABLE": true, "OBS_SCALE_POINT": true, "OBS_SCALE_BICUBIC": true,
		"OBS_SCALE_BILINEAR": true, "OBS_SCALE_LANCZOS": true, "OBS_SCALE_AREA": true}
	for i, e := range c.EncoderConfigurations {
		if e.Type == "" || e.Width == 0 || e.Height == 0 {
			return c, fmt.Errorf("obs config: encoder %d: type, width and height needed", i)
		}
		if f := e.Framerate; f != nil && (f.Numerator == nil || f.Denominator == nil || *f.Denominator == 0) {
			return c, fmt.Errorf("obs config: encoder %d: framerate needs numerator and a denominator", i)
		}
		if e.GPUScaleType != nil && !scale[*e.GPUScaleType] {
			return c, fmt.Errorf("obs config: encoder %d: gpu_scale_type %q", i, *e.GPUScaleType)
		}
		if int(e.CanvasIndex) >= canvases {
			return c, fmt.Errorf("obs config: encoder %d: canvas_index %d of %d canvases", i, e.CanvasIndex, canvases)
		}
		var s OBSEncoderSettings
		if err := json.Unmarshal(e.Settings, &s); err != nil || !bytes.HasPrefix(bytes.TrimSpace(e.Settings), []byte("{")) {
			return c, fmt.Errorf("obs config: encoder %d: settings %s", i, e.Settings)
		}
	}
	check := func(name string, l []OBSAudioEncoder) error {
		if len(l) == 0 {
			return fmt.Errorf("obs config: no %s audio encoder", name)
		}
		for i, a := range l {
			if a.Codec == nil || a.TrackID == nil || a.Channels == nil || len(a.Settings) == 0 || a.Settings[0] != '{' {
				return fmt.Errorf("obs config: %s audio %d needs codec, track_id, channels and settings", name, i)
			}
		}
		return nil
	}
	if err := check("live", c.AudioConfigurations.Live); err != nil {
		return c, err
	}
	if wantVod {
		var vod []OBSAudioEncoder
		if c.AudioConfigurations.Vod != nil {
			vod = *c.AudioConfigurations.Vod
		}
		if err := check("vod", vod); err != nil {
			return c, err
		}
	}
	for _, e := range c.IngestEndpoints {
		if strings.HasPrefix(strings.ToUpper(e.Protocol), "RTMP") && strings.HasSuffix(e.URLTemplate, "/{stream_key}") {
			return c, nil
		}
	}
	return c, errors.New("obs config: no RTMP ingest endpoint with a url_template ending in /{stream_key}")
}

// DecodedSettings decodes an encoder's settings.
func (e OBSVideoEncoder) DecodedSettings() OBSEncoderSettings {
	var s OBSEncoderSettings
	_ = json.Unmarshal(e.Settings, &s)
	return s
}
