# Lotería Nacional. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
export CGO_ENABLED := 0

.PHONY: help build test test-short vet fuzz run data pki clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

build: ## static binaries into bin/ (CGO disabled)
	@mkdir -p bin
	$(GO) build -trimpath -ldflags="-s -w" -o bin/ ./cmd/...

vet: ## gofmt and go vet
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './vendor/*' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needs to run on: $$out"; exit 1; fi
	$(GO) vet ./...

# The flood test measures a ratio of wall-clock times on a 2-core machine, so
# it runs alone, after the rest, and without the race detector (which would
# multiply the cost of its in-process attacker, not of the central).
FLOOD_TEST := ^TestCentral_Flood$$

test: vet build browser ## every test: unit, race, end to end, long, Docker, browser (what CI runs)
	CGO_ENABLED=1 LOTTERY_LONG=1 LOTTERY_DOCKER=$${LOTTERY_DOCKER:-auto} LOTTERY_BROWSER=$${LOTTERY_BROWSER:-auto} $(GO) test -race -count=1 -timeout 30m -skip '$(FLOOD_TEST)' ./...
	LOTTERY_LONG=1 $(GO) test -count=1 -timeout 10m -run '$(FLOOD_TEST)' -v ./reliability
	$(MAKE) --no-print-directory fuzz

test-short: ## quick tests: no long runs, no Docker
	CGO_ENABLED=1 $(GO) test -race -count=1 -short ./...

FUZZTIME ?= 10s
# A fuzz run that fails with nothing but "context deadline exceeded" and
# writes no failing input is Go's fuzzing coordinator racing its own
# -fuzztime deadline on a loaded machine (golang/go#75804, fixed in Go 1.27),
# not a finding: it is reported and not counted. A real failure always
# writes its input under testdata/fuzz, and fails the run.
fuzz: ## run every fuzz target for FUZZTIME each
	@set -eo pipefail; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    out=$$(mktemp); \
	    if ! $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 200x $$pkg 2>&1 | tee $$out; then \
	      if grep -q 'context deadline exceeded' $$out && ! grep -q 'Failing input written' $$out; then \
	        echo "fuzz $$pkg $$f: ended on the fuzzer's own deadline with no failing input (golang/go#75804): not a finding"; \
	      else rm -f $$out; exit 1; fi; \
	    fi; rm -f $$out; \
	  done; done

run: build ## the central and five agencies as local processes over mutual TLS (.pki/ made if missing), logs on screen
	@scripts/run-local.sh

# The nodes keep their state in .cluster/ between runs, like the volumes in
# Docker: rm -rf .cluster starts a new draw.
.PHONY: run-cluster
run-cluster: build ## a replicated central of three nodes (server1…3 on 127.0.0.1:12345/12355/12365, state in .cluster/) and five agencies as local processes, logs on screen
	@scripts/run-cluster.sh

# bin/pki only adds what is missing and never replaces a key, so it runs
# every time: a fresh clone gets its keys, an existing .pki/ is left alone.
PKI_AGENCIES ?= 5
pki: build ## the CA, the central's and PKI_AGENCIES (5) agencies' keys and certificates in .pki/ (only what is missing)
	@bin/pki -out .pki -agencies $(PKI_AGENCIES)

data: build ## generated agency files into .data/ (existing files are kept)
	bin/gendata -out .data -agencies 5

clean: ## remove build outputs
	rm -rf bin

# ---- Browser (the status page's test, admin/browser_test.go) ---------------
# Debian's chromium, installed only when no Chromium is on the PATH. A failed
# install is tolerated: the browser test then skips and says why.
CHROMIUM_DEB ?= chromium
CHROMIUM_BINS := chromium chromium-browser google-chrome google-chrome-stable

.PHONY: browser
browser: ## a Chromium for the browser test (Debian's chromium via apt-get, only if none is installed)
	@for b in $(CHROMIUM_BINS); do if command -v $$b >/dev/null; then echo "browser: $$(command -v $$b)"; exit 0; fi; done; \
	  echo "browser: installing Debian's $(CHROMIUM_DEB)"; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(CHROMIUM_DEB) >/dev/null; } \
	    || echo "browser: could not install $(CHROMIUM_DEB): the browser test will skip"

# ---- Docker (docs/docker.md) ----------------------------------------------
# `docker compose` when the plugin is installed, else docker-compose (v1).
DOCKER_COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo 'docker compose' || echo docker-compose)
COMPOSE_DEV ?= docker-compose-dev.yaml
NETCAT_IMAGE ?= netcat:latest
BUSYBOX_DEB ?= busybox-static

.PHONY: docker-image docker-netcat-image docker-compose-up docker-compose-down docker-compose-clean docker-compose-logs

docker-image: build ## the server:latest and client:latest images (FROM scratch: nothing is pulled)
	docker build -f ./server/Dockerfile -t server:latest .
	docker build -f ./client/Dockerfile -t client:latest .

docker-netcat-image: bin/busybox ## the netcat image validar-echo-server.sh uses (a static busybox)
	docker build -f ./netcat/Dockerfile -t $(NETCAT_IMAGE) .

# Debian's busybox-static package, downloaded and unpacked here (never
# installed on the host); the lists are refreshed only when they are missing.
bin/busybox:
	@set -euo pipefail; mkdir -p bin; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cd "$$tmp"; \
	  if ! apt-get download $(BUSYBOX_DEB) >apt.log 2>&1; then \
	    echo "apt-get download $(BUSYBOX_DEB) failed: refreshing the package lists"; \
	    apt-get update -qq && apt-get download $(BUSYBOX_DEB) >apt.log 2>&1 || { cat apt.log >&2; exit 1; }; \
	  fi; \
	  dpkg-deb -x ./*.deb pkg && install -m 0755 pkg/bin/busybox "$(CURDIR)/bin/busybox"; \
	  echo "bin/busybox from $$(ls ./*.deb)"

# -keep: an existing docker-compose-dev.yaml is left as it is, but .pki/ is
# always made ready (what is missing issued, central.key readable by the
# central's user), so a key that is new since the last up works too.
docker-compose-up: docker-image pki ## build the images and .pki/ (central.key readable by the central's user), write docker-compose-dev.yaml (5 agencies) if missing, start it
	@./generar-compose.sh -keep $(COMPOSE_DEV) 5
	@mkdir -p .data .receipts
	$(DOCKER_COMPOSE) -f $(COMPOSE_DEV) up -d

docker-compose-down: ## stop (1 s grace) and remove the containers and network; the bets volume is kept
	$(DOCKER_COMPOSE) -f $(COMPOSE_DEV) stop -t 1
	$(DOCKER_COMPOSE) -f $(COMPOSE_DEV) down

docker-compose-clean: ## docker-compose-down, and remove the bets volume too (down -v): the next up starts a new draw
	$(DOCKER_COMPOSE) -f $(COMPOSE_DEV) stop -t 1
	$(DOCKER_COMPOSE) -f $(COMPOSE_DEV) down -v

docker-compose-logs: ## follow the containers' logs
	$(DOCKER_COMPOSE) -f $(COMPOSE_DEV) logs -f

BENCH_ARGS ?= -agencies 5 -bets 20000 -runs 3
.PHONY: bench
bench: build ## end-to-end benchmark, medians of 3 runs (BENCH_ARGS to change; bin/bench -h lists the flags)
	bin/bench $(BENCH_ARGS)
