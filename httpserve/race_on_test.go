//go:build race

package httpserve_test

// raceOn: the race detector slows 2000 connections past the blocking cap.
const raceOn = true
