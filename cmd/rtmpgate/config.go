package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"go.yaml.in/yaml/v3"

	"github.com/rtmpgate/rtmpgate/httpserve"
)

// config is every setting an operator can give. Each field's yaml tag is its name in
// the -config file; the same name upper-cased with an RTMPGATE_ prefix is its
// environment variable, and with dashes for underscores its flag. Precedence:
// defaults < file < environment < flags.
type config struct {
	RTMP      string `yaml:"rtmp" help:"RTMP listen address"`
	HTTP      string `yaml:"http" help:"HTTP listen address"`
	LogLevel  string `yaml:"log_level" help:"debug, info, warn or error"`
	LogFormat string `yaml:"log_format" help:"json or console"`

	SegmentDuration    time.Duration `yaml:"segment_duration" help:"target segment duration; segments are cut at the first keyframe after it"`
	MaxSegmentDuration time.Duration `yaml:"max_segment_duration" help:"hard cap on a segment's duration before the playlist's target duration is fixed"`
	WindowSegments     int           `yaml:"window_segments" help:"segments listed in a live playlist"`
	Linger             time.Duration `yaml:"linger" help:"how long an ended stream stays served"`
	TakeoverAfter      time.Duration `yaml:"takeover_after" help:"a publisher silent this long loses its key to a newcomer"`
	MaxStreams         int           `yaml:"max_streams" help:"streams at once"`
	MaxStoreBytes      int64         `yaml:"max_store_bytes" help:"bytes of segments held in memory, all streams; 0: half the memory the process may use (cgroup limit, RAM or GOMEMLIMIT, the smallest)"`
	LowLatency         bool          `yaml:"low_latency" help:"CMAF parts, LL-HLS (blocking reload, preload hints, delta updates) and low-latency DASH on the fMP4 outputs"`
	PartTarget         time.Duration `yaml:"part_target" help:"longest CMAF part (LL-HLS partial segment, low-latency DASH chunk), 50ms to segment_duration"`
	Variants           []string      `yaml:"variants" help:"stream name suffixes that make up a ladder, comma-separated (_hi,_mid,_lo): app/NAME_hi, app/NAME_mid... are also served as one adaptive HLS multivariant playlist at /app/NAME/index.m3u8; empty: none"`

	HandshakeTimeout time.Duration `yaml:"handshake_timeout" help:"an RTMP handshake must finish within this"`
	ReadTimeout      time.Duration `yaml:"read_timeout" help:"an RTMP connection that sends nothing this long is closed"`
	ReadInterval     time.Duration `yaml:"read_interval" help:"publishing RTMP connections are read together once per this (Linux: one epoll call, one read per connection with bytes), each read taking every frame that arrived meanwhile; frames wait up to this long; 0: each connection read as bytes arrive"`
	MaxMessageSize   int           `yaml:"max_message_size" help:"largest RTMP message accepted, bytes"`
	WriteTimeout     time.Duration `yaml:"write_timeout" help:"an RTMP connection that does not take our replies this long is closed"`
	MaxConns         int           `yaml:"max_conns" help:"RTMP connections at once, all addresses"`
	MaxConnsPerIP    int           `yaml:"max_conns_per_ip" help:"RTMP connections at once from one IP address"`
	MaxChunkStreams  int           `yaml:"max_chunk_streams" help:"RTMP chunk stream ids one connection may use"`
	MaxTracks        int           `yaml:"max_tracks" help:"video tracks, and audio tracks, of one Enhanced RTMP multitrack publish served as renditions of its ladder, track 0 included; more of a kind are refused, the others go on"`
	MaxSegmentBytes  int           `yaml:"max_segment_bytes" help:"bytes in one segment; a bigger one is cut early"`

	HTTPMaxHeaderBytes    int           `yaml:"http_max_header_bytes" help:"largest HTTP request header accepted, bytes"`
	HTTPReadHeaderTimeout time.Duration `yaml:"http_read_header_timeout" help:"an HTTP client must send its request header within this"`
	HTTPMaxBlockingWait   time.Duration `yaml:"http_max_blocking_wait" help:"longest an LL-HLS blocking request or a preload hint waits; 0: three target durations, at least 6s"`
	HTTPFastLane          bool          `yaml:"http_fast_lane" help:"serve GET and HEAD of stream files on rtmpgate's own HTTP/1.1 keep-alive loop; every other request goes to net/http on the same connection"`
	HTTPIdleTimeout       time.Duration `yaml:"http_idle_timeout" help:"an HTTP connection with no request in progress is closed after this"`
	HTTPWriteTimeout      time.Duration `yaml:"http_write_timeout" help:"an HTTP client must take each 64 KiB of a response within this (bounds each write, not a whole response)"`
	HTTPMaxConns          int           `yaml:"http_max_conns" help:"HTTP connections at once, all addresses; more are closed at accept"`
	HTTPMaxConnsPerIP     int           `yaml:"http_max_conns_per_ip" help:"HTTP connections at once from one IP address (trusted_proxies exempt)"`
	PublicBaseURL         string        `yaml:"public_base_url" help:"scheme, host and path prefix players reach the HTTP server at (https://cdn.example); absolute URLs in documents are made from it; empty: documents use paths only"`
	TrustedProxies        []string      `yaml:"trusted_proxies" help:"proxies and CDNs (CIDRs or addresses, comma-separated) whose X-Forwarded-For names the client and which the per-IP HTTP cap does not apply to; empty: none"`

	PublishKeys   []string `yaml:"publish_keys" help:"secret publish keys and the streams they publish, SECRET=app/stream or SECRET=stream, comma-separated; an encoder publishes to rtmp://host/app/SECRET and viewers watch app/stream; empty: any name publishes as itself"`
	PublishSecret string   `yaml:"publish_secret" help:"when set, a publish needs ?token=HMAC-SHA256(secret, app/stream:expires)&expires=UNIX (see rtmpgate sign)"`

	APIToken string `yaml:"api_token" help:"bearer token for the HTTP API's write methods (DELETE /api/streams/{app}/{stream} kicks a publisher); empty: the API is read-only"`

	OBSLadder           []string      `yaml:"obs_ladder" help:"renditions OBS Studio's multitrack video is told to encode (POST /api/obs/client-configuration), highest first, comma-separated, each a size, a bitrate and optionally a frame-rate cap and a codec: 1080p 6000k,720p 3000k,360p 30fps 800k; off: the endpoint is not served"`
	OBSKeyframeInterval time.Duration `yaml:"obs_keyframe_interval" help:"keyframe interval OBS is told to use, whole seconds, 1s to 10s; 0: segment_duration rounded up to whole seconds"`
	OBSAudioBitrate     int           `yaml:"obs_audio_bitrate" help:"AAC bitrate OBS is told to use for each audio track, kbit/s"`
	OBSIngestURL        string        `yaml:"obs_ingest_url" help:"rtmp://host[:port]/app OBS is told to publish to; empty: the host OBS sent the request to, the RTMP port and the app live"`
	OBSEncoder          string        `yaml:"obs_encoder" help:"OBS encoder id every rendition is given (obs_x264, jim_nvenc, obs_nvenc_h264_tex...); auto: a hardware encoder the client has, else obs_x264"`

	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" help:"bound on a graceful shutdown"`
	GCPercent       int           `yaml:"gc_percent" help:"Go GC target: the heap may grow this many percent past the live bytes (segments) before a collection, and at least 32 MiB; the GOGC environment variable, when set, wins"`
	HugePages       bool          `yaml:"huge_pages" help:"Linux, when the system's THP mode is madvise: map the heap the store will need (1.5x max_store_bytes, at most half the RAM) at start, untouched, and advise it and later heap growth MADV_HUGEPAGE; fewer, cheaper page faults for segment memory"`

	DebugAddr string `yaml:"debug_addr" help:"when set, serves net/http/pprof on this address (keep it on loopback); empty: off"`
}

// maxReadInterval bounds read_interval: frames wait up to it in the socket, and
// LL-HLS parts are 200 ms.
const maxReadInterval = 100 * time.Millisecond

func defaultConfig() config {
	return config{
		RTMP: ":1935", HTTP: ":8080", LogLevel: "info", LogFormat: "json",
		SegmentDuration: 2 * time.Second, MaxSegmentDuration: 10 * time.Second, WindowSegments: 6,
		Linger: 30 * time.Second, TakeoverAfter: 3 * time.Second, MaxStreams: 1000,
		LowLatency: true, PartTarget: 200 * time.Millisecond,
		HandshakeTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, MaxMessageSize: 8 << 20,
		WriteTimeout: 10 * time.Second, MaxConns: 1024, MaxConnsPerIP: 32,
		MaxChunkStreams: 64, MaxTracks: 8, MaxSegmentBytes: 32 << 20,
		HTTPMaxHeaderBytes: 16 << 10, HTTPReadHeaderTimeout: 10 * time.Second,
		HTTPIdleTimeout: 60 * time.Second, HTTPWriteTimeout: 10 * time.Second, HTTPMaxConns: 8192, HTTPMaxConnsPerIP: 128,
		ShutdownTimeout: 10 * time.Second, GCPercent: 12, ReadInterval: 20 * time.Millisecond, HugePages: true,
		OBSLadder: append([]string(nil), httpserve.DefaultOBSLadder...), OBSAudioBitrate: 160, OBSEncoder: "auto",
	}
}

// loadConfig applies the config file, the environment and the flags in args on top
// of the defaults and checks the result.
func loadConfig(args []string, getenv func(string) string) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("rtmpgate", flag.ContinueOnError)
	configPath := fs.String("config", getenv("RTMPGATE_CONFIG"), "YAML config file (env RTMPGATE_CONFIG)")
	flagValues := map[string]*string{}
	forEachField(&cfg, func(tag, help string, _ reflect.Value) {
		flagName := strings.ReplaceAll(tag, "_", "-")
		flagValues[tag] = fs.String(flagName, "", fmt.Sprintf("%s (env %s)", help, envName(tag)))
	})
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *configPath != "" {
		raw, err := os.ReadFile(*configPath)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(strings.NewReader(string(raw)))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", *configPath, err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[strings.ReplaceAll(f.Name, "-", "_")] = true })
	var err error
	forEachField(&cfg, func(tag, _ string, v reflect.Value) {
		if err != nil {
			return
		}
		if s := getenv(envName(tag)); s != "" {
			if e := setField(v, s); e != nil {
				err = fmt.Errorf("%s: %w", envName(tag), e)
				return
			}
		}
		if set[tag] {
			if e := setField(v, *flagValues[tag]); e != nil {
				err = fmt.Errorf("-%s: %w", strings.ReplaceAll(tag, "_", "-"), e)
			}
		}
	})
	if err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func envName(tag string) string { return "RTMPGATE_" + strings.ToUpper(tag) }

func forEachField(cfg *config, fn func(tag, help string, v reflect.Value)) {
	rv := reflect.ValueOf(cfg).Elem()
	rt := rv.Type()
	for i := 0; i < rt.NumField(); i++ {
		f := rt.Field(i)
		fn(f.Tag.Get("yaml"), f.Tag.Get("help"), rv.Field(i))
	}
}

func setField(v reflect.Value, s string) error {
	switch v.Interface().(type) {
	case string:
		v.SetString(s)
	case time.Duration:
		d, err := time.ParseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
	case bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case int, int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return err
		}
		v.SetInt(n)
	case []string:
		// Comma-separated in the environment and on the command line; blanks
		// around entries are dropped so "a, b" works.
		var list []string
		for _, e := range strings.Split(s, ",") {
			if e = strings.TrimSpace(e); e != "" {
				list = append(list, e)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported setting type %s", v.Type())
	}
	return nil
}

// validate names the first field whose value cannot work.
func (c config) validate() error {
	positive := []struct {
		name string
		ok   bool
	}{
		{"segment_duration", c.SegmentDuration > 0},
		{"max_segment_duration", c.MaxSegmentDuration >= c.SegmentDuration},
		{"window_segments", c.WindowSegments >= 3},
		{"part_target", c.PartTarget >= 50*time.Millisecond && c.PartTarget <= c.SegmentDuration},
		{"linger", c.Linger >= 0},
		{"takeover_after", c.TakeoverAfter > 0},
		{"max_streams", c.MaxStreams > 0},
		{"max_store_bytes", c.MaxStoreBytes >= 0},
		{"handshake_timeout", c.HandshakeTimeout > 0},
		{"read_timeout", c.ReadTimeout > 0},
		{"read_interval", c.ReadInterval >= 0 && c.ReadInterval <= maxReadInterval},
		{"max_message_size", c.MaxMessageSize >= 1<<10},
		{"write_timeout", c.WriteTimeout > 0},
		{"max_conns", c.MaxConns > 0},
		{"max_conns_per_ip", c.MaxConnsPerIP > 0},
		{"max_chunk_streams", c.MaxChunkStreams >= 4},
		{"max_tracks", c.MaxTracks >= 1 && c.MaxTracks <= 256},
		{"max_segment_bytes", c.MaxSegmentBytes >= 64<<10},
		{"http_max_header_bytes", c.HTTPMaxHeaderBytes >= 1<<10},
		{"http_read_header_timeout", c.HTTPReadHeaderTimeout > 0},
		{"http_max_blocking_wait", c.HTTPMaxBlockingWait >= 0},
		{"http_idle_timeout", c.HTTPIdleTimeout > 0},
		{"http_write_timeout", c.HTTPWriteTimeout > 0},
		{"http_max_conns", c.HTTPMaxConns > 0},
		{"http_max_conns_per_ip", c.HTTPMaxConnsPerIP > 0},
		{"shutdown_timeout", c.ShutdownTimeout > 0},
		{"gc_percent", c.GCPercent >= 5},
	}
	for _, p := range positive {
		if !p.ok {
			return fmt.Errorf("config: %s: value out of range", p.name)
		}
	}
	if _, err := zerolog.ParseLevel(c.LogLevel); err != nil || c.LogLevel == "" {
		return fmt.Errorf("config: log_level: %q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "console":
	default:
		return fmt.Errorf("config: log_format: %q is not json or console", c.LogFormat)
	}
	if err := validatePublishKeys(c.PublishKeys); err != nil {
		return err
	}
	if u, err := url.Parse(c.PublicBaseURL); c.PublicBaseURL != "" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") ||
		u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(c.PublicBaseURL, "<>\"' ")) {
		return fmt.Errorf("config: public_base_url: %q is not an http or https URL without query", c.PublicBaseURL)
	}
	if _, err := trustedProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("config: trusted_proxies: %w", err)
	}
	if err := validateVariants(c.Variants); err != nil {
		return err
	}
	if _, err := c.obsConfig(0); err != nil {
		return err
	}
	if c.APIToken != "" && len(c.APIToken) < 16 {
		return fmt.Errorf("config: api_token: %d bytes, want at least 16", len(c.APIToken))
	}
	if c.PublishSecret != "" && len(c.PublishSecret) < 16 {
		return fmt.Errorf("config: publish_secret: %d bytes, want at least 16", len(c.PublishSecret))
	}
	return nil
}

// minPublishKeyBytes keeps a publish key out of reach of guessing.
const minPublishKeyBytes = 16

// validatePublishKeys checks publish_keys entries SECRET=app/stream or
// SECRET=stream. The old form, a bare playback name, is refused: it let anyone
// who can watch a stream publish over it.
func validatePublishKeys(entries []string) error {
	seen := map[string]bool{}
	for _, e := range entries {
		key, target, ok := strings.Cut(e, "=")
		if !ok {
			return fmt.Errorf("config: publish_keys: %q is a playback name, not a secret key; write SECRET=%s with a secret of at least %d bytes (docs/CONFIG.md: Publishing credentials)", e, e, minPublishKeyBytes)
		}
		if len(key) < minPublishKeyBytes || strings.ContainsAny(key, "/?&#= ") {
			return fmt.Errorf("config: publish_keys: the key for %q must be at least %d bytes without / ? & # = or blanks", target, minPublishKeyBytes)
		}
		app, stream, hasApp := strings.Cut(target, "/")
		if target == "" || strings.ContainsAny(target, "?&#= ") || strings.Contains(stream, "/") || hasApp && (app == "" || stream == "") {
			return fmt.Errorf("config: publish_keys: %q is not app/stream or stream", target)
		}
		if key == stream || key == target {
			return fmt.Errorf("config: publish_keys: the key for %q is its own playback name", target)
		}
		if seen[key] {
			return fmt.Errorf("config: publish_keys: a key is listed twice (for %q)", target)
		}
		seen[key] = true
	}
	return nil
}

// trustedProxies parses trusted_proxies: CIDRs, or addresses standing for themselves.
func trustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, e := range list {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				return nil, fmt.Errorf("%q is not a CIDR or an IP address", e)
			}
			p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// validateVariants checks the variants suffixes: each non-empty, distinct and
// usable inside one URL path segment.
func validateVariants(list []string) error {
	seen := map[string]bool{}
	for _, v := range list {
		if v == "" || len(v) > 64 || strings.ContainsAny(v, "/\\?#%\"' ") {
			return fmt.Errorf("config: variants: %q is not a stream name suffix", v)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x21 || v[i] >= 0x7f {
				return fmt.Errorf("config: variants: %q is not a stream name suffix", v)
			}
		}
		if seen[v] {
			return fmt.Errorf("config: variants: %q is listed twice", v)
		}
		seen[v] = true
	}
	return nil
}

// obsConfig is the ladder OBS's multitrack video is given, from the obs_*
// settings, or nil when obs_ladder is off (or empty); rtmpPort is the port
// the RTMP listener is bound to.
func (c config) obsConfig(rtmpPort int) (*httpserve.OBSConfig, error) {
	if len(c.OBSLadder) == 0 || len(c.OBSLadder) == 1 && strings.EqualFold(c.OBSLadder[0], "off") {
		return nil, nil
	}
	ladder, err := httpserve.ParseOBSLadder(c.OBSLadder)
	if err != nil {
		return nil, fmt.Errorf("config: obs_ladder: %w", err)
	}
	keyint := c.OBSKeyframeInterval
	if keyint == 0 {
		keyint = min((c.SegmentDuration + time.Second - 1).Truncate(time.Second), 10*time.Second)
	}
	if keyint < time.Second || keyint > 10*time.Second || keyint%time.Second != 0 {
		return nil, fmt.Errorf("config: obs_keyframe_interval: %s is not whole seconds from 1s to 10s", keyint)
	}
	if c.OBSAudioBitrate < 32 || c.OBSAudioBitrate > 512 {
		return nil, fmt.Errorf("config: obs_audio_bitrate: %d is not 32 to 512 kbit/s", c.OBSAudioBitrate)
	}
	if c.OBSIngestURL != "" {
		u, err := url.Parse(c.OBSIngestURL)
		if err != nil || u.Scheme != "rtmp" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
			strings.Trim(u.Path, "/") == "" || strings.Contains(strings.Trim(u.Path, "/"), "/") || strings.ContainsAny(c.OBSIngestURL, "<>\"' {}") {
			return nil, fmt.Errorf("config: obs_ingest_url: %q is not rtmp://host[:port]/app", c.OBSIngestURL)
		}
	}
	enc := c.OBSEncoder
	if enc == "" || strings.ContainsAny(enc, "\"'<>{} /\\") || len(enc) > 100 {
		return nil, fmt.Errorf("config: obs_encoder: %q is not auto or an OBS encoder id", enc)
	}
	return &httpserve.OBSConfig{Renditions: ladder, KeyframeInterval: keyint, AudioBitrate: c.OBSAudioBitrate,
		IngestURL: c.OBSIngestURL, RTMPPort: rtmpPort, Encoder: enc}, nil
}
