package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Viewer limits.
const (
	maxPlaylistBytes = 1 << 20
	maxPlaylistSegs  = 4096
	requestTimeout   = 10 * time.Second
	appearWithin     = 15 * time.Second // a live stream's playlist must exist this long after its publisher started
	endWithin        = 10 * time.Second // an ended stream's playlist must show ENDLIST this long after its publisher ended
)

// viewerStats are summed over all viewers; atomics so the progress line can read
// them while viewers run.
type viewerStats struct {
	playlists       atomic.Int64
	playlistErrors  atomic.Int64
	segments        atomic.Int64
	segmentMissing  atomic.Int64 // a listed segment answered 404
	segmentErrors   atomic.Int64 // any other failure to fetch a listed segment
	bytes           atomic.Int64
	maxPlaylistAge  atomic.Int64 // ms since a live playlist last got a new segment, worst seen
	maxFirstListing atomic.Int64 // ms from a publisher's start to its playlist's first segment, worst seen
	notEnded        atomic.Int64 // streams whose playlist never showed ENDLIST after the publisher left
	errs            errorList
}

func storeMax(v *atomic.Int64, n int64) {
	for {
		old := v.Load()
		if n <= old || v.CompareAndSwap(old, n) {
			return
		}
	}
}

// viewer polls one stream's TS media playlist and fetches each new segment once.
type viewer struct {
	id     int
	pub    *publisher
	url    *url.URL
	client *http.Client
	stats  *viewerStats
	buf    []byte
	// lastHeaders describes the last response that announced an empty or
	// unframed body.
	lastHeaders string
	// endWait is how long after its publisher left the playlist must show
	// ENDLIST; endWithin unless a test shortens it.
	endWait time.Duration
}

// mediaPlaylist is what a viewer reads from an HLS media playlist.
type mediaPlaylist struct {
	targetDuration int
	mediaSequence  int64
	segments       []string
	endList        bool
}

// parsePlaylist reads an HLS media playlist: the tags a viewer needs, and the
// segment URIs each with its EXTINF.
func parsePlaylist(body []byte) (mediaPlaylist, error) {
	var pl mediaPlaylist
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	first, haveInf, haveTarget := true, false, false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if first {
			if line != "#EXTM3U" {
				return pl, fmt.Errorf("playlist: first line %.40q, want #EXTM3U", line)
			}
			first = false
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		switch {
		case line == "":
		case name == "#EXT-X-TARGETDURATION":
			n, err := strconv.Atoi(value)
			if err != nil || n <= 0 {
				return pl, fmt.Errorf("playlist: bad %.60q", line)
			}
			pl.targetDuration, haveTarget = n, true
		case name == "#EXT-X-MEDIA-SEQUENCE":
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || n < 0 {
				return pl, fmt.Errorf("playlist: bad %.60q", line)
			}
			pl.mediaSequence = n
		case name == "#EXTINF":
			d, err := strconv.ParseFloat(strings.TrimSuffix(strings.SplitN(value, ",", 2)[0], ","), 64)
			if err != nil || d <= 0 {
				return pl, fmt.Errorf("playlist: bad %.60q", line)
			}
			haveInf = true
		case line == "#EXT-X-ENDLIST":
			pl.endList = true
		case strings.HasPrefix(line, "#"):
		default:
			if !haveInf {
				return pl, fmt.Errorf("playlist: segment %.60q without EXTINF", line)
			}
			if len(pl.segments) >= maxPlaylistSegs {
				return pl, fmt.Errorf("playlist: more than %d segments", maxPlaylistSegs)
			}
			pl.segments = append(pl.segments, line)
			haveInf = false
		}
	}
	if err := sc.Err(); err != nil {
		return pl, fmt.Errorf("playlist: %w", err)
	}
	if first {
		return pl, fmt.Errorf("playlist: empty")
	}
	if !haveTarget {
		return pl, fmt.Errorf("playlist: no EXT-X-TARGETDURATION")
	}
	return pl, nil
}

// run watches until the stream ends (ENDLIST after its publisher left), its
// publisher failed, or ctx ends.
func (v *viewer) run(ctx context.Context) {
	if err := sleepUntil(ctx, nil, v.pub.start); err != nil {
		return
	}
	var (
		next        int64     = -1 // media sequence of the next segment to fetch
		lastAdvance time.Time      // when the playlist last listed a new segment
		seen        bool
		errored     bool // one "never appeared" error per viewer, not one per poll
	)
	interval := time.Second
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for ctx.Err() == nil {
		polled := time.Now()
		state := publisherState(v.pub.state.Load())
		if state == stateFailed {
			return // counted as the publisher's failure
		}
		pl, code, err := v.playlist(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			v.fail(&v.stats.playlistErrors, err)
		case code == http.StatusNotFound && !seen:
			if !errored && time.Since(v.pub.start) > appearWithin && state == stateLive {
				errored = true
				v.fail(&v.stats.playlistErrors, fmt.Errorf("playlist still 404 %s after the publisher started", appearWithin))
			}
		case code != http.StatusOK:
			v.fail(&v.stats.playlistErrors, fmt.Errorf("playlist: status %d", code))
		default:
			end := pl.mediaSequence + int64(len(pl.segments))
			if !seen && len(pl.segments) > 0 {
				seen = true
				storeMax(&v.stats.maxFirstListing, time.Since(v.pub.start).Milliseconds())
				lastAdvance = polled
				next = pl.mediaSequence
			}
			if seen {
				if next > end {
					v.fail(&v.stats.playlistErrors, fmt.Errorf("playlist: media sequence went back: ends at %d, %d fetched", end, next))
					next = end
				}
				if next < end {
					lastAdvance = polled
				} else if !pl.endList {
					storeMax(&v.stats.maxPlaylistAge, time.Since(lastAdvance).Milliseconds())
				}
				if next < pl.mediaSequence {
					v.fail(&v.stats.segmentMissing, fmt.Errorf("fell behind: segments %d..%d left the playlist unfetched", next, pl.mediaSequence-1))
					next = pl.mediaSequence
				}
				for ; next < end && ctx.Err() == nil; next++ {
					v.segment(ctx, pl.segments[next-pl.mediaSequence])
				}
			}
			if pl.endList && seen {
				return
			}
			if pl.targetDuration > 0 {
				interval = min(time.Second, time.Duration(pl.targetDuration)*time.Second/2)
			}
		}
		if state == stateDone && time.Since(v.pub.ended()) > v.endWait {
			v.stats.notEnded.Add(1)
			v.fail(&v.stats.playlistErrors, fmt.Errorf("no ENDLIST %s after the publisher left", v.endWait))
			return
		}
		if err := sleepUntil(ctx, timer, polled.Add(interval)); err != nil {
			return
		}
	}
}

func (v *viewer) fail(counter *atomic.Int64, err error) {
	counter.Add(1)
	v.stats.errs.add(fmt.Errorf("viewer %d (%s): %w", v.id, v.pub.name, err))
}

// playlist fetches and parses the media playlist; a non-200 status is returned
// with a nil error.
func (v *viewer) playlist(ctx context.Context) (mediaPlaylist, int, error) {
	code, body, err := v.get(ctx, v.url.String(), true)
	if err != nil || code != http.StatusOK {
		return mediaPlaylist{}, code, err
	}
	v.stats.playlists.Add(1)
	pl, err := parsePlaylist(body)
	if err != nil && len(body) == 0 {
		// A gateway that answers nothing sends an empty 200 (a lookup race did
		// once, docs/RELIABILITY.md): the headers say which layer answered.
		err = fmt.Errorf("%w (%s)", err, v.lastHeaders)
	}
	return pl, code, err
}

func (v *viewer) segment(ctx context.Context, uri string) {
	ref, err := url.Parse(uri)
	if err != nil {
		v.fail(&v.stats.segmentErrors, fmt.Errorf("segment URI %.60q: %w", uri, err))
		return
	}
	code, _, err := v.get(ctx, v.url.ResolveReference(ref).String(), false)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		v.fail(&v.stats.segmentErrors, fmt.Errorf("segment %s: %w", uri, err))
	case code == http.StatusNotFound:
		v.fail(&v.stats.segmentMissing, fmt.Errorf("segment %s: listed but 404", uri))
	case code != http.StatusOK:
		v.fail(&v.stats.segmentErrors, fmt.Errorf("segment %s: status %d", uri, code))
	default:
		v.stats.segments.Add(1)
	}
}

// get fetches u; keep returns the body (bounded), otherwise it is counted and
// discarded through the viewer's reused buffer.
func (v *viewer) get(ctx context.Context, u string, keep bool) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, nil, err
	}
	res, err := v.client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	if keep && res.ContentLength <= 0 {
		v.lastHeaders = fmt.Sprintf("%s %s, %d headers: Content-Length %q Content-Type %q Content-Encoding %q Etag %q",
			res.Proto, res.Status, len(res.Header), res.Header.Get("Content-Length"), res.Header.Get("Content-Type"),
			res.Header.Get("Content-Encoding"), res.Header.Get("Etag"))
	}
	if v.buf == nil {
		v.buf = make([]byte, 32<<10)
	}
	var body []byte
	var n int64
	if keep && res.StatusCode == http.StatusOK {
		body, err = io.ReadAll(io.LimitReader(res.Body, maxPlaylistBytes+1))
		if err == nil && len(body) > maxPlaylistBytes {
			err = fmt.Errorf("playlist larger than %d bytes", maxPlaylistBytes)
		}
		n = int64(len(body))
	} else {
		n, err = io.CopyBuffer(onlyWriter{io.Discard}, res.Body, v.buf)
	}
	v.stats.bytes.Add(n)
	if err != nil {
		return res.StatusCode, nil, fmt.Errorf("GET %s: body: %w", u, err)
	}
	return res.StatusCode, body, nil
}

// onlyWriter hides io.Discard's ReaderFrom so CopyBuffer uses our buffer.
type onlyWriter struct{ io.Writer }
