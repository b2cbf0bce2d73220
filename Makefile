GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run build test test-short bench generate check-generate lint modules clean

run: build
	./bin/indigo serve --config indigo.toml

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/indigo ./cmd/indigo

# PostgreSQL tests run when INDIGO_TEST_POSTGRES_URL is set (CI sets it).
test:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) test -race -count=1 ./...

test-short:
	$(GO) test -short ./...

bench: build
	$(GO) run ./cmd/indigo-bench

generate:
	$(GO) generate ./db/...

# Fails when the committed generated code differs from what the sources give.
check-generate: generate
	@git diff --exit-code -- db || (echo "generated code is stale: run make generate and commit"; exit 1)
	@test -z "$$(git status --porcelain -- db)" || (git status --porcelain -- db; echo "make generate left new files"; exit 1)

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

modules:
	@echo "no first-party modules yet"

clean:
	rm -rf bin data
