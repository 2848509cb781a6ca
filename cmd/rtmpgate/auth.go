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

// publishAuth decides whether a publish may go ahead: an optional allow-list of
// stream keys and an optional HMAC token. The zero value lets anyone publish.
type publishAuth struct {
	keys   map[string]bool // "app/stream" or "stream" (any app); nil: every key
	secret []byte          // nil: no token needed
	now    func() time.Time
}

func newPublishAuth(keys []string, secret string) publishAuth {
	a := publishAuth{now: time.Now}
	if len(keys) > 0 {
		a.keys = make(map[string]bool, len(keys))
		for _, k := range keys {
			a.keys[k] = true
		}
	}
	if secret != "" {
		a.secret = []byte(secret)
	}
	return a
}

func (a publishAuth) enabled() bool { return a.keys != nil || a.secret != nil }

// check returns nil when app/name may publish with query, else an
// *ingest.PublishError whose code tells the encoder why: BadName for a key that
// is not on the list, Denied for a missing, expired or wrong token.
func (a publishAuth) check(app, name, query string) error {
	key := app + "/" + name
	if a.keys != nil && !a.keys[key] && !a.keys[name] {
		return &ingest.PublishError{Code: ingest.StatusPublishBadName, Err: errKeyNotAllowed}
	}
	if a.secret == nil {
		return nil
	}
	deny := func(err error) error { return &ingest.PublishError{Code: ingest.StatusPublishDenied, Err: err} }
	if len(query) > maxAuthQuery {
		return deny(errBadToken)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return deny(errBadToken)
	}
	token, expiresStr := q.Get("token"), q.Get("expires")
	if token == "" || expiresStr == "" {
		return deny(errNoToken)
	}
	expires, err := strconv.ParseInt(expiresStr, 10, 64)
	if err != nil {
		return deny(errBadExpires)
	}
	got, err := hex.DecodeString(token)
	if err != nil || !hmac.Equal(got, publishMAC(a.secret, key, expires)) {
		return deny(errBadToken)
	}
	// Checked after the MAC so that a forged expiry is reported as a bad token,
	// never as "expired".
	if a.now().Unix() > expires {
		return deny(errExpired)
	}
	return nil
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
	if err := h.auth.check(req.App, req.Name, req.Query); err != nil {
		return nil, err
	}
	return h.next.OnPublish(ctx, req)
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
