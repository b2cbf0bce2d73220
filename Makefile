GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run build test test-short bench generate lint modules clean

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

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

modules:
	@echo "no first-party modules yet"

clean:
	rm -rf bin data
