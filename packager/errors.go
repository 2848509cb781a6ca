package packager

import "errors"

var (
	// ErrStreamBusy: the key has a live publisher that is not silent long enough
	// to be taken over. Ingest answers NetStream.Publish.BadName.
	ErrStreamBusy = errors.New("packager: stream is busy")
	// ErrNotFound: no such stream (never published, or evicted after its linger).
	ErrNotFound = errors.New("packager: stream not found")
	// ErrTooManyStreams: MaxStreams streams exist and none has ended.
	ErrTooManyStreams = errors.New("packager: too many streams")
	// ErrStoreFull: live windows hold more than MaxStoreBytes; a new stream waits
	// until they shrink (existing live streams keep every segment in their window).
	ErrStoreFull = errors.New("packager: segment store full")
	// ErrInvalidName: an app or stream name that cannot be a URL path segment.
	ErrInvalidName = errors.New("packager: invalid app or stream name")
	// ErrClosed: Publish after Hub.Close.
	ErrClosed = errors.New("packager: hub closed")
)

// ErrTakenOver is returned by a superseded session's writes: a newcomer took the
// key over after this publisher went silent.
var ErrTakenOver = errors.New("packager: session taken over by a newer publisher")
