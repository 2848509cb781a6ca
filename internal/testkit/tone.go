package testkit

import (
	"encoding/binary"
	"math"
	"testing"
)

// ToneLevels decodes the first audio stream of path with ffmpeg to mono
// 48 kHz samples and returns, for each frequency in hz, the level of that
// pure tone in the decoded signal relative to the signal's own power (a
// Goertzel filter over the whole signal): about 1 for the tone a sine track
// carries, near 0 for a frequency it does not. It also returns the seconds
// decoded. A test tells two tracks apart by their tone, not by their bytes.
func ToneLevels(tb testing.TB, path string, hz ...float64) (levels []float64, seconds float64) {
	tb.Helper()
	ffmpeg := NeedTool(tb, "ffmpeg")
	const rate = 48000
	out, _ := Run(tb, ffmpeg, "-v", "error", "-i", path, "-map", "0:a:0", "-ac", "1", "-ar", "48000", "-f", "f32le", "-")
	n := len(out) / 4
	x := make([]float64, n)
	var power float64
	for i := range x {
		x[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32([]byte(out[4*i:]))))
		power += x[i] * x[i]
	}
	for _, f := range hz {
		// Goertzel: the DFT bin at f; its squared magnitude, scaled, is the
		// tone's share of the signal's power (1 for a pure tone at f).
		w := 2 * math.Pi * f / rate
		c := 2 * math.Cos(w)
		var s1, s2 float64
		for _, v := range x {
			s1, s2 = v+c*s1-s2, s1
		}
		mag := s1*s1 + s2*s2 - c*s1*s2
		level := 0.0
		if power > 0 {
			level = 2 * mag / (float64(n) * power)
		}
		levels = append(levels, level)
	}
	return levels, float64(n) / rate
}
