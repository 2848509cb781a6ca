package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest"
	"github.com/rtmpgate/rtmpgate/remux"
)

// maxAuthQuery bounds the query string we parse for a token: a token and an
// expiry need about 100 bytes, and the query comes from an unauthenticated peer.
const maxAuthQuery = 1024

// Refusal reasons. The client sees them as the onStatus description, so they say
// what to fix without saying which part of a token was wrong beyond that.
var (
	errKeyNotAllowed = errors.New("stream key not allowed")
	errNoToken       = errors.New("publish token required: add ?token=...&expires=... to the stream key")
	errBadExpires    = errors.New("publish token: expires is not a unix time")
	errExpired       = errors.New("publish token expired")
	errBadToken      = errors.New("publish token invalid")
)

// publishAuth decides whether a publish may go ahead and under which public
// name: an optional map of secret publish keys to the streams they publish, and
// an optional HMAC token. The zero value lets anyone publish under the name sent.
type publishAuth struct {
	keys   map[[sha256.Size]byte]publishTarget // by the key's SHA-256; nil: any name
	secret []byte                              // nil: no token needed
	now    func() time.Time
}

// publishTarget is where a secret publish key puts its stream: app/stream, or
// stream in whichever app the encoder connected to (app "").
type publishTarget struct{ app, stream string }

// newPublishAuth takes publish_keys entries "SECRET=app/stream" or
// "SECRET=stream" (validated by config.validate).
func newPublishAuth(keys []string, secret string) publishAuth {
	a := publishAuth{now: time.Now}
	if len(keys) > 0 {
		a.keys = make(map[[sha256.Size]byte]publishTarget, len(keys))
		for _, k := range keys {
			key, target, _ := strings.Cut(k, "=")
			app, stream, hasApp := strings.Cut(target, "/")
			if !hasApp {
				app, stream = "", target
			}
			a.keys[sha256.Sum256([]byte(key))] = publishTarget{app, stream}
		}
	}
	if secret != "" {
		a.secret = []byte(secret)
	}
	return a
}

func (a publishAuth) enabled() bool { return a.keys != nil || a.secret != nil }

// check returns the public stream name app/name publishes to, or an
// *ingest.PublishError whose code tells the encoder why not: BadName for a key
// that is not on the list, Denied for a missing, expired or wrong token. Keys are
// looked up by their hash, so lookup time says nothing about a guess.
func (a publishAuth) check(app, name, query string) (string, error) {
	public := name
	if a.keys != nil {
		target, ok := a.keys[sha256.Sum256([]byte(name))]
		if !ok || target.app != "" && target.app != app {
			return "", &ingest.PublishError{Code: ingest.StatusPublishBadName, Err: errKeyNotAllowed, Withhold: true}
		}
		public = target.stream
	}
	if a.secret == nil {
		return public, nil
	}
	key := app + "/" + public
	deny := func(err error) error {
		return &ingest.PublishError{Code: ingest.StatusPublishDenied, Err: err, Withhold: a.keys != nil}
	}
	if len(query) > maxAuthQuery {
		return "", deny(errBadToken)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", deny(errBadToken)
	}
	token, expiresStr := q.Get("token"), q.Get("expires")
	if token == "" || expiresStr == "" {
		return "", deny(errNoToken)
	}
	expires, err := strconv.ParseInt(expiresStr, 10, 64)
	if err != nil {
		return "", deny(errBadExpires)
	}
	got, err := hex.DecodeString(token)
	if err != nil || !hmac.Equal(got, publishMAC(a.secret, key, expires)) {
		return "", deny(errBadToken)
	}
	// Checked after the MAC so that a forged expiry is reported as a bad token,
	// never as "expired".
	if a.now().Unix() > expires {
		return "", deny(errExpired)
	}
	return public, nil
}

// publishMAC is HMAC-SHA256(secret, "app/stream:expires").
func publishMAC(secret []byte, key string, expires int64) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key + ":" + strconv.FormatInt(expires, 10)))
	return m.Sum(nil)
}

// signPublish returns the query string ("token=...&expires=...") that lets key
// ("app/stream") publish until expires.
func signPublish(secret, key string, expires time.Time) string {
	e := expires.Unix()
	return "token=" + hex.EncodeToString(publishMAC([]byte(secret), key, e)) + "&expires=" + strconv.FormatInt(e, 10)
}

// authHandler refuses publishes that publishAuth does not allow before they reach
// the hub. ingest logs the refusal with the remote address and sends the code.
type authHandler struct {
	auth publishAuth
	next ingest.Handler
}

func (h authHandler) OnPublish(ctx context.Context, req ingest.PublishRequest) (remux.Writer, error) {
	public, err := h.auth.check(req.App, req.Name, req.Query)
	if err != nil {
		return nil, err
	}
	if public == req.Name {
		return h.next.OnPublish(ctx, req)
	}
	req.Name = public
	w, err := h.next.OnPublish(ctx, req)
	if err != nil {
		return nil, err
	}
	return renamedWriter{w, public}, nil
}

// renamedWriter tells ingest the public name of a stream published with a
// secret key, so its logs never show the key.
type renamedWriter struct {
	remux.Writer
	public string
}

func (w renamedWriter) PublicName() string { return w.public }

// OpenTrack serves a multitrack publish's other video tracks under the
// public name too.
func (w renamedWriter) OpenTrack(id uint8) (remux.Writer, error) {
	if o, ok := w.Writer.(remux.TrackOpener); ok {
		return o.OpenTrack(id)
	}
	return nil, errors.New("the publish serves one video track")
}

// OpenAudioTrack serves a multitrack publish's other audio tracks under the
// public name too.
func (w renamedWriter) OpenAudioTrack(id uint8) (remux.Writer, error) {
	if o, ok := w.Writer.(remux.AudioTrackOpener); ok {
		return o.OpenAudioTrack(id)
	}
	return nil, errors.New("the publish serves one audio track")
}

// withPublishAuth wraps next when cfg asks for any publish check.
func withPublishAuth(cfg config, next ingest.Handler) ingest.Handler {
	auth := newPublishAuth(cfg.PublishKeys, cfg.PublishSecret)
	if !auth.enabled() {
		return next
	}
	return authHandler{auth: auth, next: next}
}

// signMain is "rtmpgate sign": it prints the query string that lets a stream key
// publish when publish_secret is set. The secret comes from the usual places
// (-config file, RTMPGATE_PUBLISH_SECRET, -publish-secret).
func signMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("rtmpgate sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "stream key to sign, app/stream (required)")
	valid := fs.Duration("expires", 24*time.Hour, "how long the token stays valid")
	configPath := fs.String("config", "", "YAML config file holding publish_secret")
	secret := fs.String("publish-secret", "", "the gateway's publish_secret (env RTMPGATE_PUBLISH_SECRET)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: rtmpgate sign -key app/stream [-expires 24h] [-config FILE | -publish-secret S]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	app, stream, ok := strings.Cut(*key, "/")
	if !ok || app == "" || stream == "" || fs.NArg() > 0 || *valid <= 0 {
		fs.Usage()
		return 2
	}
	var cfgArgs []string
	if *configPath != "" {
		cfgArgs = append(cfgArgs, "-config", *configPath)
	}
	if *secret != "" {
		cfgArgs = append(cfgArgs, "-publish-secret", *secret)
	}
	cfg, err := loadConfig(cfgArgs, getenv)
	if err != nil {
		fmt.Fprintln(stderr, "rtmpgate sign:", err)
		return 2
	}
	if cfg.PublishSecret == "" {
		fmt.Fprintln(stderr, "rtmpgate sign: no publish_secret (set RTMPGATE_PUBLISH_SECRET, -publish-secret or the config file's publish_secret)")
		return 2
	}
	fmt.Fprintln(stdout, "?"+signPublish(cfg.PublishSecret, *key, time.Now().Add(*valid)))
	return 0
}
