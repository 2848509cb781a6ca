# rtmpgate: `make run` serves, `make test` installs the test tools and passes the tests.
GO        ?= go
BIN       := bin/rtmpgate
FUZZTIME  ?= 5s
PKGS      := ./...

.PHONY: build run test test-deps vet fuzz bench clean

build:
	$(GO) build -trimpath -o $(BIN) ./cmd/rtmpgate

run: build
	./$(BIN) $(ARGS)

# Installs ffmpeg, GStreamer and nginx-rtmp (needs root on Debian 12).
test-deps:
	bash .ci/install-test-deps.sh

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@2026.2.2 $(PKGS)

test: test-deps vet
	$(GO) test -count=1 -timeout 15m $(PKGS)

# Runs every fuzz target for FUZZTIME beyond its committed seeds (go test runs the seeds already).
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
