package main

import "github.com/rs/zerolog"

// fdHeadroom is the descriptors kept for everything but client connections:
// the listeners, the debug server, logs, epoll, the binary's own files.
const fdHeadroom = 64

// fitHTTPConns returns http_max_conns, lowered when the descriptor limit
// cannot hold it beside max_conns RTMP connections and fdHeadroom: a flood on
// the public HTTP port must never take the descriptors publishers need. Go
// raises the soft RLIMIT_NOFILE to the hard one at start (Unix, Go 1.19+).
// limit is the soft RLIMIT_NOFILE (0: unknown, no fitting).
func fitHTTPConns(cfg config, limit int, log zerolog.Logger) int {
	n := cfg.HTTPMaxConns
	if limit > 0 && cfg.MaxConns+n+fdHeadroom > limit {
		n = max(limit-cfg.MaxConns-fdHeadroom, 16)
		log.Warn().Int("nofile", limit).Int("max_conns", cfg.MaxConns).Int("http_max_conns", n).
			Int("http_max_conns_configured", cfg.HTTPMaxConns).
			Msg("http_max_conns lowered to fit the open file limit (max_conns + http_max_conns + 64)")
	}
	log.Info().Int("nofile", limit).Int("max_conns", cfg.MaxConns).Int("http_max_conns", n).Msg("connection budget")
	return n
}
