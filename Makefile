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
# make dist stamps these into the binary (stranger --version).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
DIST_LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
IMAGE ?= localhost/stranger:$(VERSION)
HOST_ARCH := $(shell $(GO) env GOARCH)

.PHONY: run build web test test-unit test-web test-go test-conformance-pow test-fuzz test-e2e test-tls test-deploy test-netsim dist image deps lint bench load clean

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

## dist: static binaries (no cgo) for linux/amd64 and linux/arm64 with the
## web app embedded, in dist/.
dist: dist/stranger-linux-amd64 dist/stranger-linux-arm64

dist/stranger-linux-%: $(GO_SRC) $(WEB_DIST)
	CGO_ENABLED=0 GOOS=linux GOARCH=$* $(GO) build -trimpath -ldflags "$(DIST_LDFLAGS)" -o $@ ./cmd/stranger

## image: the container image (Containerfile) from the dist binary and local
## files only (nothing is pulled): CA certificates from this machine, a
## non-root user, /data as a volume.
image: dist/stranger-linux-$(HOST_ARCH)
	scripts/image-rootfs.sh dist/rootfs
	podman build --quiet --layers=false --build-arg TARGETARCH=$(HOST_ARCH) -f Containerfile -t $(IMAGE) .

## test: everything — web unit tests, Go tests with the race detector (unit,
## protocol conformance, TURN with coturn, Redis), a short fuzz run, and the
## browser end-to-end tests in headless Chromium.
test: deps test-web test-go test-fuzz test-e2e test-tls test-deploy test-netsim

## test-unit: the fast subset for development (no browser, no fuzzing).
test-unit: web test-go

## test-web: ESLint (no warnings allowed), then the Vitest unit tests.
test-web: web/node_modules/.package-lock.json
	cd web && npm run lint
	cd web && npm test

test-go: $(WEB_DIST)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	# The conformance suite again, on all three backends, with proof of
	# work on (its clients solve it): about 90 s.
	CONFORMANCE_POW=1000 $(GO) test -race -count=1 -run TestConformance ./test/

## test-conformance-pow: the conformance suite on all three backends with
## proof of work on.
test-conformance-pow: $(WEB_DIST)
	CONFORMANCE_POW=1000 $(GO) test -race -count=1 -run TestConformance ./test/

test-fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./internal/protocol

# Browser tests run inside a network namespace that has only loopback, so no
# packet leaves the machine (see test/e2e/README.md). The test binary is built
# first: nothing can be downloaded inside the namespace.
test-e2e: $(WEB_DIST)
	@if [ -d test/e2e ]; then \
	  $(GO) test -c -race -tags e2e -o bin/e2e.test ./test/e2e && \
	  unshare -n sh -c 'ip link set lo up; cd test/e2e && exec ../../bin/e2e.test -test.v -test.count=1 -test.timeout 20m'; \
	else echo "no browser tests yet"; fi

## test-deploy: what a public deployment relies on, as root with real parts:
## the image built by podman and run from its root file system, the compose
## file's command lines checked by the binary, and (test/netsim) calls across
## simulated NATs and firewalls in network namespaces of the test's own.
test-deploy: image
	STRANGER_IMAGE=$(IMAGE) $(GO) test -race -count=1 -tags deploy -timeout 15m ./test/deploy/

## test-tls: the HTTPS tests again (ACME against Pebble, certificate
## reload), inside a network namespace that has only loopback, as the issue
## asks; test-go runs them too, on the host's loopback.
test-tls:
	$(GO) test -c -race -o bin/server.test ./internal/server
	unshare -n sh -c 'ip link set lo up; cd internal/server && exec ../../bin/server.test -test.count=1 -test.run "TestAutomaticHTTPS|TestCertificateFilesReload"'

## test-netsim: calls across simulated NATs and a firewall (test/netsim), in
## network namespaces the test creates and deletes; needs root.
test-netsim:
	$(GO) test -c -race -tags netsim -o bin/netsim.test ./test/netsim
	cd test/netsim && ../../bin/netsim.test -test.v -test.count=1 -test.timeout 15m

lint: web/node_modules/.package-lock.json
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
	cd web && npm run lint

bench:
	$(GO) test -run='^$$' -bench=. -benchmem ./internal/...

clean:
	rm -rf bin dist internal/web/dist/assets internal/web/dist/index.html
