//go:build !race

package httpserve_test

const raceOn = false
