// Package web holds the status page, embedded into the binary so the gateway needs
// no files beside it.
package web

import "embed"

// FS holds index.html and its assets.
//
//go:embed index.html
var FS embed.FS
