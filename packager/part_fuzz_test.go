package packager

import (
	"strconv"
	"testing"
)

// FuzzPartName feeds request paths to parsePartName, which reads part and
// segment names from URLs: it must not panic, and whatever it accepts must be
// the name partName (or the segment name) gives back for what it parsed.
func FuzzPartName(f *testing.F) {
	f.Add("dfdrqei87dvk-12.3.m4s", "dfdrqei87dvk")
	f.Add("dfdrqei87dvk-12.m4s", "dfdrqei87dvk")
	f.Add("e-.m4s", "e")
	f.Add("e-1..m4s", "e")
	f.Add("e-99999999999999999999.0.m4s", "e")
	f.Add("e-+1.-0.m4s", "e")
	f.Fuzz(func(t *testing.T, name, epoch string) {
		msn, n, ok := parsePartName(name, epoch)
		if !ok {
			return
		}
		want := epoch + "-" + strconv.FormatUint(msn, 10) + ".m4s"
		if n >= 0 {
			want = partName(epoch, msn, n)
		}
		if name != want {
			t.Fatalf("%q (epoch %q) parsed as msn %d part %d, which is named %q", name, epoch, msn, n, want)
		}
	})
}
