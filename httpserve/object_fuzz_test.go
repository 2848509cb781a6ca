package httpserve

import (
	"encoding/xml"
	"net/http"
	"strings"
	"testing"
)

// FuzzRequestHeaders feeds the two request headers httpserve parses itself:
// Accept-Encoding (gzip or not) and Host with X-Forwarded-Proto (the MPD's origin).
// Whatever they hold, parsing must not panic and the origin must stay a well-formed
// XML attribute value with an http or https scheme.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("gzip, deflate, br", "cdn.example:8443", "https")
	f.Add("gzip;q=0, *;q=0.5", "a&b'c<d>\"e", "HTTPS, http")
	f.Add(";;;,,,q=;q", "", "javascript")
	f.Add("*;q=0,gzip;q=1e-400", "[::1]:80", " http ,")
	f.Fuzz(func(t *testing.T, ae, host, proto string) {
		_ = acceptsGzip(ae)
		r := &http.Request{Host: host, Header: http.Header{"X-Forwarded-Proto": {proto}}}
		origin := requestOrigin(r)
		if !strings.HasPrefix(origin, "http://") && !strings.HasPrefix(origin, "https://") {
			t.Fatalf("origin %q", origin)
		}
		// net/http refuses hosts outside printable ASCII before any handler runs.
		for i := 0; i < len(host); i++ {
			if host[i] <= ' ' || host[i] >= 0x7f {
				return
			}
		}
		if host == "" {
			host = "localhost"
		}
		var v struct {
			Value string `xml:"value,attr"`
		}
		if err := xml.Unmarshal([]byte(`<UTCTiming value="`+origin+`/time"/>`), &v); err != nil {
			t.Fatalf("origin %q breaks the MPD attribute: %v", origin, err)
		}
		if scheme, rest, _ := strings.Cut(v.Value, "://"); rest != host+"/time" || (scheme != "http" && scheme != "https") {
			t.Fatalf("origin attribute %q from host %q", v.Value, host)
		}
	})
}
