package hugeheap

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestHeapMappingLines(t *testing.T) {
	for _, c := range []struct {
		line   string
		lo, hi uintptr
		ok     bool
	}{
		{"c000000000-c004000000 rw-p 00000000 00:00 0 ", 0xc000000000, 0xc004000000, true},
		{"23f0b6c00000-23f0b7400000 rw-p 00000000 00:00 0", 0x23f0b6c00000, 0x23f0b7400000, true},
		{"c004000000-c008000000 ---p 00000000 00:00 0 ", 0, 0, false}, // reserved, not mapped
		{"c000000000-c004000000 rw-p 00000000 00:00 0                          [anon: Go: heap]", 0xc000000000, 0xc004000000, true},
		{"c004000000-c008000000 ---p 00000000 00:00 0                          [anon: Go: heap reservation]", 0, 0, false},
		{"7f00000000-7f00001000 rw-p 00000000 00:00 0   [stack]", 0, 0, false},
		{"7f00000000-7f00001000 rw-p 00000000 00:00 0   [heap]", 0, 0, false},              // brk, not Go's
		{"7f00000000-7f00001000 rw-p 00001000 08:01 1234 /usr/lib/libc.so.6", 0, 0, false}, // a file
		{"7f00000000-7f00001000 rw-s 00000000 00:01 9 /dev/zero (deleted)", 0, 0, false},
		{"zz-7f00001000 rw-p 00000000 00:00 0", 0, 0, false},
		{"7f00001000-7f00000000 rw-p 00000000 00:00 0", 0, 0, false},
		{"", 0, 0, false},
	} {
		lo, hi, ok := heapMapping(c.line)
		if lo != c.lo || hi != c.hi || ok != c.ok {
			t.Errorf("heapMapping(%q) = %#x, %#x, %v; want %#x, %#x, %v", c.line, lo, hi, ok, c.lo, c.hi, c.ok)
		}
	}
}

// mappingOf reads /proc/self/smaps for the mapping holding addr: its VmFlags and
// AnonHugePages (kB).
func mappingOf(t *testing.T, addr uintptr) (flags string, hugeKB int) {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if from, rest, ok := strings.Cut(line, "-"); ok && !strings.Contains(from, " ") && !strings.HasSuffix(from, ":") {
			to, _, _ := strings.Cut(rest, " ")
			a, err1 := strconv.ParseUint(from, 16, 64)
			b, err2 := strconv.ParseUint(to, 16, 64)
			in = err1 == nil && err2 == nil && uintptr(a) <= addr && addr < uintptr(b)
			continue
		}
		if !in {
			continue
		}
		if v, ok := strings.CutPrefix(line, "AnonHugePages:"); ok {
			hugeKB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
		if v, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			return v, hugeKB
		}
	}
	t.Fatalf("no mapping holds %#x", addr)
	return "", 0
}

// A heap mapping the runtime makes after the adviser's last scan is advised by
// the next one, and (unless the system forbids huge pages) writing it then
// takes huge pages. It runs in a process of its own: in this package's test
// process earlier tests leave freed heap behind, which a new allocation reuses
// already written (in small pages) instead of mapping fresh memory.
func TestHugeHeapAdvisesTheGrowingHeap(t *testing.T) {
	if os.Getenv("RTMPGATE_HUGEHEAP_CHILD") != "1" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHugeHeapAdvisesTheGrowingHeap$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), "RTMPGATE_HUGEHEAP_CHILD=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestHugeHeapAdvisesTheGrowingHeap") {
			t.Fatalf("in a fresh process: %v\n%s", err, out)
		}
		return
	}
	if thpMode() == "" {
		t.Skip("this kernel has no transparent huge pages: MADV_HUGEPAGE is refused, and Advise does nothing")
	}
	h := newHugeHeap()
	h.grown()
	if _, err := h.scan(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256<<20) // more than the heap has spare: the runtime maps more
	// Its start may share a mapping advised already; its middle is new.
	addr := uintptr(unsafe.Pointer(unsafe.SliceData(buf))) + uintptr(len(buf)/2)
	if addr < h.lo || addr >= h.hi {
		t.Fatalf("a heap allocation at %#x is outside the range taken for the heap [%#x, %#x)", addr, h.lo, h.hi)
	}
	if flags, _ := mappingOf(t, addr); strings.Contains(flags, " hg") {
		t.Fatalf("the new mapping at %#x is advised before the adviser ran: %q", addr, flags)
	}
	if !h.grown() {
		t.Fatal("the runtime's mapped bytes did not grow with a 256 MiB allocation")
	}
	// /proc/self/maps is read in pieces, not as one snapshot: a mapping the
	// runtime changes between two reads (its other threads run) can be
	// missed by one scan and is then found by the next, as run's are.
	n := 0
	for try := 0; try < 5 && n < len(buf)/2; try++ {
		got, err := h.scan()
		if err != nil {
			t.Fatal(err)
		}
		n += got
		if n < len(buf)/2 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if n < len(buf)/2 {
		maps, _ := os.ReadFile("/proc/self/maps")
		flags, _ := mappingOf(t, addr)
		t.Fatalf("advised %d bytes in five scans, want at least the %d just mapped; the mapping at %#x has VmFlags %q; heap range [%#x, %#x); /proc/self/maps:\n%s",
			n, len(buf)/2, addr, flags, h.lo, h.hi, maps)
	}
	flags, _ := mappingOf(t, addr)
	if !strings.Contains(flags, " hg") {
		t.Fatalf("VmFlags of the new heap mapping %q: no hg (MADV_HUGEPAGE)", flags)
	}
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	if mode := thpMode(); mode != "never" && mode != "" {
		if _, huge := mappingOf(t, addr); huge < 64<<10 {
			t.Errorf("THP %s: %d kB of the 256 MiB written are in huge pages, want most", mode, huge)
		}
	}
	runtime.KeepAlive(buf)
	if n, _ := h.scan(); n != 0 {
		t.Errorf("a second scan with nothing new advised %d bytes again", n)
	}
}

func TestHugeHeapStops(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	stop := Advise(true, 0, zerolog.Nop())
	stop()
	stop() // twice is harmless
	Advise(false, 0, zerolog.Nop())()
}

func TestGoChecked(t *testing.T) {
	for v, want := range map[string]bool{
		"go1.26": true, "go1.26.8": true, "go1.27": false, "go1.2": false, "go1.260": false, "devel +abc": false,
	} {
		if goChecked(v) != want {
			t.Errorf("goChecked(%q) = %v", v, !want)
		}
	}
	if !goChecked(runtime.Version()) {
		t.Errorf("%s is not in checkedGo: check the heap layout on it (TestHugeHeapAdvisesTheGrowingHeap) and add it", runtime.Version())
	}
}

func TestUnadvisedParts(t *testing.T) {
	advised := [][2]uintptr{{10, 20}, {20, 30}, {40, 50}}
	for _, c := range []struct {
		lo, hi uintptr
		want   [][2]uintptr
	}{
		{10, 30, nil}, // merged from advised neighbours
		{12, 18, nil},
		{5, 25, [][2]uintptr{{5, 10}}},
		{10, 50, [][2]uintptr{{30, 40}}},
		{0, 60, [][2]uintptr{{0, 10}, {30, 40}, {50, 60}}},
		{60, 70, [][2]uintptr{{60, 70}}},
		{30, 40, [][2]uintptr{{30, 40}}},
	} {
		got, _ := unadvised(advised, c.lo, c.hi)
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("unadvised(%d, %d) = %v, want %v", c.lo, c.hi, got, c.want)
		}
	}
}

// What a page fault costs here, the figure behind huge_pages: each iteration
// maps 64 MiB, writes one byte in every 4 KiB page and unmaps it, in small
// pages or advised MADV_HUGEPAGE. Reported per 4 KiB of memory.
//
//	go test ./internal/hugeheap -run XXX -bench FirstWrite -benchtime 20x
func BenchmarkFirstWrite(b *testing.B) {
	const size = 64 << 20
	for _, c := range []struct {
		name string
		huge bool
	}{{"4KiB", false}, {"huge", true}} {
		b.Run(c.name, func(b *testing.B) {
			if c.huge && thpMode() == "never" {
				b.Skip("THP never: no huge pages to measure")
			}
			for b.Loop() {
				mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
				if err != nil {
					b.Fatal(err)
				}
				if c.huge {
					if err := unix.Madvise(mem, unix.MADV_HUGEPAGE); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < size; i += 4096 {
					mem[i] = 1
				}
				if err := unix.Munmap(mem); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size/4096), "ns/4KiB")
		})
	}
}
