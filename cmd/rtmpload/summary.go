package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"syscall"
	"time"
)

// maxErrors caps the error messages kept for the summary; the counters count all.
const maxErrors = 20

// errorList keeps the first few errors, safely from many goroutines.
type errorList struct {
	mu    sync.Mutex
	first []string
	n     int
}

func (l *errorList) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.first) < maxErrors {
		l.first = append(l.first, err.Error())
	}
}

func (l *errorList) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.first...)
}

// summary is what rtmpload prints at exit (JSON with -json).
type summary struct {
	OK         bool             `json:"ok"`
	WallS      float64          `json:"wall_s"`
	Publishers publisherSummary `json:"publishers"`
	Viewers    *viewerSummary   `json:"viewers,omitempty"`
	CPU        cpuSummary       `json:"cpu"`
	Errors     []string         `json:"errors,omitempty"`
}

type publisherSummary struct {
	Requested         int     `json:"requested"`
	Connected         int     `json:"connected"`
	Failed            int     `json:"failed"`
	DisconnectedEarly int     `json:"disconnected_early"`
	Interrupted       int     `json:"interrupted"`
	VideoFrames       int64   `json:"video_frames"`
	AudioFrames       int64   `json:"audio_frames"`
	PayloadBytes      int64   `json:"payload_bytes"`
	WireBytes         int64   `json:"wire_bytes"`
	StreamKbps        float64 `json:"stream_kbps"` // mean over connected publishers of payload bits per live second
	TotalMbps         float64 `json:"total_mbps"`  // all payload bits over the wall time
	ClipKbps          float64 `json:"clip_kbps"`   // the clip's own payload rate, for comparison
}

type viewerSummary struct {
	Requested         int   `json:"requested"`
	PlaylistFetches   int64 `json:"playlist_fetches"`
	PlaylistErrors    int64 `json:"playlist_errors"`
	Segments          int64 `json:"segments"`
	SegmentMissing    int64 `json:"segment_404"`
	SegmentErrors     int64 `json:"segment_errors"`
	Bytes             int64 `json:"bytes"`
	MaxPlaylistAgeMS  int64 `json:"max_playlist_age_ms"`
	MaxFirstSegmentMS int64 `json:"max_first_segment_ms"`
	StreamsWithoutEnd int64 `json:"streams_without_endlist"`
}

type cpuSummary struct {
	UserS float64 `json:"user_s"`
	SysS  float64 `json:"sys_s"`
	// Cores is CPU seconds over wall seconds: 1 is one core busy.
	Cores float64 `json:"cores"`
}

// cpuTime is this process's user and system CPU time so far.
func cpuTime() [2]time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return [2]time.Duration{}
	}
	return [2]time.Duration{time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())}
}

func summarize(cfg config, began time.Time, cpu0 [2]time.Duration, pubs []*publisher, vs *viewerStats) *summary {
	wall := time.Since(began)
	cpu1 := cpuTime()
	s := &summary{WallS: wall.Seconds()}
	ps := &s.Publishers
	ps.Requested = len(pubs)
	var kbps float64
	var errs []string
	for _, p := range pubs {
		if p.live > 0 {
			ps.Connected++
			kbps += float64(p.payloadBytes.Load()) * 8 / 1000 / p.live.Seconds()
		}
		switch {
		case p.err != nil && p.early:
			ps.DisconnectedEarly++
		case p.err != nil:
			ps.Failed++
		case publisherState(p.state.Load()) == stateFailed:
			ps.Interrupted++
		}
		if p.err != nil && len(errs) < maxErrors {
			errs = append(errs, p.err.Error())
		}
		ps.VideoFrames += p.videoFrames.Load()
		ps.AudioFrames += p.audioFrames.Load()
		ps.PayloadBytes += p.payloadBytes.Load()
		ps.WireBytes += p.wireBytes.Load()
	}
	if ps.Connected > 0 {
		ps.StreamKbps = kbps / float64(ps.Connected)
	}
	ps.TotalMbps = float64(ps.PayloadBytes) * 8 / 1e6 / wall.Seconds()
	if c := pubs[0].clip; c.Period > 0 {
		ps.ClipKbps = float64(c.Bytes) * 8 / float64(c.Period)
	}
	s.OK = ps.Failed == 0 && ps.DisconnectedEarly == 0 && ps.Connected == ps.Requested
	if cfg.viewers > 0 {
		s.Viewers = &viewerSummary{
			Requested:         cfg.viewers,
			PlaylistFetches:   vs.playlists.Load(),
			PlaylistErrors:    vs.playlistErrors.Load(),
			Segments:          vs.segments.Load(),
			SegmentMissing:    vs.segmentMissing.Load(),
			SegmentErrors:     vs.segmentErrors.Load(),
			Bytes:             vs.bytes.Load(),
			MaxPlaylistAgeMS:  vs.maxPlaylistAge.Load(),
			MaxFirstSegmentMS: vs.maxFirstListing.Load(),
			StreamsWithoutEnd: vs.notEnded.Load(),
		}
		v := s.Viewers
		s.OK = s.OK && v.PlaylistErrors == 0 && v.SegmentMissing == 0 && v.SegmentErrors == 0
		errs = append(errs, vs.errs.list()...)
	}
	s.Errors = errs
	s.CPU = cpuSummary{UserS: (cpu1[0] - cpu0[0]).Seconds(), SysS: (cpu1[1] - cpu0[1]).Seconds()}
	s.CPU.Cores = (s.CPU.UserS + s.CPU.SysS) / wall.Seconds()
	return s
}

// write prints the summary: JSON, or a few readable lines.
func (s *summary) write(w io.Writer, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	p := s.Publishers
	_, err := fmt.Fprintf(w, "publishers: %d requested, %d connected, %d failed, %d disconnected early, %d interrupted\n"+
		"sent: %d video + %d audio frames, %.1f MB payload (%.1f MB on the wire), %.0f kbit/s per stream (clip %.0f), %.1f Mbit/s total\n",
		p.Requested, p.Connected, p.Failed, p.DisconnectedEarly, p.Interrupted,
		p.VideoFrames, p.AudioFrames, float64(p.PayloadBytes)/1e6, float64(p.WireBytes)/1e6, p.StreamKbps, p.ClipKbps, p.TotalMbps)
	if err != nil {
		return err
	}
	if v := s.Viewers; v != nil {
		_, err = fmt.Fprintf(w, "viewers: %d, %d playlists, %d segments, %.1f MB; errors: playlist %d, segment 404 %d, segment other %d; max playlist age %d ms, max first segment %d ms after publish\n",
			v.Requested, v.PlaylistFetches, v.Segments, float64(v.Bytes)/1e6, v.PlaylistErrors, v.SegmentMissing, v.SegmentErrors, v.MaxPlaylistAgeMS, v.MaxFirstSegmentMS)
		if err != nil {
			return err
		}
	}
	if _, err = fmt.Fprintf(w, "cpu: user %.2f s, sys %.2f s over %.1f s wall (%.2f cores)\n", s.CPU.UserS, s.CPU.SysS, s.WallS, s.CPU.Cores); err != nil {
		return err
	}
	for _, e := range s.Errors {
		if _, err = fmt.Fprintln(w, "error:", e); err != nil {
			return err
		}
	}
	verdict := "ok"
	if !s.OK {
		verdict = "FAILED"
	}
	_, err = fmt.Fprintln(w, verdict)
	return err
}
