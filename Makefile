GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
# The TypeScript client's npm package.
TS := sdk/typescript

.PHONY: run build test test-short faults bench fuzz soak generate check-generate lint modules clean ui-deps ts-client cluster cluster-stop test-cluster bench-scale

run: build
	./bin/indigo serve --config indigo.toml

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/indigo ./cmd/indigo

# PostgreSQL tests run when INDIGO_TEST_POSTGRES_URL is set (CI sets it).
# The module loader's tests run once more on the previous module wire
# (api.module_wire = "grpc"), for the release that keeps it; sdk/rpc and
# sdk test both wires themselves.
test:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) test -race -count=1 -timeout 30m ./...
	INDIGO_MODULE_WIRE=grpc $(GO) test -race -count=1 -timeout 30m ./core/module/

test-short:
	$(GO) test -short ./...

# The fault tests: faults/ builds indigo and the projects module into a
# temporary folder, runs them as processes and kills, stops and floods them
# (it skips without INDIGO_FAULTS=1: make test leaves it to this target);
# then the fault tests of other packages, by name.
faults:
	INDIGO_FAULTS=1 $(GO) test -count=1 -v ./faults/
	$(GO) test -count=1 -run 'TestShutdownKillsAHungModule|TestHungModuleIsReplaced|TestHungIdleModuleIsReplaced|TestModuleKilledMidCallIsOutcomeUnknown' ./core/module/
	$(GO) test -count=1 -run 'TestServeStopsWithAHungModule|TestServeWaitsForTheDatabase|TestServeGivesUpOnTheDatabase' ./cmd/indigo/
	$(GO) test -count=1 -run TestDatabaseHangOrRefusalAnswers503InTime ./core/

# v2 routes against bare handlers writing the same bytes, as name: value
# lines. The load generator is wrk when it is installed (Debian: wrk), else
# the bench's own Go client; the first line says which. With
# INDIGO_BENCH_POSTGRES_URL set it also measures a host on PostgreSQL, in a
# schema of its own there, dropped at the end.
bench: build
	$(GO) run ./cmd/indigo-bench

# Every fuzz target for FUZZTIME each (scripts/fuzz.sh holds the list, and
# fails when a Fuzz function is missing from it). CI runs FUZZTIME=10s.
FUZZTIME ?= 60s
fuzz:
	FUZZTIME=$(FUZZTIME) GO=$(GO) scripts/fuzz.sh

# The host binary under a steady load over 1,000 keys for SOAK_DURATION,
# failing when memory, goroutines, open files or child processes grow past
# their bounds (deploy/soaktest). CI runs SOAK_DURATION=30s.
SOAK_DURATION ?= 3m
soak:
	INDIGO_SOAK=1 SOAK_DURATION=$(SOAK_DURATION) $(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./deploy/soaktest/

# api/openapi.json is the document a host with the core alone serves (the
# contract the clients are generated from): rewritten by the test that checks
# it, then sdk/client/openapi is generated from it (go tool oapi-codegen) and
# so are the TypeScript client's types, sdk/typescript/src/schema.ts
# (openapi-typescript, which needs Node.js and npm).
generate: $(TS)/node_modules/.package-lock.json
	$(GO) generate ./db/...
	$(GO) test -count=1 -run '^TestOpenAPIFileIsTheServedDocument$$' ./core/api -update-openapi
	$(GO) generate ./sdk/client/...
	cd $(TS) && npm run --silent generate
	protoc --plugin=protoc-gen-go=$$($(GO) tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$$($(GO) tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative sdk/internal/proto/module.proto

GENERATED := db sdk/internal/proto api sdk/client/openapi sdk/typescript/src/schema.ts

# Fails when the committed generated code differs from what the sources give.
check-generate: generate
	@git diff --exit-code -- $(GENERATED) || (echo "generated code is stale: run make generate and commit"; exit 1)
	@test -z "$$(git status --porcelain -- $(GENERATED))" || (git status --porcelain -- $(GENERATED); echo "make generate left new files"; exit 1)

# The browser tests' driver (playwright-core, pinned in package-lock.json).
# They use Debian's chromium at /usr/bin/chromium; without either they skip
# locally and fail under CI=true.
ui-deps:
	cd core/ui/e2e && npm ci --no-audit --no-fund

# The TypeScript client (sdk/typescript, @indigo-hq/client): its locked
# dependencies, a check that its generated types match api/openapi.json, and
# dist/ compiled by tsc (dist/ is not committed). core/clienttest's
# TestTypeScriptWalkthrough builds it too, then runs its tests against hosts.
ts-client:
	cd $(TS) && npm ci --no-audit --no-fund
	@cd $(TS) && npm run --silent check-generate || (echo "$(TS)/src/schema.ts is stale: run make generate and commit"; exit 1)
	cd $(TS) && npm run build

# make generate installs the TypeScript client's dependencies only when its
# lock file changed (npm ci writes node_modules/.package-lock.json).
$(TS)/node_modules/.package-lock.json: $(TS)/package-lock.json
	cd $(TS) && npm ci --no-audit --no-fund

lint:
	$(GO) vet ./...
	$(GO) tool staticcheck ./...
	@for f in core/ui/static/*.js core/ui/e2e/*.mjs $(TS)/test/*.mjs; do node --check $$f || exit 1; done
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); exit 1)

# Builds every first-party module (modules/<name>) into plugins/<name>.
modules:
	@mkdir -p plugins
	@for d in modules/*/; do \
		n=$$(basename $$d); [ -f $$d/main.go ] || continue; \
		echo "build plugins/$$n"; $(GO) build -o plugins/$$n ./$$d || exit 1; \
	done

clean:
	rm -rf bin data

# The production rehearsal on loopback: PostgreSQL, Redis, three hosts and
# HAProxy on 127.0.0.1:18080 (deploy/cluster.sh; everything under .cluster/).
cluster: build
	deploy/cluster.sh start

cluster-stop:
	deploy/cluster.sh stop

# The cluster tests (deploy/clustertest), through HAProxy and against each
# host; make test runs them too (they skip without postgresql, redis-server
# and haproxy, except under CI=true).
test-cluster: build
	$(GO) test -count=1 -v ./deploy/clustertest/

# Indigo at production volume on PostgreSQL (1,000,000 keys, 10,000,000
# request-log rows in a schema of its own, dropped at the end): the admin
# log query, key stats and verification, as name: value lines.
bench-scale:
	$(GO) run ./cmd/indigo-bench-scale
