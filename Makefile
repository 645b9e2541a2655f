# Lotería Nacional. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
export CGO_ENABLED := 0

.PHONY: help build test test-short vet fuzz run data clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-22s %s\n", $$1, $$2}'

build: ## static binaries into bin/ (CGO disabled)
	@mkdir -p bin
	$(GO) build -trimpath -ldflags="-s -w" -o bin/ ./cmd/...

vet: ## gofmt and go vet
	@out=$$(gofmt -l $$(find . -name '*.go' -not -path './vendor/*' -not -path './.git/*')); \
	  if [ -n "$$out" ]; then echo "gofmt needs to run on: $$out"; exit 1; fi
	$(GO) vet ./...

test: vet build ## every test: unit, race, end to end, long, Docker (what CI runs)
	CGO_ENABLED=1 LOTTERY_LONG=1 LOTTERY_DOCKER=$${LOTTERY_DOCKER:-auto} $(GO) test -race -count=1 -timeout 30m ./...
	$(MAKE) --no-print-directory fuzz

test-short: ## quick tests: no long runs, no Docker
	CGO_ENABLED=1 $(GO) test -race -count=1 -short ./...

FUZZTIME ?= 10s
fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f ($(FUZZTIME))"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

run: build ## the central and five agencies as local processes, logs on screen
	@scripts/run-local.sh

data: build ## generated agency files into .data/ (existing files are kept)
	bin/gendata -out .data -agencies 5

clean: ## remove build outputs
	rm -rf bin
