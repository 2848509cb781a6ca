# rtmpgate: `make run` serves, `make test` installs the test tools and passes the tests.
GO        ?= go
BIN       := bin/rtmpgate
FUZZTIME  ?= 5s
PKGS      := ./...

.PHONY: build web run test test-deps vet check fuzz bench docker clean

# The player libraries come from npm at the versions pinned in web/package-lock.json
# and are embedded into the binary; they are fetched, never committed.
web:
	@command -v npm >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm; }
	npm ci --prefix web --no-audit --no-fund --loglevel=error
	cp web/node_modules/hls.js/dist/hls.min.js web/vendor/hls.min.js
	cp web/node_modules/dashjs/dist/modern/umd/dash.all.min.js web/vendor/dash.all.min.js
	cp web/node_modules/shaka-player/dist/shaka-player.compiled.js web/vendor/shaka-player.compiled.js

build: web
	$(GO) build -trimpath -o $(BIN) ./cmd/rtmpgate

run: build
	./$(BIN) $(ARGS)

# Installs ffmpeg, GStreamer and nginx-rtmp (needs root on Debian 12).
test-deps:
	bash .ci/install-test-deps.sh

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }
	$(GO) vet $(PKGS)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 $(PKGS)

# The quick gate before a commit: gofmt, vet, staticcheck and the short tests,
# which skip everything that runs ffmpeg, a browser or nginx (CI=true runs them).
# It installs nothing; staticcheck comes from the module cache once fetched.
check: vet
	$(GO) test -short $(PKGS)

test: test-deps web vet
	$(GO) test -count=1 -timeout 20m $(PKGS)
	RTMPGATE_INGEST_READ_INTERVAL=5ms $(GO) test -count=1 -timeout 5m ./ingest/

# Runs every fuzz target for FUZZTIME beyond its committed seeds (go test runs the seeds already).
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline exceeded"
# when -fuzztime expires while a worker is mid-input (golang/go#75804, fixed in Go 1.27):
# no input is written and nothing crashed. That exact signature is run once more; any
# other failure, or a written failing input, fails at once.
fuzz:
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    for try in 1 2; do \
	      echo "fuzz $$pkg $$t"; \
	      if $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg >/tmp/rtmpgate-fuzz.out 2>&1; then \
	        tail -3 /tmp/rtmpgate-fuzz.out; break; fi; \
	      cat /tmp/rtmpgate-fuzz.out; \
	      if [ $$try = 1 ] && grep -q 'context deadline exceeded' /tmp/rtmpgate-fuzz.out && ! grep -q 'Failing input written' /tmp/rtmpgate-fuzz.out; then \
	        echo "fuzz $$t: fuzztime deadline race (golang/go#75804), no failing input: running it again"; continue; fi; \
	      exit 1; \
	    done; \
	  done; \
	done

docker:
	docker build -t rtmpgate:latest .

bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin web/node_modules web/vendor/*.js

# Load tools (not part of `make test`). `make load ARGS='-n 50 -clip c.flv ...'`
# runs cmd/rtmpload; `make soak` runs 200 publishers and 200 viewers against a fresh
# gateway for SOAK_DURATION and samples its goroutines, RSS and store bytes.
SOAK_DURATION ?= 10m
.PHONY: load soak
load:
	$(GO) run ./cmd/rtmpload $(ARGS)

soak:
	SOAK_DURATION=$(SOAK_DURATION) bash cmd/rtmpload/soak.sh

# rtmpgate against nginx-rtmp in one run (not part of `make test`): N publishers per
# server (rtmpload, or PUBLISHER=ffmpeg), CPU and RSS over the streams' first minute
# and in steady state (PHASE), playlist checks and wrk; CODEC=hevc for rtmpgate
# alone; see .ci/bench-e2e.sh.
.PHONY: bench-e2e
bench-e2e:
	bash .ci/bench-e2e.sh

# The ladder benchmark (issue 17; not part of `make test`): one Enhanced RTMP
# multitrack ladder (1080p/720p/360p, ~6 Mbit/s, made by testdata/make-ladder.sh)
# against the same renditions as three single streams, two gateways in one run
# (MODE=compare), or N ladders on one gateway (MODE=scale N=100); see
# .ci/bench-ladder.sh. The Go side: `make bench-ladder-go`.
.PHONY: bench-ladder bench-ladder-go
bench-ladder:
	bash .ci/bench-ladder.sh

bench-ladder-go:
	$(GO) test -run '^$$' -bench 'ConnFramesLadder/.*/(multitrack|singles)' -benchtime 200000x -count 3 -benchmem ./ingest/
	$(GO) test -run '^$$' -bench 'ConnFramesLadder/.*/interleaved' -benchtime 400000x -count 5 ./ingest/
