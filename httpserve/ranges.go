package httpserve

import (
	"slices"
	"strconv"
	"strings"
)

// maxRanges is the most byte ranges a request may ask for: a player or CDN
// asks for one; more (up to this) are served as multipart, coalesced; a
// request for more is answered with the whole object, as RFC 9110 14.2 lets
// a server ignore Range.
const maxRanges = 16

// coalesceRanges rewrites a Range value for an object of size bytes: its
// ranges resolved, sorted and merged where they overlap or touch, so no byte
// is sent twice. ok false: ignore Range and send the whole object (more than
// maxRanges ranges). A value it cannot read is returned unchanged for
// http.ServeContent to answer (416 or the whole object, as it does).
func coalesceRanges(v string, size int64) (out string, ok bool) {
	spec, found := strings.CutPrefix(v, "bytes=")
	if !found {
		return v, true
	}
	type span struct{ start, end int64 } // end exclusive
	var spans []span
	n := 0
	for part := range strings.SplitSeq(spec, ",") {
		if n++; n > maxRanges {
			return "", false
		}
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		first, last, dash := strings.Cut(part, "-")
		first, last = strings.TrimSpace(first), strings.TrimSpace(last)
		if !dash {
			return v, true
		}
		var s span
		switch {
		case first == "":
			k, err := strconv.ParseInt(last, 10, 64)
			if err != nil || k < 0 {
				return v, true
			}
			s = span{max(size-k, 0), size}
		default:
			a, err := strconv.ParseInt(first, 10, 64)
			if err != nil || a < 0 {
				return v, true
			}
			b := size - 1
			if last != "" {
				if b, err = strconv.ParseInt(last, 10, 64); err != nil || b < a {
					return v, true
				}
			}
			s = span{a, min(b, size-1) + 1}
		}
		if s.start >= size || s.end <= s.start {
			continue // unsatisfiable alone; ServeContent drops these too
		}
		spans = append(spans, s)
	}
	if len(spans) == 0 {
		return v, true
	}
	slices.SortFunc(spans, func(a, b span) int { return int(min(max(a.start-b.start, -1), 1)) })
	merged := spans[:1]
	for _, s := range spans[1:] {
		if l := &merged[len(merged)-1]; s.start <= l.end {
			l.end = max(l.end, s.end)
		} else {
			merged = append(merged, s)
		}
	}
	b := []byte("bytes=")
	for i, s := range merged {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, s.start, 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, s.end-1, 10)
	}
	return string(b), true
}
