package main

import (
	"testing"

	"github.com/rs/zerolog"
)

func TestFitHTTPConns(t *testing.T) {
	cfg := defaultConfig()
	for _, tc := range []struct{ limit, want int }{
		{0, 8192},       // unknown: as configured
		{1048576, 8192}, // room for all
		{9280, 8192},    // 1024 + 8192 + 64: just fits
		{4096, 4096 - 1024 - 64},
		{1024, 16}, // never below 16
	} {
		if got := fitHTTPConns(cfg, tc.limit, zerolog.Nop()); got != tc.want {
			t.Errorf("limit %d: http_max_conns %d, want %d", tc.limit, got, tc.want)
		}
	}
}
