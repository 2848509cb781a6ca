package ingest

import "fmt"

// Kinds of ProtocolError, stable strings meant for metric labels.
const (
	KindHandshake = "handshake"
	KindChunk     = "chunk"
	KindAMF       = "amf"
	KindCommand   = "command"
	KindMedia     = "media"
	// KindTimeout is a peer too slow for a deadline (handshake, read or write):
	// a slowloris or a dead link rather than garbage.
	KindTimeout = "timeout"
)

// ProtocolError reports a peer that broke the RTMP protocol or one of the Server's
// limits. It always ends the connection it happened on, and only that one.
type ProtocolError struct {
	Kind string // one of the Kind* constants
	Err  error  // what was wrong, with context
}

func (e *ProtocolError) Error() string {
	return fmt.Sprintf("ingest: %s protocol error: %v", e.Kind, e.Err)
}

func (e *ProtocolError) Unwrap() error { return e.Err }

func protoErr(kind, format string, args ...any) error {
	return &ProtocolError{Kind: kind, Err: fmt.Errorf(format, args...)}
}
