// Package hugeheap advises the Go heap MADV_HUGEPAGE on Linux, mapping the heap
// the segment store will need ahead so that its first writes take huge pages
// (see the notes in hugeheap_linux.go). It depends on how the runtime lays out
// its heap (arenas growing upwards from one base), checked on the Go releases
// in checkedGo; on any other, and on other systems, Advise does nothing.
package hugeheap
