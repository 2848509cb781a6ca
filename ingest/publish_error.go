package ingest

import "fmt"

// onStatus codes for a refused publish. Both make ffmpeg stop (any onStatus of
// level "error" fails its publish), and OBS's librtmp closes on Denied (and, in
// recent versions, on BadName); we close the connection after either anyway.
const (
	StatusPublishBadName = "NetStream.Publish.BadName" // unknown or busy stream key
	StatusPublishDenied  = "NetStream.Publish.Denied"  // the key exists but the credentials do not fit
)

// PublishError is a Handler's refusal with its own onStatus code. OnPublish may
// return it (or wrap it: it is found with errors.As); any other error is answered
// with StatusPublishBadName. The client sees Err's text as the description.
type PublishError struct {
	Code string // onStatus code, e.g. StatusPublishDenied; empty means StatusPublishBadName
	Err  error
	// Withhold keeps the requested name out of the log: it is a credential
	// (a secret publish key), and a refused one may be a near miss.
	Withhold bool
}

func (e *PublishError) Error() string {
	return fmt.Sprintf("%s: %v", e.status(), e.Err)
}

func (e *PublishError) Unwrap() error { return e.Err }

func (e *PublishError) status() string {
	if e.Code == "" {
		return StatusPublishBadName
	}
	return e.Code
}
