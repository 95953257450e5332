# Stranger — make run: build what is needed and serve on http://localhost:8080
#            make test: the whole test suite (what CI runs)
SHELL := /bin/bash
GO ?= go
BIN := bin/stranger
WEB_DIST := internal/web/dist/index.html
WEB_SRC := $(shell find web/src web/plugins web/index.html web/vite.config.ts web/tsconfig.json web/package.json -type f 2>/dev/null)
GO_SRC := $(shell find cmd internal -name '*.go' -not -name '*_test.go' 2>/dev/null) go.mod go.sum
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 10s
RUN_FLAGS ?=

.PHONY: run build web test test-unit test-web test-go test-fuzz test-e2e deps lint bench load clean

run: $(BIN)
	./$(BIN) $(RUN_FLAGS)

build: $(BIN)

$(BIN): $(GO_SRC) $(WEB_DIST)
	$(GO) build -o $@ ./cmd/stranger

web: $(WEB_DIST)

web/node_modules/.package-lock.json: web/package-lock.json
	cd web && npm ci --no-audit --no-fund
	@touch $@

$(WEB_DIST): web/node_modules/.package-lock.json $(WEB_SRC)
	cd web && npm run build

deps:
	scripts/deps.sh

## test: everything — web unit tests, Go tests with the race detector (unit,
## protocol conformance, TURN with coturn, Redis), a short fuzz run, and the
## browser end-to-end tests in headless Chromium.
test: deps test-web test-go test-fuzz test-e2e

## test-unit: the fast subset for development (no browser, no fuzzing).
test-unit: web test-go

## test-web: ESLint (no warnings allowed), then the Vitest unit tests.
test-web: web/node_modules/.package-lock.json
	cd web && npm run lint
	cd web && npm test

test-go: $(WEB_DIST)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

test-fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./internal/protocol

# Browser tests run inside a network namespace that has only loopback, so no
# packet leaves the machine (see docs/testing.md). The test binary is built
# first: nothing can be downloaded inside the namespace.
test-e2e: $(WEB_DIST)
	@if [ -d test/e2e ]; then \
	  $(GO) test -c -race -tags e2e -o bin/e2e.test ./test/e2e && \
	  unshare -n sh -c 'ip link set lo up; cd test/e2e && exec ../../bin/e2e.test -test.v -test.count=1 -test.timeout 20m'; \
	else echo "no browser tests yet"; fi

lint: web/node_modules/.package-lock.json
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd web && npm run lint

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/...

clean:
	rm -rf bin internal/web/dist/assets internal/web/dist/index.html
