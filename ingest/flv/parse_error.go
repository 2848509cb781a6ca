package flv

import (
	"errors"
	"fmt"
)

// ErrMalformed is wrapped by the parsers for a tag body that breaks its format:
// truncated, a reserved value, a length that runs past the end. Unlike
// ErrUnsupportedCodec it points at a broken or hostile publisher.
var ErrMalformed = errors.New("flv: malformed tag body")

// parseError carries a complete message and the sentinel it stands for, so that
// messages read "flv: video codec id 12: unsupported codec" rather than
// repeating the sentinel's own "flv:" prefix.
type parseError struct {
	msg  string
	kind error // ErrMalformed or ErrUnsupportedCodec
}

func (e *parseError) Error() string { return e.msg }
func (e *parseError) Unwrap() error { return e.kind }

func malformedf(format string, args ...any) error {
	return &parseError{msg: "flv: " + fmt.Sprintf(format, args...), kind: ErrMalformed}
}

func unsupportedf(format string, args ...any) error {
	return &parseError{msg: "flv: " + fmt.Sprintf(format, args...) + ": unsupported codec", kind: ErrUnsupportedCodec}
}

// Errors for the legacy codec ids and sound formats are built once: a publisher
// sending a codec we refuse does so on every frame, and the refusal should cost
// no allocation.
var (
	videoCodecErrs  [16]error
	audioFormatErrs [16]error
)

func init() {
	for i := range videoCodecErrs {
		videoCodecErrs[i] = unsupportedf("video codec id %d", i)
		audioFormatErrs[i] = unsupportedf("audio sound format %d", i)
	}
}

// The refusals for FourCCs that Enhanced RTMP defines are built once for the same
// reason; unknown FourCCs are rare enough to allocate.
var (
	videoFourCCErrs = fourCCErrs("video", "hvc1", "av01", "vp09", "vp08", "vvc1")
	audioFourCCErrs = fourCCErrs("audio", "Opus", "fLaC", "ac-3", "ec-3", ".mp3")
)

func fourCCErrs(media string, names ...string) map[FourCC]error {
	m := make(map[FourCC]error, len(names))
	for _, n := range names {
		m[fourCC(n)] = unsupportedf("%s FourCC %q", media, n)
	}
	return m
}

func fourCC(s string) FourCC { return readFourCC([]byte(s)) }

func unsupportedFourCC(media string, known map[FourCC]error, v FourCC) error {
	if err, ok := known[v]; ok {
		return err
	}
	s := string([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	return unsupportedf("%s FourCC %q", media, s)
}
