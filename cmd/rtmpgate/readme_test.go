package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestREADMEDocumentsEverySetting keeps docs/CONFIG.md's configuration table in
// step with the config struct: every setting has a row naming its YAML key,
// environment variable and flag, and showing its default.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../docs/CONFIG.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(readme), "\n") {
		if strings.HasPrefix(line, "| `") {
			key, _, _ := strings.Cut(strings.TrimPrefix(line, "| `"), "`")
			rows[key] = line
		}
	}
	def := defaultConfig()
	forEachField(&def, func(tag, _ string, v reflect.Value) {
		row, ok := rows[tag]
		if !ok {
			t.Errorf("docs/CONFIG.md has no configuration row for %s", tag)
			return
		}
		for _, want := range []string{"`" + envName(tag) + "`", "`-" + strings.ReplaceAll(tag, "_", "-") + "`"} {
			if !strings.Contains(row, want) {
				t.Errorf("docs/CONFIG.md row for %s lacks %s", tag, want)
			}
		}
		var shown string
		switch x := v.Interface().(type) {
		case time.Duration:
			shown = x.String()
		case []string:
			shown = strings.Join(x, ",")
		default:
			shown = fmt.Sprint(x)
		}
		if v.IsZero() {
			if !strings.Contains(row, "empty") && !strings.Contains(row, "`"+shown+"`") {
				t.Errorf("docs/CONFIG.md row for %s does not show its default (empty or %s)", tag, shown)
			}
		} else if !strings.Contains(row, "`"+shown+"`") {
			t.Errorf("docs/CONFIG.md row for %s does not show its default `%s`", tag, shown)
		}
	})
}

// TestREADMESettingsAreReal keeps the README's short table of common settings
// true: each row names a real setting, its flag, and its default as the
// config has it.
func TestREADMESettingsAreReal(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	def := defaultConfig()
	forEachField(&def, func(tag, _ string, v reflect.Value) {
		shown := fmt.Sprint(v.Interface())
		switch x := v.Interface().(type) {
		case time.Duration:
			shown = x.String()
		case []string:
			shown = strings.Join(x, ",")
		}
		defaults[tag] = shown
	})
	rows := 0
	for _, line := range strings.Split(string(readme), "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		key := strings.Trim(strings.TrimSpace(cells[1]), "`")
		if strings.Contains(key, "/") || strings.Contains(key, " ") {
			continue // the layout table's package rows
		}
		rows++
		want, ok := defaults[key]
		if !ok {
			t.Errorf("README names %q, which is not a setting", key)
			continue
		}
		if flag := "`-" + strings.ReplaceAll(key, "_", "-") + "`"; strings.TrimSpace(cells[2]) != flag {
			t.Errorf("README row for %s: flag %s, want %s", key, strings.TrimSpace(cells[2]), flag)
		}
		if got := strings.TrimSpace(cells[3]); !(want == "" && got == "empty") && got != "`"+want+"`" {
			t.Errorf("README row for %s: default %s, want `%s`", key, got, want)
		}
	}
	if rows < 8 {
		t.Errorf("README lists %d settings, want the common ones", rows)
	}
}

// TestDocsLeaveDefaultsToCONFIG keeps the figure pages from drifting: what a
// default is, only docs/CONFIG.md says (tested above), so the other docs (dated
// logs in docs/history aside) must not state one.
func TestDocsLeaveDefaultsToCONFIG(t *testing.T) {
	stale := regexp.MustCompile(`(?i)\(now the default\)|default \d+ ?[GM]iB store|\d+ ?[GM]iB \x60?max_store_bytes\x60? default|now runs with GOGC=\d+`)
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil || len(docs) < 5 {
		t.Fatalf("docs: %v %v", docs, err)
	}
	for _, doc := range append(docs, "../../README.md") {
		raw, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(raw), "\n") {
			if m := stale.FindString(line); m != "" {
				t.Errorf("%s:%d states a default (%q): leave defaults to docs/CONFIG.md, or move a dated log to docs/history", doc, i+1, m)
			}
		}
	}
}
