# zen's build. Go 1.26 with the toolchain on the machine.
export GOTOOLCHAIN := local
GO      ?= go
BIN     ?= bin/zen
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)

.PHONY: build test test-fast bench stress lint quickstart clean ui-assets ui-assets-check

build:
	$(GO) build -ldflags "-X github.com/zen-dev/zen/cmd/zen/cli.version=$(VERSION)" -o $(BIN) ./cmd/zen

# Everything, as CI runs it: vet; every unit test with the race detector;
# the end-to-end scripts' short set (jobs, cancel, failures, locks, ...)
# with the race detector too; then every end-to-end script, crash, secret
# and README test against zen as users run it, without the detector, which
# makes each zen process three times slower. Four tests at a time: the
# scripts wait on git, steps and registries as much as on the CPU.
UNIT = $(shell $(GO) list ./... | grep -v /testscript$$)
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -parallel 4 -timeout 20m $(UNIT)
	$(GO) test -race -short -count=1 -parallel 4 -timeout 20m ./testscript
	$(GO) test -count=1 -parallel 4 -timeout 30m ./testscript

# The edit loop: no race detector, and -short, which leaves out the long
# scripts (each says so with [short] skip) and the crash, secret and
# README tests. make test runs everything.
test-fast:
	$(GO) test -short -count=1 -parallel 4 -timeout 10m ./...

# Benchmarks, BenchmarkPlanLarge's 1,000 pipelines too (and zen ui's
# pages on 10,000 runs, BenchmarkUI10000Runs), then side-by-side
# comparisons with cue, make and crane (scripts/bench).
bench: build
	ZEN_BENCH_LARGE=1 $(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m ./...
	scripts/bench

# zen ui's front-end libraries (graph layout, charts): the versions
# ui/web/package-lock.json pins, installed with npm ci, their dist files
# copied into ui/assets/vendor, which is committed and embedded in the
# binary. ui-assets-check builds them again into a temporary folder and
# fails when a committed file differs.
ui-assets:
	ui/web/build.sh ui/assets/vendor

ui-assets-check:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && ui/web/build.sh "$$tmp" && \
	diff -r "$$tmp" ui/assets/vendor && echo "ui/assets/vendor matches ui/web/package-lock.json"

# The long reliability run: kills, races, registry faults, hostile input,
# forgeries, secret scans and fuzzing, with a summary table (scripts/stress).
stress: build
	scripts/stress

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
