package main

import (
	"bytes"
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
		{name: "listed app/stream", keys: []string{"live/cam"}, app: "live", str: "cam"},
		{name: "listed stream, any app", keys: []string{"cam"}, app: "backup", str: "cam"},
		{name: "app/stream does not match another app", keys: []string{"live/cam"}, app: "backup", str: "cam", code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
		{name: "unlisted", keys: []string{"live/cam"}, app: "live", str: "cam2", code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
		{name: "listed, with token", keys: []string{"live/cam"}, secret: testSecret, app: "live", str: "cam", query: valid},
		{name: "unlisted with a valid token", keys: []string{"live/x"}, secret: testSecret, app: "live", str: "cam", query: valid, code: ingest.StatusPublishBadName, errWant: errKeyNotAllowed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := newPublishAuth(tc.keys, tc.secret)
			a.now = func() time.Time { return now }
			err := a.check(tc.app, tc.str, tc.query)
			if tc.code == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			var pe *ingest.PublishError
			if !errors.As(err, &pe) || pe.Code != tc.code || !errors.Is(err, tc.errWant) {
				t.Fatalf("error %v, want code %s with %v", err, tc.code, tc.errWant)
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
		if err := a.check("live", "cam", query); (err == nil) != tc.allowed {
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
		{name: "flag list", args: []string{"-publish-keys", "live/a, b ,,live/c"}, keys: []string{"live/a", "b", "live/c"}},
		{name: "env list and secret", env: map[string]string{"RTMPGATE_PUBLISH_KEYS": "live/a", "RTMPGATE_PUBLISH_SECRET": testSecret}, keys: []string{"live/a"}, secret: testSecret},
		{name: "file list", file: "publish_keys: [live/a, b]\npublish_secret: " + testSecret + "\n", keys: []string{"live/a", "b"}, secret: testSecret},
		{name: "flag over file", file: "publish_keys: [live/a]\n", args: []string{"-publish-keys", "live/z"}, keys: []string{"live/z"}},
		{name: "short secret", args: []string{"-publish-secret", "short"}, wantErr: "publish_secret"},
		{name: "key with query", args: []string{"-publish-keys", "live/a?x=1"}, wantErr: "publish_keys"},
		{name: "key with empty app", args: []string{"-publish-keys", "/a"}, wantErr: "publish_keys"},
		{name: "key too deep", args: []string{"-publish-keys", "a/b/c"}, wantErr: "publish_keys"},
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
	if err := a.check("live", "cam", line[1:]); err != nil {
		t.Fatalf("signed query refused: %v", err)
	}
	a.now = func() time.Time { return time.Now().Add(2 * time.Hour) }
	if err := a.check("live", "cam", line[1:]); !errors.Is(err, errExpired) {
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

// TestPublishAuthE2E runs the binary with a publish secret and an allow-list and
// publishes with ffmpeg: refused publishers exit non-zero and the gateway logs
// their remote address and the code; a publisher with a token from
// "rtmpgate sign" streams.
func TestPublishAuthE2E(t *testing.T) {
	src := clip(t, "av")
	g := startGateway(t, "-publish-secret", testSecret, "-publish-keys", "live/authed,live/late,live/stale")
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
		{name: "no token", key: "authed", code: ingest.StatusPublishDenied},
		{name: "wrong secret", key: "authed", query: "?" + signPublish("another-secret-of-16-bytes", "live/authed", time.Now().Add(time.Hour)), code: ingest.StatusPublishDenied},
		{name: "token of another key", key: "late", query: sign("live/authed", "1h"), code: ingest.StatusPublishDenied},
		{name: "expired", key: "stale", query: "?" + expired, code: ingest.StatusPublishDenied},
		{name: "key not listed", key: "other", query: sign("live/other", "1h"), code: ingest.StatusPublishBadName},
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
				if strings.Contains(l, `"message":"publish refused"`) && strings.Contains(l, `"stream":"`+tc.key+`"`) && strings.Contains(l, tc.code) {
					line = l
				}
			}
			if !strings.Contains(line, `"remote":"127.0.0.1:`) {
				t.Fatalf("no refusal with code %s and the remote address logged for %s:\n%s", tc.code, tc.key, tail(g.logs.String(), 10))
			}
			if tokenInLog.MatchString(g.logs.String()) {
				t.Fatalf("the gateway logged a token:\n%s", tail(g.logs.String(), 10))
			}
			t.Log(line)
			code, _ := httpGet(t, g.tsPlaylistURL(tc.key))
			if code != http.StatusNotFound {
				t.Fatalf("refused stream's playlist: status %d, want 404", code)
			}
		})
	}
	t.Run("valid token", func(t *testing.T) {
		pub := publishFFmpeg(t, src, g.ingestURL("authed")+sign("live/authed", "1h"), false)
		if err := pub.wait(t, 30*time.Second); err != nil {
			t.Fatalf("publish with a valid token: %v\n%s", err, pub.output)
		}
		checkEndedStream(t, g, "authed", probe(t, src, false))
	})
}

// FuzzPublishAuth feeds peer-controlled app, stream and query to the check: it
// never panics, refuses with a PublishError, and accepts only what the secret
// signed.
func FuzzPublishAuth(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add("live", "cam", signPublish(testSecret, "live/cam", now.Add(time.Hour)))
	f.Add("live", "cam", "token=00&expires=1")
	f.Add("live", "cam", "token=%zz&expires=99999999999999999999")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, app, stream, query string) {
		a := newPublishAuth([]string{"live/cam", "cam2"}, testSecret)
		a.now = func() time.Time { return now }
		err := a.check(app, stream, query)
		if err == nil {
			q, _ := url.ParseQuery(query)
			exp, perr := strconv.ParseInt(q.Get("expires"), 10, 64)
			if perr != nil || exp < now.Unix() {
				t.Fatalf("accepted %q %q %q", app, stream, query)
			}
			if want := hexMAC(app+"/"+stream, exp); q.Get("token") != want && !strings.EqualFold(q.Get("token"), want) {
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
