package packager

import "github.com/rtmpgate/rtmpgate/remux"

// pending holds the frames that arrive while a session waits for its second
// track's sequence header, so that the first GOP reaches the first segment.
// Payloads are copied into one arena; the session bounds both counts.
type pending struct {
	frames []pendingFrame
	data   []byte
	lo, hi int64 // smallest and largest DTS held: span is asked once per held frame
}

type pendingFrame struct {
	track *remux.Track
	dts   int64
	cts   int32
	key   bool
	end   int // payload is data[previous end:end]
}

func (p *pending) add(f *remux.Frame) {
	p.data = append(p.data, f.Data...)
	if len(p.frames) == 0 {
		p.lo, p.hi = f.DTS, f.DTS
	}
	p.lo, p.hi = min(p.lo, f.DTS), max(p.hi, f.DTS)
	p.frames = append(p.frames, pendingFrame{track: f.Track, dts: f.DTS, cts: f.CTS, key: f.Key, end: len(p.data)})
}

// fits reports whether f may join the held frames: the frame count, the bytes
// and the media time held are all bounded.
func (p *pending) fits(f *remux.Frame, cfg *Config) bool {
	return len(p.frames) < pendingFrames && len(p.data)+len(f.Data) <= cfg.PendingBytes &&
		p.span() < cfg.MaxSegmentDuration.Milliseconds()
}

// span is the media time covered so far, ms.
func (p *pending) span() int64 {
	if len(p.frames) < 2 {
		return 0
	}
	return p.hi - p.lo
}

// each calls fn with every frame in arrival order; the Frame and its Data are
// valid only during the call.
func (p *pending) each(fn func(f *remux.Frame) error) error {
	var (
		first error
		fr    remux.Frame
		start int
	)
	for _, pf := range p.frames {
		fr = remux.Frame{Track: pf.track, DTS: pf.dts, CTS: pf.cts, Key: pf.key, Data: p.data[start:pf.end]}
		start = pf.end
		if err := fn(&fr); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// release drops the buffers: the wait happens once per session.
func (p *pending) release() { p.frames, p.data = nil, nil }
