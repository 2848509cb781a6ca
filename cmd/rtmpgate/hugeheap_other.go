//go:build !linux

package main

import "github.com/rs/zerolog"

// adviseHugeHeap has nothing to do where there is no madvise(MADV_HUGEPAGE).
func adviseHugeHeap(bool, int64, zerolog.Logger) (stop func()) { return func() {} }
