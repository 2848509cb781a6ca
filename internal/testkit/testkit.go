// Package testkit holds the helpers the test packages share, each written once:
// the "tool present, or fail under CI=true" rule, a bounded tool runner with an
// ffprobe JSON wrapper, an FLV tag reader, an MP4 box splitter and the runner of
// testdata/make-clips.sh. It is imported by _test.go files only.
package testkit

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// CI reports whether the tests run under CI=true, where every tool and fixture
// is part of the contract and a missing one is a failure, never a skip.
func CI() bool { return os.Getenv("CI") == "true" }

// Missing skips the test for want of what, or fails it under CI=true, where a
// passing run must not have skipped anything.
func Missing(tb testing.TB, what string, err error) {
	tb.Helper()
	if CI() {
		tb.Fatalf("%s is required under CI=true (make test-deps installs the tools): %v", what, err)
	}
	tb.Skipf("%s not available (make test-deps installs the tools): %v", what, err)
}

// NeedTools skips a test that runs external tools under -short, and one whose
// tools are missing; under CI=true it runs it, and a missing tool fails it.
func NeedTools(tb testing.TB, tools ...string) {
	tb.Helper()
	for _, tool := range tools {
		NeedTool(tb, tool)
	}
}

// NeedTool is NeedTools for one tool, returning its path.
func NeedTool(tb testing.TB, name string) string {
	tb.Helper()
	if testing.Short() && !CI() {
		tb.Skipf("-short skips tests that run %s (CI=true runs them)", name)
	}
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(tb, name, err)
	}
	return p
}

// ModuleRoot returns the directory holding go.mod, from the test's directory up.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
}
