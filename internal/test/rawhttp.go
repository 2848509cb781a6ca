package test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Exchange writes raw on a new connection to addr and reads one response per
// method in methods (a HEAD response has no body), returning the bytes read
// with Date values blanked, and whether the server then closed the connection.
func Exchange(tb testing.TB, addr, raw string, methods ...string) (string, bool) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		tb.Fatal(err)
	}
	var got bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &got))
	for _, m := range methods {
		res, err := http.ReadResponse(br, &http.Request{Method: m})
		if err != nil {
			tb.Fatalf("reading a response to %q: %v (got %q)", raw, err, got.String())
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			tb.Fatalf("body: %v", err)
		}
		res.Body.Close()
	}
	// A closed connection reads EOF at once; an open one times out.
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = br.ReadByte()
	closed := errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "reset"))
	return BlankDates(got.String()), closed
}

var dateRe = regexp.MustCompile(`Date: [^\r]*\r\n`)

// BlankDates replaces every Date field's value with X, so responses from
// different seconds compare equal.
func BlankDates(s string) string { return dateRe.ReplaceAllString(s, "Date: X\r\n") }
