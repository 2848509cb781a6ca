package httpserve

import (
	"encoding/xml"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRequestHeaders feeds Accept-Encoding, the one request header httpserve
// parses itself for a document (gzip or not), and a public base URL: parsing
// must not panic and the MPD's time source must stay a well-formed XML
// attribute holding the base URL.
func FuzzRequestHeaders(f *testing.F) {
	f.Add("gzip, deflate, br", "https://cdn.example:8443")
	f.Add("gzip;q=0, *;q=0.5", "a&b'c<d>\"e")
	f.Add(";;;,,,q=;q", "")
	f.Add("*;q=0,gzip;q=1e-400", "http://[::1]:80")
	f.Fuzz(func(t *testing.T, ae, base string) {
		_ = acceptsGzip(ae)
		if !utf8.ValidString(base) || strings.ContainsFunc(base, func(r rune) bool { return r < ' ' || r == 0xfffe || r == 0xffff }) {
			return // config validation refuses these
		}
		d := newDocCache(4, base).get(nil, "index.mpd", []byte(`<UTCTiming value="ORIGIN/time"/>`))
		var v struct {
			Value string `xml:"value,attr"`
		}
		if err := xml.Unmarshal(d.plain, &v); err != nil {
			t.Fatalf("base %q breaks the MPD attribute: %v", base, err)
		}
		if v.Value != base+"/time" {
			t.Fatalf("time source %q from base %q", v.Value, base)
		}
	})
}
