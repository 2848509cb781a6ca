package main

import (
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestREADMEDocumentsEverySetting keeps the README's configuration table in step
// with the config struct: every setting has a row naming its YAML key,
// environment variable and flag, and showing its default.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
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
			t.Errorf("README has no configuration row for %s", tag)
			return
		}
		for _, want := range []string{"`" + envName(tag) + "`", "`-" + strings.ReplaceAll(tag, "_", "-") + "`"} {
			if !strings.Contains(row, want) {
				t.Errorf("README row for %s lacks %s", tag, want)
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
				t.Errorf("README row for %s does not show its default (empty or %s)", tag, shown)
			}
		} else if !strings.Contains(row, "`"+shown+"`") {
			t.Errorf("README row for %s does not show its default `%s`", tag, shown)
		}
	})
}
