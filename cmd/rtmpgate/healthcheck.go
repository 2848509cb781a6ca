package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"time"
)

// healthcheck is `rtmpgate healthcheck [flags]`: it asks the gateway configured by the
// same flags, environment and file for /healthz and exits 0 when it answers 200. It
// lets a container image without a shell or curl carry its own HEALTHCHECK.
func healthcheck(args []string, getenv func(string) string) int {
	cfg, err := loadConfig(args, getenv)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpgate healthcheck:", err)
		return 2
	}
	host, port, err := net.SplitHostPort(cfg.HTTP)
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpgate healthcheck:", err)
		return 2
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	client := &http.Client{Timeout: 3 * time.Second}
	res, err := client.Get("http://" + net.JoinHostPort(host, port) + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "rtmpgate healthcheck:", err)
		return 1
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "rtmpgate healthcheck: status", res.Status)
		return 1
	}
	return 0
}
