package httpsyntax

import "testing"

func TestSyntax(t *testing.T) {
	for _, tc := range []struct {
		in           string
		token, value bool
	}{
		{"Host", true, true},
		{"x-a_b.c~!#$%&'*+^`|", true, true},
		{"", false, true},
		{"a b", false, true},
		{"a:b", false, true},
		{"a\tb", false, true},
		{"a\rb", false, false},
		{"a\x7fb", false, false},
		{"é", false, true},
	} {
		if got := Token([]byte(tc.in)); got != tc.token {
			t.Errorf("Token(%q) = %v", tc.in, got)
		}
		if got := FieldValue([]byte(tc.in)); got != tc.value {
			t.Errorf("FieldValue(%q) = %v", tc.in, got)
		}
	}
	if got := string(TrimOWS([]byte(" \t a b\t "))); got != "a b" {
		t.Errorf("TrimOWS: %q", got)
	}
	for in, want := range map[string]bool{"content-length": true, "Content-LENGTH": true, "content-lengtH ": false, "content-lengti": false} {
		if got := EqualFold([]byte(in), "content-length"); got != want {
			t.Errorf("EqualFold(%q) = %v", in, got)
		}
	}
}
