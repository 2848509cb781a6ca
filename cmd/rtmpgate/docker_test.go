package main

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// The image is built where a Docker engine runs. Without one only this test is
// skipped, and it says so; the Dockerfile's shape is checked everywhere.
func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var from []string
	have := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		have[fields[0]] = true
		if fields[0] == "FROM" {
			from = append(from, fields[1])
		}
		if fields[0] == "USER" && (fields[1] == "root" || strings.HasPrefix(fields[1], "0")) {
			t.Errorf("image runs as root: %s", sc.Text())
		}
	}
	for _, need := range []string{"USER", "EXPOSE", "HEALTHCHECK", "ENTRYPOINT"} {
		if !have[need] {
			t.Errorf("Dockerfile has no %s", need)
		}
	}
	if len(from) < 2 || from[len(from)-1] != "scratch" {
		t.Errorf("want a multi-stage build ending on scratch, got FROM %v", from)
	}
	if !strings.Contains(string(raw), "EXPOSE 1935 8080") {
		t.Error("Dockerfile does not expose 1935 and 8080")
	}

	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker not installed: image build not tried")
	}
	if err := exec.Command("docker", "info").Run(); err != nil {
		t.Skip("no Docker engine running: image build not tried")
	}
	out, err := exec.Command("docker", "build", "-q", "-t", "rtmpgate:test", "../..").CombinedOutput()
	if err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	g := startGateway(t)
	if code := healthcheck([]string{"-http", g.httpAddr}, func(string) string { return "" }); code != 0 {
		t.Errorf("healthcheck against a running gateway exited %d", code)
	}
	if code := healthcheck([]string{"-http", "127.0.0.1:1"}, func(string) string { return "" }); code == 0 {
		t.Error("healthcheck against nothing exited 0")
	}
}
