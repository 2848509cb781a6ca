package main

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rtmpgate/rtmpgate/ingest"
)

const testSecret = "0123456789abcdef-test-secret"

// Secret publish keys of the tests, each at least 16 bytes.
const (
	keyCam   = "k-cam-7f3a9c2e41d8"
	keyCam2  = "k-cam2-0b6d55e9a7c1"
	keyOther = "k-other-93e1c04d2b7a"
)

func TestPublishAuthCheck(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	valid := signPublish(testSecret, "live/cam", now.Add(time.Hour))
	expired := signPublish(testSecret, "live/cam", now.Add(-time.Second))
	otherKey := signPublish(testSecret, "live/other", now.Add(time.Hour))
	otherApp := signPublish(testSecret, "backup/cam", now.Add(time.Hour))
	otherSecret := signPublish("another-secret-of-16-bytes", "live/cam", now.Add(time.Hour))
	q, _ := url.ParseQuery(valid)
	token, exp := q.Get("token"), q.Get("expires")
	later, _ := strconv.ParseInt(exp, 10, 64)

	tests := []struct {
		name     string
		keys     []string
		secret   string
		app, str string
		query    string
		code     string // "" = allowed
		errWant  error
		public   string // the stream published, when not str
	}{
		{name: "open gateway", app: "live", str: "cam"},
		{name: "valid token", secret: testSecret, app: "live", str: "cam", query: valid},
		{name: "valid token, other params around it", secret: testSecret, app: "live", str: "cam", query: "vhost=x&" + valid + "&y=1"},
		{name: "expired", secret: testSecret, app: "live", str: "cam", query: expired, code: ingest.StatusPublishDenied, errWant: errExpired},
		{name: "token for another stream", secret: testSecret, app: "live", str: "cam", query: otherKey, code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "token for another app", secret: testSecret, app: "live", str: "cam", query: otherApp, code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "wrong secret", secret: testSecret, app: "live", str: "cam", query: otherSecret, code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "missing token", secret: testSecret, app: "live", str: "cam", code: ingest.StatusPublishDenied, errWant: errNoToken},
		{name: "missing expires", secret: testSecret, app: "live", str: "cam", query: "token=" + token, code: ingest.StatusPublishDenied, errWant: errNoToken},
		{name: "expiry moved later", secret: testSecret, app: "live", str: "cam", query: "token=" + token + "&expires=" + strconv.FormatInt(later+3600, 10), code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "expires not a number", secret: testSecret, app: "live", str: "cam", query: "token=" + token + "&expires=soon", code: ingest.StatusPublishDenied, errWant: errBadExpires},
		{name: "token not hex", secret: testSecret, app: "live", str: "cam", query: "token=zz&expires=" + exp, code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "token truncated", secret: testSecret, app: "live", str: "cam", query: "token=" + token[:32] + "&expires=" + exp, code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "bad query escape", secret: testSecret, app: "live", str: "cam", query: "token=%zz", code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "oversized query", secret: testSecret, app: "live", str: "cam", query: valid + "&pad=" + strings.Repeat("a", maxAuthQuery), code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "secret key for app/stream", keys: []string{keyCam + "=live/cam"}, app: "live", str: keyCam, public: "cam"},
		{name: "secret key for a stream in any app", keys: []string{keyCam + "=cam"}, app: "backup", str: keyCam, public: "cam"},
		{name: "key for app/stream used in another app", keys: []string{keyCam + "=live/cam"}, app: "backup", str: keyCam, code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
		{name: "the playback name is no key", keys: []string{keyCam + "=live/cam"}, app: "live", str: "cam", code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
		{name: "unknown key", keys: []string{keyCam + "=live/cam"}, app: "live", str: keyOther, code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
		{name: "key prefix", keys: []string{keyCam + "=live/cam"}, app: "live", str: keyCam[:len(keyCam)-1], code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
		{name: "key with the name's token", keys: []string{keyCam + "=live/cam"}, secret: testSecret, app: "live", str: keyCam, query: valid, public: "cam"},
		{name: "key with a token over the key", keys: []string{keyCam + "=live/cam"}, secret: testSecret, app: "live", str: keyCam, query: signPublish(testSecret, "live/"+keyCam, now.Add(time.Hour)), code: ingest.StatusPublishDenied, errWant: errBadToken},
		{name: "unlisted with a valid token", keys: []string{keyOther + "=live/x"}, secret: testSecret, app: "live", str: "cam", query: valid, code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newPublishAuth(tc.keys, tc.secret)
			a.now = func() time.Time { return now }
			public, err := a.check(tc.app, tc.str, tc.query)
			if tc.code == "" {
				if want := cmp.Or(tc.public, tc.str); err != nil || public != want {
					t.Fatalf("got %q, %v; want %q allowed", public, err, want)
				}
				return
			}
			var pe *ingest.PublishError
			if !errors.As(err, &pe) || pe.Code != tc.code || !errors.Is(err, tc.errWant) {
				t.Fatalf("error %v, want code %s with %v", err, tc.code, tc.errWant)
			}
			if pe.Withhold != (tc.keys != nil) {
				t.Errorf("withhold %v: a refused name is a credential exactly when keys are configured", pe.Withhold)
			}
		})
	}
}

func TestPublishAuthExpiryEdge(t *testing.T) {
	exp := time.Unix(1_800_000_000, 0)
	query := signPublish(testSecret, "live/cam", exp)
	a := newPublishAuth(nil, testSecret)
	for _, tc := range []struct {
		at      time.Time
		allowed bool
	}{{exp.Add(-time.Second), true}, {exp, true}, {exp.Add(time.Second), false}} {
		a.now = func() time.Time { return tc.at }
		if _, err := a.check("live", "cam", query); (err == nil) != tc.allowed {
			t.Errorf("at expiry%+v: %v, want allowed=%v", tc.at.Sub(exp), err, tc.allowed)
		}
	}
}

func TestPublishConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		file    string
		keys    []string
		secret  string
		wantErr string
	}{
		{name: "defaults: open"},
		{name: "flag list", args: []string{"-publish-keys", keyCam + "=live/a, " + keyCam2 + "=b ,,"}, keys: []string{keyCam + "=live/a", keyCam2 + "=b"}},
		{name: "env list and secret", env: map[string]string{"RTMPGATE_PUBLISH_KEYS": keyCam + "=live/a", "RTMPGATE_PUBLISH_SECRET": testSecret}, keys: []string{keyCam + "=live/a"}, secret: testSecret},
		{name: "file list", file: "publish_keys: [" + keyCam + "=live/a, " + keyCam2 + "=b]\npublish_secret: " + testSecret + "\n", keys: []string{keyCam + "=live/a", keyCam2 + "=b"}, secret: testSecret},
		{name: "flag over file", file: "publish_keys: [" + keyCam + "=live/a]\n", args: []string{"-publish-keys", keyCam2 + "=live/z"}, keys: []string{keyCam2 + "=live/z"}},
		{name: "short secret", args: []string{"-publish-secret", "short"}, wantErr: "publish_secret"},
		{name: "old form: a playback name", args: []string{"-publish-keys", "live/a"}, wantErr: "is a playback name, not a secret key"},
		{name: "short key", args: []string{"-publish-keys", "short=live/a"}, wantErr: "at least 16 bytes"},
		{name: "key with a slash", args: []string{"-publish-keys", "k-cam/7f3a9c2e41d8=live/a"}, wantErr: "publish_keys"},
		{name: "key twice", args: []string{"-publish-keys", keyCam + "=live/a," + keyCam + "=live/b"}, wantErr: "listed twice"},
		{name: "key is its own playback name", args: []string{"-publish-keys", keyCam + "=live/" + keyCam}, wantErr: "its own playback name"},
		{name: "target with query", args: []string{"-publish-keys", keyCam + "=live/a?x=1"}, wantErr: "publish_keys"},
		{name: "target with empty app", args: []string{"-publish-keys", keyCam + "=/a"}, wantErr: "publish_keys"},
		{name: "target too deep", args: []string{"-publish-keys", keyCam + "=a/b/c"}, wantErr: "publish_keys"},
		{name: "empty target", args: []string{"-publish-keys", keyCam + "="}, wantErr: "publish_keys"},
		{name: "per-IP limit zero", args: []string{"-max-conns-per-ip", "0"}, wantErr: "max_conns_per_ip"},
		{name: "max conns zero", env: map[string]string{"RTMPGATE_MAX_CONNS": "0"}, wantErr: "max_conns"},
		{name: "write timeout", args: []string{"-write-timeout", "0s"}, wantErr: "write_timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := tc.args
			if tc.file != "" {
				args = append([]string{"-config", writeFile(t, tc.file)}, args...)
			}
			cfg, err := loadConfig(args, func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(cfg.PublishKeys) != fmt.Sprint(tc.keys) || cfg.PublishSecret != tc.secret {
				t.Fatalf("keys %q secret %q, want %q %q", cfg.PublishKeys, cfg.PublishSecret, tc.keys, tc.secret)
			}
			if cfg.MaxConns != 1024 || cfg.MaxConnsPerIP != 32 || cfg.WriteTimeout != 10*time.Second {
				t.Fatalf("limits %d %d %v, want the defaults", cfg.MaxConns, cfg.MaxConnsPerIP, cfg.WriteTimeout)
			}
		})
	}
}

func TestSignCommand(t *testing.T) {
	env := map[string]string{"RTMPGATE_PUBLISH_SECRET": testSecret}
	var out, errOut bytes.Buffer
	if code := signMain([]string{"-key", "live/cam", "-expires", "1h"}, func(k string) string { return env[k] }, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	line := strings.TrimSpace(out.String())
	if !strings.HasPrefix(line, "?token=") {
		t.Fatalf("output %q", line)
	}
	a := newPublishAuth(nil, testSecret)
	if _, err := a.check("live", "cam", line[1:]); err != nil {
		t.Fatalf("signed query refused: %v", err)
	}
	a.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if _, err := a.check("live", "cam", line[1:]); !errors.Is(err, errExpired) {
		t.Fatalf("after -expires: %v, want expired", err)
	}
	for _, args := range [][]string{{"-key", "cam"}, {}, {"-key", "live/cam", "-expires", "-1h"}} {
		if code := signMain(args, func(k string) string { return env[k] }, &out, &errOut); code != 2 {
			t.Errorf("sign %q: exit %d, want 2", args, code)
		}
	}
	if code := signMain([]string{"-key", "live/cam"}, func(string) string { return "" }, &out, &errOut); code != 2 {
		t.Errorf("sign without a secret: exit %d, want 2", code)
	}
}

var tokenInLog = regexp.MustCompile(`token=[0-9a-f]{16}`)

// TestPublishAuthE2E runs the binary with a publish secret and secret publish
// keys and publishes with ffmpeg: refused publishers exit non-zero and the
// gateway logs their remote address and the code but never the key they sent;
// a publisher with its secret key and a token from "rtmpgate sign" streams under
// the public name, which is not a key.
func TestPublishAuthE2E(t *testing.T) {
	src := clip(t, "av")
	g := startGateway(t, "-publish-secret", testSecret,
		"-publish-keys", keyCam+"=live/authed,"+keyCam2+"=live/late,"+keyOther+"=live/stale")
	sign := func(key, expires string) string {
		out, err := exec.Command(binPath, "sign", "-key", key, "-expires", expires, "-publish-secret", testSecret).Output()
		if err != nil {
			t.Fatalf("rtmpgate sign: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	expired := signPublish(testSecret, "live/stale", time.Now().Add(-time.Minute))
	refused := []struct {
		name, key, query, code string
	}{
		{name: "no token", key: keyCam, code: ingest.StatusPublishDenied},
		{name: "wrong secret", key: keyCam, query: "?" + signPublish("another-secret-of-16-bytes", "live/authed", time.Now().Add(time.Hour)), code: ingest.StatusPublishDenied},
		{name: "token of another stream", key: keyCam2, query: sign("live/authed", "1h"), code: ingest.StatusPublishDenied},
		{name: "expired", key: keyOther, query: "?" + expired, code: ingest.StatusPublishDenied},
		{name: "the playback name with a valid token", key: "authed", query: sign("live/authed", "1h"), code: ingest.StatusPublishBadName},
		{name: "key not listed", key: "k-unknown-5e7f1a2b3c4d", query: sign("live/other", "1h"), code: ingest.StatusPublishBadName},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			pub := publishFFmpeg(t, src, g.ingestURL(tc.key)+tc.query, true)
			if err := pub.wait(t, 10*time.Second); err == nil {
				t.Fatalf("ffmpeg exited 0: the publish was accepted\n%s", pub.output)
			}
			// ffmpeg prints an error-level onStatus as "Server error: <description>":
			// the refusal reached it before the connection closed.
			if !strings.Contains(pub.output.String(), "Server error") {
				t.Errorf("ffmpeg did not report the server's refusal:\n%s", pub.output)
			}
			var line string
			for _, l := range strings.Split(g.logs.String(), "\n") {
				if strings.Contains(l, `"message":"publish refused"`) && strings.Contains(l, `"stream":"(withheld)"`) && strings.Contains(l, tc.code) {
					line = l
				}
			}
			if !strings.Contains(line, `"remote":"127.0.0.1:`) {
				t.Fatalf("no refusal with code %s, the key withheld and the remote address logged:\n%s", tc.code, tail(g.logs.String(), 10))
			}
			if tokenInLog.MatchString(g.logs.String()) {
				t.Fatalf("the gateway logged a token:\n%s", tail(g.logs.String(), 10))
			}
			t.Log(line)
			for _, name := range []string{"authed", "late", "stale"} {
				if code, _ := httpGet(t, g.tsPlaylistURL(name)); code != http.StatusNotFound {
					t.Fatalf("after a refused publish, %s's playlist: status %d, want 404", name, code)
				}
			}
		})
	}
	t.Run("secret key and valid token", func(t *testing.T) {
		pub := publishFFmpeg(t, src, g.ingestURL(keyCam)+sign("live/authed", "1h"), false)
		if err := pub.wait(t, 30*time.Second); err != nil {
			t.Fatalf("publish with a valid key and token: %v\n%s", err, pub.output)
		}
		checkEndedStream(t, g, "authed", probe(t, src, false))
		published := false
		for _, l := range strings.Split(g.logs.String(), "\n") {
			published = published || strings.Contains(l, `"message":"publish"`) && strings.Contains(l, `"stream":"authed"`)
		}
		if !published {
			t.Errorf("no publish line naming the public stream:\n%s", tail(g.logs.String(), 10))
		}
	})
	for _, key := range []string{keyCam, keyCam2, keyOther} {
		if strings.Contains(g.logs.String(), key) {
			t.Fatalf("the gateway logged a publish key:\n%s", g.logs.String())
		}
	}
	// Asked last: the access log names the path asked for.
	if code, _ := httpGet(t, g.tsPlaylistURL(keyCam)); code != http.StatusNotFound {
		t.Fatalf("the stream is served under its key: status %d", code)
	}
}

// FuzzPublishAuth feeds peer-controlled app, stream and query to the check: it
// never panics, refuses with a PublishError, and accepts only what the secret
// signed.
func FuzzPublishAuth(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add("live", keyCam, signPublish(testSecret, "live/cam", now.Add(time.Hour)))
	f.Add("live", "cam", "token=00&expires=1")
	f.Add("live", "cam", "token=%zz&expires=99999999999999999999")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, app, stream, query string) {
		a := newPublishAuth([]string{keyCam + "=live/cam", keyCam2 + "=cam2"}, testSecret)
		a.now = func() time.Time { return now }
		public, err := a.check(app, stream, query)
		if err == nil {
			if public != "cam" && public != "cam2" || stream != keyCam && stream != keyCam2 {
				t.Fatalf("accepted %q as %q", stream, public)
			}
			q, _ := url.ParseQuery(query)
			exp, perr := strconv.ParseInt(q.Get("expires"), 10, 64)
			if perr != nil || exp < now.Unix() {
				t.Fatalf("accepted %q %q %q", app, stream, query)
			}
			if want := hexMAC(app+"/"+public, exp); q.Get("token") != want && !strings.EqualFold(q.Get("token"), want) {
				t.Fatalf("accepted a token that is not the MAC: %q", query)
			}
			return
		}
		var pe *ingest.PublishError
		if !errors.As(err, &pe) || pe.Code == "" {
			t.Fatalf("refusal %v is not a PublishError with a code", err)
		}
	})
}

func hexMAC(key string, exp int64) string {
	q, _ := url.ParseQuery(signPublish(testSecret, key, time.Unix(exp, 0)))
	return q.Get("token")
}
