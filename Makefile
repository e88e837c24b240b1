# zen's build. Go 1.26 with the toolchain on the machine.
export GOTOOLCHAIN := local
GO      ?= go
BIN     ?= bin/zen
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test test-fast bench stress lint quickstart clean

build:
	$(GO) build -ldflags "-X github.com/zen-dev/zen/cmd/zen/cli.version=$(VERSION)" -o $(BIN) ./cmd/zen

# Everything: vet, unit tests and the end-to-end scripts, with the race
# detector. Four tests at a time: the scripts wait on git, steps and
# registries as much as on the CPU.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -parallel 4 -timeout 30m ./...

# The edit loop: no race detector, and -short, which leaves out the long
# scripts (each says so with [short] skip) and the Slurm, crash, secret and
# README tests. make test runs everything.
test-fast:
	$(GO) test -short -count=1 -parallel 4 -timeout 10m ./...

# The long reliability run: kills, races, registry faults, hostile input,
# forgeries, secret scans and fuzzing, with a summary table (scripts/stress).
stress: build
	scripts/stress

# Benchmarks, and side-by-side comparisons with cue and make (scripts/bench).
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count=1 ./...
	scripts/bench

# gofmt, go vet and staticcheck (pinned; built once into the module cache).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
lint:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...

# Scaffold the quickstart in a new git repository and run it on the local stack.
quickstart: build
	scripts/quickstart

clean:
	rm -rf bin .quickstart
