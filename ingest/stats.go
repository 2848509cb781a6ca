package ingest

import (
	"sync"
	"sync/atomic"
)

// Stats are the server's counters since it started, read atomically (for metrics).
type Stats struct {
	ConnsAccepted, ConnsRefused, ConnsActive int64 // refused: over MaxConns or MaxConnsPerIP
	Publishing                               int64 // sessions publishing now
	BytesIn                                  int64 // RTMP bytes read, all connections (updated per read call, not per byte)
	Frames                                   int64 // audio+video frames handed to Writers
	Panics                                   int64 // recovered at the connection boundary
	// ProtocolErrors counts connections ended by a ProtocolError, by its Kind
	// ("handshake", "chunk", "amf", "command", "media", "timeout"). Every kind is
	// present, zero or not, so a metric series exists from the start.
	ProtocolErrors map[string]int64
	PublishRefused int64 // publishes the Handler (or the connection's state) refused
	// UnsupportedCodecs counts tracks refused for a codec the outputs cannot
	// carry, by codec: an Enhanced RTMP FourCC ("vp08", ".mp3", "vvc1"), "other" for a FourCC outside the specification, a
	// FourCC with "-mpeg2ts" for a track announced by an MPEG-2 TS descriptor
	// alone, or
	// "flv-video-N" / "flv-audio-N" for a legacy FLV codec id / sound format N.
	// Each refused track of a publish session counts once.
	UnsupportedCodecs map[string]int64
}

// protocolErrorKinds are the kinds counted in Stats.ProtocolErrors, in a fixed
// order so the counters can be a plain array; anything else counts as "other".
var protocolErrorKinds = [...]string{KindHandshake, KindChunk, KindAMF, KindCommand, KindMedia, KindTimeout, kindOther}

const kindOther = "other"

// serverStats are the live counters behind Stats. Hot paths add per read call
// (bytes) or per read batch (frames), never per byte.
type serverStats struct {
	accepted, refused, active atomic.Int64
	publishing                atomic.Int64
	bytesIn, frames           atomic.Int64
	panics                    atomic.Int64
	publishRefused            atomic.Int64
	protocol                  [len(protocolErrorKinds)]atomic.Int64

	// Refusals are rare (once per refused track and session): a map under a
	// mutex, its keys bounded by codecLabel and the 32 legacy ids.
	unsupportedMu sync.Mutex
	unsupported   map[string]int64
}

func (st *serverStats) unsupportedCodec(label string) {
	st.unsupportedMu.Lock()
	defer st.unsupportedMu.Unlock()
	if st.unsupported == nil {
		st.unsupported = make(map[string]int64)
	}
	st.unsupported[label]++
}

func (st *serverStats) protocolError(kind string) {
	for i, k := range protocolErrorKinds {
		if k == kind {
			st.protocol[i].Add(1)
			return
		}
	}
	st.protocol[len(protocolErrorKinds)-1].Add(1)
}

// Stats returns the server's counters. Each counter is read atomically; the set is
// not one snapshot, which metrics do not need.
func (s *Server) Stats() Stats {
	st := &s.stats
	out := Stats{
		ConnsAccepted:  st.accepted.Load(),
		ConnsRefused:   st.refused.Load(),
		ConnsActive:    st.active.Load(),
		Publishing:     st.publishing.Load(),
		BytesIn:        st.bytesIn.Load(),
		Frames:         st.frames.Load(),
		Panics:         st.panics.Load(),
		PublishRefused: st.publishRefused.Load(),
		ProtocolErrors: make(map[string]int64, len(protocolErrorKinds)),
	}
	for i, k := range protocolErrorKinds {
		out.ProtocolErrors[k] = st.protocol[i].Load()
	}
	st.unsupportedMu.Lock()
	out.UnsupportedCodecs = make(map[string]int64, len(st.unsupported))
	for k, v := range st.unsupported {
		out.UnsupportedCodecs[k] = v
	}
	st.unsupportedMu.Unlock()
	return out
}
