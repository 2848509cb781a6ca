package hugeheap

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"
)

// Why the Go heap asks for huge pages: the heap is almost all segment bytes,
// written once into buffers that are new every segment, so the gateway's
// memory is touched at the pace of its ingest (about 280 MB/s for 1000
// streams, TS and CMAF). With 4 KiB pages each of those pages is a page fault
// the first time it is written, after the runtime gives freed pages back, and
// while the store fills. On virtual machines a fault costs far more than the
// copy it interrupts (on the 2-core bench VM BenchmarkFirstWrite measures
// ~17 µs per 4 KiB page written first, ~1 µs per 4 KiB in huge pages). The
// runtime maps its heap without MADV_HUGEPAGE, and a system whose
// THP mode is "madvise" (Debian's default) then never gives it huge pages.
//
// Advice must come before a block's first write, or the block stays in small
// pages until khugepaged gets to it (slowly). Collapsing such blocks ourselves
// with MADV_COLLAPSE, a copy under the address-space lock, was tried and the
// connections stalled (with a then-quadratic scan; the two were not told
// apart). The runtime
// writes a mapping the moment it makes it, so advising mappings as they appear
// is always late. Instead the heap the store will need is mapped once at
// start, by one allocation that is never written and is freed at once; it is
// advised while still untouched, and the runtime fills it (lowest addresses
// first) as the store grows. The mapping costs address space, not memory.
// Growth past it is still advised as it appears, late but better than never.
// With THP "always" or "never" there is nothing to do.

// hugeHeapPoll is how often the runtime's mapped memory is checked for growth
// past the reserve.
const hugeHeapPoll = 100 * time.Millisecond

// heapSpan bounds the addresses taken for the Go heap: the runtime grows its
// heap upwards from one (randomized) base in 64 MiB arenas; nothing else the
// process maps lands within a TiB above it.
const (
	heapArenaBytes = 64 << 20
	heapSpan       = 1 << 40
)

// thpMode reads the system's transparent huge page mode: always, madvise or
// never ("" when the kernel has none).
func thpMode() string {
	raw, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return ""
	}
	if i := bytes.IndexByte(raw, '['); i >= 0 {
		if j := bytes.IndexByte(raw[i:], ']'); j > 0 {
			return string(raw[i+1 : i+j])
		}
	}
	return ""
}

// hugeHeap advises the Go heap's mappings MADV_HUGEPAGE as the runtime maps them.
type hugeHeap struct {
	lo, hi  uintptr      // where the heap's mappings are looked for
	advised [][2]uintptr // mappings already advised, as read from /proc/self/maps
	sample  []metrics.Sample
	mapped  uint64 // the runtime's mapped bytes at the last scan
}

// heapProbe is one allocation the compiler cannot keep on the stack; its address
// tells where the runtime put its heap.
var heapProbe []byte

func newHugeHeap() *hugeHeap {
	heapProbe = make([]byte, 64<<10)
	base := uintptr(unsafe.Pointer(unsafe.SliceData(heapProbe))) &^ (heapArenaBytes - 1)
	return &hugeHeap{
		lo: base, hi: base + heapSpan,
		sample: []metrics.Sample{{Name: "/memory/classes/total:bytes"}},
	}
}

// grown reports whether the runtime has mapped more memory since the last scan.
func (h *hugeHeap) grown() bool {
	metrics.Read(h.sample)
	if h.sample[0].Value.Kind() != metrics.KindUint64 {
		return false
	}
	v := h.sample[0].Value.Uint64()
	if v <= h.mapped {
		return false
	}
	h.mapped = v
	return true
}

// scan advises every writable private anonymous mapping in the heap's range
// that is not advised yet, and returns how many bytes it advised.
func (h *hugeHeap) scan() (int, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	before := h.advised // sorted, as is the listing: walked once alongside it
	var now [][2]uintptr
	total := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lo, hi, ok := heapMapping(sc.Text())
		if !ok || hi <= h.lo || lo >= h.hi {
			continue
		}
		// The kernel merges the heap's first mapping with runtime metadata
		// the runtime happens to map right below it (same flags, adjacent):
		// only the part in the heap's range is the heap's.
		lo, hi = max(lo, h.lo), min(hi, h.hi)
		var fresh [][2]uintptr
		fresh, before = unadvised(before, lo, hi)
		if len(fresh) == 0 {
			now = append(now, [2]uintptr{lo, hi})
			continue
		}
		// A raw call: the range is addresses the kernel just listed, not a
		// slice of ours. Should the runtime remap it meanwhile (it never unmaps
		// its heap), the advice is a hint that keeps whatever is there intact.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, lo, hi-lo, unix.MADV_HUGEPAGE); errno != 0 {
			continue
		}
		now = append(now, [2]uintptr{lo, hi})
		for _, r := range fresh {
			total += int(r[1] - r[0])
		}
	}
	if err := sc.Err(); err != nil {
		return total, err
	}
	h.advised = now
	return total, nil
}

// unadvised returns the parts of [lo, hi) outside the advised mappings (sorted,
// as /proc lists them; a mapping the kernel merged from advised neighbours has
// none), and the advised mappings that may still meet a later, higher range.
func unadvised(advised [][2]uintptr, lo, hi uintptr) (fresh, rest [][2]uintptr) {
	for len(advised) > 0 && advised[0][1] <= lo {
		advised = advised[1:]
	}
	for _, r := range advised {
		if r[0] >= hi {
			break
		}
		if r[0] > lo {
			fresh = append(fresh, [2]uintptr{lo, r[0]})
		}
		lo = max(lo, r[1])
		if lo >= hi {
			return fresh, advised
		}
	}
	return append(fresh, [2]uintptr{lo, hi}), advised
}

// heapMapping parses one /proc/self/maps line and reports whether it is a
// writable private anonymous mapping, with its bounds. Since Go 1.25 the
// runtime names its mappings ("[anon: Go: heap]") where the kernel has
// CONFIG_ANON_VMA_NAME; elsewhere they have no name at all.
func heapMapping(line string) (lo, hi uintptr, ok bool) {
	fields := strings.Fields(line)
	// address perms offset dev inode [path]
	if len(fields) < 5 || fields[1] != "rw-p" || fields[4] != "0" {
		return 0, 0, false
	}
	if len(fields) > 5 && !strings.HasPrefix(fields[5], "[anon:") {
		return 0, 0, false
	}
	from, to, found := strings.Cut(fields[0], "-")
	if !found {
		return 0, 0, false
	}
	a, err1 := strconv.ParseUint(from, 16, 64)
	b, err2 := strconv.ParseUint(to, 16, 64)
	if err1 != nil || err2 != nil || b <= a {
		return 0, 0, false
	}
	return uintptr(a), uintptr(b), true
}

// mappedAhead is set once the heap has been mapped ahead in this process.
var mappedAhead atomic.Bool

// checkedGo lists the Go releases whose heap layout this package was checked
// on (heapSpan, heapArenaBytes, anonymous rw-p arena mappings).
var checkedGo = []string{"go1.26"}

// goChecked reports whether version (runtime.Version()) is a checked release.
func goChecked(version string) bool {
	for _, v := range checkedGo {
		if version == v || strings.HasPrefix(version, v+".") {
			return true
		}
	}
	return false
}

// Advise maps reserve bytes of heap (capped by the machine's memory) and
// advises them, then keeps advising the heap as it grows, when on is set, the
// system's THP mode needs it and the Go release is one it was checked on; the
// returned function stops it.
func Advise(on bool, reserve int64, log zerolog.Logger) (stop func()) {
	mode := thpMode()
	if !on || mode != "madvise" {
		log.Info().Bool("huge_pages", on).Str("thp", mode).Msg("heap huge pages: not advised")
		return func() {}
	}
	if !goChecked(runtime.Version()) {
		log.Warn().Str("go", runtime.Version()).Strs("checked", checkedGo).Msg("heap huge pages: not advised on a Go release this was not checked on")
		return func() {}
	}
	began := time.Now()
	h := newHugeHeap()
	reserve = reserveBytes(reserve)
	var ahead []byte
	// Only a fresh process maps ahead: a later call (a test running the gateway
	// again in one process) would get heap the first one freed, which the
	// runtime zeroes, writing every page of it.
	if reserve >= heapArenaBytes && mappedAhead.CompareAndSwap(false, true) {
		// Fresh memory from one allocation is neither zeroed nor written: it
		// takes address space and no pages.
		ahead = make([]byte, reserve)
	}
	h.grown()
	advised, err := h.scan() // advised while nothing is in it
	runtime.KeepAlive(ahead)
	ahead = nil
	runtime.GC() // free it now, not at the first collection the store causes
	if err != nil {
		log.Warn().Err(err).Msg("heap huge pages: /proc/self/maps unreadable, not advised")
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		h.run(done, log)
	}()
	log.Info().Str("thp", mode).Str("heap", fmt.Sprintf("%#x", h.lo)).Int64("reserve", reserve).Int("advised", advised).Dur("took", time.Since(began)).Msg("heap huge pages: advising the Go heap")
	var once sync.Once
	return func() {
		once.Do(func() { close(done) })
		wg.Wait()
	}
}

// reserveBytes bounds the heap mapped ahead: never more than half the machine's
// memory (the kernel's default overcommit check refuses a mapping larger than
// memory plus swap, and the runtime cannot survive a refused heap mapping), and
// nothing when overcommit is strict, where a mapping is charged in full.
func reserveBytes(want int64) int64 {
	if raw, err := os.ReadFile("/proc/sys/vm/overcommit_memory"); err != nil || strings.TrimSpace(string(raw)) == "2" {
		return 0
	}
	var info unix.Sysinfo_t
	if err := unix.Sysinfo(&info); err != nil {
		return 0
	}
	return max(0, min(want, int64(info.Totalram)*int64(info.Unit)/2))
}

func (h *hugeHeap) run(done <-chan struct{}, log zerolog.Logger) {
	tick := time.NewTicker(hugeHeapPoll)
	defer tick.Stop()
	for {
		if h.grown() {
			if _, err := h.scan(); err != nil {
				// /proc unreadable (a sandbox): nothing to advise by, ever.
				log.Warn().Err(err).Msg("heap huge pages: stopped")
				return
			}
		}
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}
