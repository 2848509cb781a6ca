package httpserve

import (
	"bytes"
	"compress/gzip"
	"hash/fnv"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rtmpgate/rtmpgate/internal/mapcap"
	"github.com/rtmpgate/rtmpgate/packager"
)

const (
	// docCacheEntries bounds the playlists and MPDs kept prepared, across streams.
	docCacheEntries = 8192
)

// docCache prepares each playlist and MPD once per snapshot rather than per
// request: the MPD with its time source URL filled in, the ETag (a hash of the
// bytes) and the gzip encoding. Nothing in a request changes a document, so one
// prepared copy serves every client. A snapshot's documents are immutable slices, so an entry is
// current while its source is the very slice the stream serves now; holding the
// source keeps that slice alive, so pointer identity cannot be fooled by reuse.
type docCache struct {
	max     int
	timeURL []byte // the MPD's UTCTiming value, quoted

	// renders and gzips count documents prepared and compressed
	// (rtmpgate_http_document_renders_total, _gzips_total).
	renders, gzips atomic.Uint64

	mu      sync.Mutex
	entries map[docKey]*docEntry
}

type docKey struct {
	st     *packager.Stream
	ladder string // app/name of a ladder's document (st nil)
	path   string
}

type docEntry struct {
	src []byte
	doc *doc
}

// doc is one prepared document with its ETag and Content-Length header values.
// gz is made on first use: many players never ask for gzip, and a document
// nobody fetches compressed costs nothing.
type doc struct {
	c      *docCache
	plain  []byte
	etag   []string
	length []string

	gzOnce   sync.Once
	gz       []byte
	gzETag   []string
	gzLength []string
}

// newDocCache prepares MPDs whose UTCTiming points at base+"/time": base is
// the configured public base URL, or empty for the absolute path "/time".
func newDocCache(max int, base string) *docCache {
	return &docCache{max: max, entries: make(map[docKey]*docEntry),
		timeURL: []byte(`"` + xmlEscaper.Replace(base) + `/time"`)}
}

func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// get returns src prepared, from the cache when src is still the stream's
// current document at path.
func (c *docCache) get(st *packager.Stream, path string, src []byte) *doc {
	return c.getKey(docKey{st: st, path: path}, src)
}

func (c *docCache) getKey(key docKey, src []byte) *doc {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || !sameSlice(e.src, src) {
		if e == nil && len(c.entries) >= c.max {
			c.shrinkLocked()
		}
		e = &docEntry{src: src, doc: c.newDoc(src)}
		c.entries[key] = e
	}
	return e.doc
}

// shrinkLocked drops a quarter of the entries, whichever map iteration yields:
// entries of evicted streams are never looked up again and go this way.
func (c *docCache) shrinkLocked() { mapcap.DropQuarter(c.entries) }

// timePlaceholder is the MPD's UTCTiming values as the packager writes them.
var timePlaceholder = []byte(`"` + packager.OriginPlaceholder + `/time"`)

// newDoc fills in the time source URL of an MPD and hashes the result once.
func (c *docCache) newDoc(src []byte) *doc {
	c.renders.Add(1)
	d := &doc{c: c, plain: src}
	if bytes.Contains(src, timePlaceholder) {
		// Every occurrence: the low-latency MPD repeats the UTCTiming in each
		// ProducerReferenceTime.
		d.plain = bytes.ReplaceAll(src, timePlaceholder, c.timeURL)
	}
	f := fnv.New64a()
	_, _ = f.Write(d.plain)
	sum := strconv.FormatUint(f.Sum64(), 16)
	d.etag = []string{`"` + sum + `"`}
	d.gzETag = []string{`"` + sum + `-gz"`}
	d.length = []string{strconv.Itoa(len(d.plain))}
	return d
}

// gzipped returns the gzip encoding, its ETag, which differs from the plain
// one's as a strong validator must, and its Content-Length.
func (d *doc) gzipped() (body []byte, etag, length []string) {
	d.gzOnce.Do(func() {
		d.c.gzips.Add(1)
		var b bytes.Buffer
		b.Grow(len(d.plain)/3 + 64)
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		_, _ = zw.Write(d.plain)
		_ = zw.Close()
		d.gz = b.Bytes()
		d.gzLength = []string{strconv.Itoa(len(d.gz))}
	})
	return d.gz, d.gzETag, d.gzLength
}

// immCacheEntries bounds the segments, parts and init segments whose response
// headers are kept, across streams: about 200 bytes each.
const immCacheEntries = 16384

// immCache keeps the ETag, Content-Length and Last-Modified values of the
// immutable objects served, so a segment fetched by many players has them
// formatted once. An entry holds no media bytes. A path names the same bytes
// for a stream's whole life (it carries the publish epoch); size and time are
// checked anyway, so a wrong entry can only be rebuilt, never served.
type immCache struct {
	max int

	mu      sync.Mutex
	entries map[immKey]*immHeaders
}

type immKey struct {
	st   *packager.Stream
	path string
}

type immHeaders struct {
	size                       int
	modTime                    time.Time
	etag, length, lastModified []string
}

func newImmCache(max int) *immCache {
	return &immCache{max: max, entries: make(map[immKey]*immHeaders)}
}

func (c *immCache) get(st *packager.Stream, path string, obj packager.Object) *immHeaders {
	c.mu.Lock()
	e := c.entries[immKey{st, path}]
	c.mu.Unlock()
	if e != nil && e.size == len(obj.Data) && e.modTime.Equal(obj.ModTime) {
		return e
	}
	e = &immHeaders{
		size:    len(obj.Data),
		modTime: obj.ModTime,
		etag:    []string{immutableETag(path, len(obj.Data))},
		length:  []string{strconv.Itoa(len(obj.Data))},
	}
	if !obj.ModTime.IsZero() && !obj.ModTime.Equal(time.Unix(0, 0)) {
		e.lastModified = []string{obj.ModTime.UTC().Format(http.TimeFormat)}
	}
	key := immKey{st, strings.Clone(path)} // path is a slice of the request's
	c.mu.Lock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		mapcap.DropQuarter(c.entries)
	}
	c.entries[key] = e
	c.mu.Unlock()
	return e
}
