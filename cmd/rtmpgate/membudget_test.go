package main

import (
	"io/fs"
	"math"
	"testing"
)

func TestReadMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	files := func(m map[string]string) func(string) ([]byte, error) {
		return func(name string) ([]byte, error) {
			if v, ok := m[name]; ok {
				return []byte(v), nil
			}
			return nil, fs.ErrNotExist
		}
	}
	for _, tc := range []struct {
		name       string
		files      map[string]string
		ram        int64
		goMemLimit int64
		want       memoryLimit
	}{
		{"ram only", nil, 8 * gib, math.MaxInt64, memoryLimit{8 * gib, "ram"}},
		{"v2 container, limit at the root", map[string]string{
			"/proc/self/cgroup":         "0::/\n",
			"/sys/fs/cgroup/memory.max": "1073741824\n",
		}, 8 * gib, math.MaxInt64, memoryLimit{gib, "cgroup"}},
		{"v2 unlimited", map[string]string{
			"/proc/self/cgroup": "0::/system.slice/rtmpgate.service\n",
			"/sys/fs/cgroup/system.slice/rtmpgate.service/memory.max": "max\n",
		}, 8 * gib, math.MaxInt64, memoryLimit{8 * gib, "ram"}},
		{"v2 limit on an ancestor", map[string]string{
			"/proc/self/cgroup":             "0::/a/b\n",
			"/sys/fs/cgroup/a/b/memory.max": "max\n",
			"/sys/fs/cgroup/a/memory.max":   "536870912\n",
		}, 8 * gib, math.MaxInt64, memoryLimit{gib / 2, "cgroup"}},
		{"v1 hybrid", map[string]string{
			"/proc/self/cgroup": "4:memory:/process_api/x\n1:cpu:/\n0::/\n",
			"/sys/fs/cgroup/memory/process_api/x/memory.limit_in_bytes": "2147483648\n",
			"/sys/fs/cgroup/memory/memory.limit_in_bytes":               "9223372036854771712\n",
		}, 8 * gib, math.MaxInt64, memoryLimit{2 * gib, "cgroup"}},
		{"v1 combined controllers", map[string]string{
			"/proc/self/cgroup":                             "3:cpu,memory:/x\n",
			"/sys/fs/cgroup/memory/x/memory.limit_in_bytes": "3221225472\n",
		}, 8 * gib, math.MaxInt64, memoryLimit{3 * gib, "cgroup"}},
		{"GOMEMLIMIT tighter", map[string]string{
			"/proc/self/cgroup":         "0::/\n",
			"/sys/fs/cgroup/memory.max": "2147483648\n",
		}, 8 * gib, gib, memoryLimit{gib, "GOMEMLIMIT"}},
		{"garbage and nothing known", map[string]string{
			"/proc/self/cgroup":         "nonsense\n0::relative\n",
			"/sys/fs/cgroup/memory.max": "-1\n",
		}, 0, math.MaxInt64, memoryLimit{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := readMemoryLimit(files(tc.files), tc.ram, tc.goMemLimit); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDefaultStoreBudget(t *testing.T) {
	for _, tc := range []struct{ limit, want int64 }{
		{256 << 20, 96 << 20},
		{1 << 30, 480 << 20},
		{24 << 30, 12<<30 - 32<<20},
		{128 << 20, 48 << 20},
	} {
		if got := defaultStoreBudget(tc.limit); got != tc.want {
			t.Errorf("limit %d: budget %d, want %d", tc.limit, got, tc.want)
		}
	}
}
