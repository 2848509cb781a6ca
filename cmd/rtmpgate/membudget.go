package main

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"path"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/rs/zerolog"
)

// The default store budget is storeShare of the process's memory less a
// baseline (the runtime, connections' buffers, the page): RSS runs at about 1.4x
// the store (segment buffers, the collector's headroom at gc_percent 12, huge
// pages: docs/BENCHMARKS.md), and the store may reach its ceiling, a quarter
// over the budget (packager), before the newest stream is ended; 1.4 × 1.25 × ½
// leaves an eighth of the memory spare.
const (
	storeShare       = 0.5
	baselineMaxBytes = 64 << 20
)

// defaultStoreBudget is the store budget for a process that may use limit bytes.
func defaultStoreBudget(limit int64) int64 {
	return int64(float64(limit-min(limit/4, baselineMaxBytes)) * storeShare)
}

// fallbackStoreBytes is the budget where no memory figure can be read.
const fallbackStoreBytes = 4 << 30

// memoryLimit is the memory the process may use: the smallest of the cgroup
// limit (v2 memory.max or v1 memory.limit_in_bytes, on the process's own cgroup
// and its ancestors), the machine's RAM and GOMEMLIMIT. source names the one
// that won; 0 when none could be read.
type memoryLimit struct {
	bytes  int64
	source string
}

// readMemoryLimit gathers the figures through readFile (os.ReadFile in the
// gateway, a map in tests) and ram (the machine's RAM, 0 when unknown).
func readMemoryLimit(readFile func(string) ([]byte, error), ram int64, goMemLimit int64) memoryLimit {
	var lim memoryLimit
	take := func(n int64, source string) {
		if n > 0 && (lim.bytes == 0 || n < lim.bytes) {
			lim = memoryLimit{n, source}
		}
	}
	take(ram, "ram")
	if n := cgroupLimit(readFile); n > 0 {
		take(n, "cgroup")
	}
	if goMemLimit > 0 && goMemLimit < math.MaxInt64 {
		take(goMemLimit, "GOMEMLIMIT")
	}
	return lim
}

// cgroupLimit is the tightest memory limit on the cgroup path of the process
// and its ancestors, under the usual mount points (/sys/fs/cgroup for v2,
// /sys/fs/cgroup/memory for v1); 0 when there is none.
func cgroupLimit(readFile func(string) ([]byte, error)) int64 {
	raw, err := readFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	var best int64
	take := func(dir, file string) {
		for d := dir; ; d = path.Dir(d) {
			if v, err := readFile(path.Join(d, file)); err == nil {
				if n, ok := parseCgroupBytes(v); ok && (best == 0 || n < best) {
					best = n
				}
			}
			if d == "/sys/fs/cgroup" || d == "/sys/fs/cgroup/memory" || d == "/" || d == "." {
				return
			}
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		// hierarchy-ID:controller-list:cgroup-path
		fields := strings.SplitN(sc.Text(), ":", 3)
		if len(fields) != 3 || !strings.HasPrefix(fields[2], "/") {
			continue
		}
		switch {
		case fields[0] == "0" && fields[1] == "":
			take(path.Join("/sys/fs/cgroup", fields[2]), "memory.max")
		case hasController(fields[1], "memory"):
			take(path.Join("/sys/fs/cgroup/memory", fields[2]), "memory.limit_in_bytes")
		}
	}
	return best
}

func hasController(list, name string) bool {
	for _, c := range strings.Split(list, ",") {
		if c == name {
			return true
		}
	}
	return false
}

// parseCgroupBytes reads a limit file: "max" (v2) and v1's page-rounded
// maximum mean no limit.
func parseCgroupBytes(b []byte) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil || n <= 0 || n >= 1<<60 {
		return 0, false
	}
	return n, true
}

// storeBudget is max_store_bytes: the configured value, or defaultStoreBudget of
// the memory the process may use. It logs the figure and where it came from.
func storeBudget(configured int64, log zerolog.Logger) int64 {
	if configured > 0 {
		log.Info().Int64("max_store_bytes", configured).Str("source", "config").Msg("store budget")
		return configured
	}
	lim := readMemoryLimit(os.ReadFile, physicalMemory(), debug.SetMemoryLimit(-1))
	if lim.bytes == 0 {
		log.Warn().Int64("max_store_bytes", fallbackStoreBytes).Msg("store budget: memory size unknown, using the fallback")
		return fallbackStoreBytes
	}
	budget := defaultStoreBudget(lim.bytes)
	log.Info().Int64("max_store_bytes", budget).Int64("memory_limit", lim.bytes).Str("source", lim.source).
		Msg("store budget")
	return budget
}
