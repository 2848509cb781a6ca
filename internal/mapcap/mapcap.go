// Package mapcap bounds caches kept in maps whose entries of evicted streams
// are never asked for again, so which entries go matters less than that the
// map stays bounded without a per-entry list.
package mapcap

// DropQuarter deletes a quarter of m's entries, whichever map iteration yields.
func DropQuarter[K comparable, V any](m map[K]V) {
	n := len(m) / 4
	for k := range m {
		if n <= 0 {
			break
		}
		delete(m, k)
		n--
	}
}
