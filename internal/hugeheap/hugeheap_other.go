//go:build !linux

package hugeheap

import "github.com/rs/zerolog"

// Advise has nothing to do where there is no madvise(MADV_HUGEPAGE).
func Advise(bool, int64, zerolog.Logger) (stop func()) { return func() {} }
