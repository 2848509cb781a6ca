// Package web holds the status page and the player libraries, embedded into the
// binary so the gateway needs no files beside it. `make web` fetches the pinned
// libraries from npm into vendor/; a plain `go build` embeds an empty vendor/ and
// the page says so instead of playing.
package web

import "embed"

// FS holds index.html, play.html, player.js and vendor/ (hls.min.js, dash.all.min.js, shaka-player.compiled.js).
//
//go:embed index.html play.html player.js all:vendor
var FS embed.FS
