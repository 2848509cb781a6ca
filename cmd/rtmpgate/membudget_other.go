//go:build !linux

package main

// physicalMemory is unknown here: the store budget falls back to its fixed default.
func physicalMemory() int64 { return 0 }
