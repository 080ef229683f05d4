# QChat. `make run` starts the server on SQLite; `make test` runs every check CI runs.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run build test vet generate check-generated tidy bench clean graphiql web

run: build
	./$(BIN)/qchat-server

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/qchat-server .
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/qchat ./cmd/qchat

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...

# Tests that need PostgreSQL read QCHAT_TEST_POSTGRES_URL (skipped without it, failed under CI=true).
test: vet
	$(GO) test -race -count=1 -timeout 15m ./...
	# Allocation budgets are counted without the race detector, which allocates.
	$(GO) test -count=1 -run 'TestAllocationBudgets' ./internal/server/
	@# go test shows a passing package's output only with -v, so the tests'
	@# own "skipped" lines would be hidden here: repeat them once per service.
	@test -n "$$QCHAT_TEST_POSTGRES_URL" || echo "qchat: PostgreSQL tests skipped: QCHAT_TEST_POSTGRES_URL is not set"
	@test -n "$$QCHAT_TEST_REDIS_URL" || echo "qchat: Redis tests skipped: QCHAT_TEST_REDIS_URL is not set"

# Regenerates the server's executor (gqlgen), the Go client (genqlient) and
# the TypeScript library's typed operations (graphql-codegen, web/lib).
generate:
	$(GO) run github.com/99designs/gqlgen generate
	$(GO) generate ./client
	test -d web/node_modules || (cd web && npm ci --no-audit --no-fund)
	cd web && npm run codegen -w lib

# CI: generated code must be what `make generate` produces, and generating
# must not touch anything else (gqlgen tidies go.sum). Run on a clean checkout:
# it compares with the last commit, so uncommitted work fails it.
GENERATED_PATHS := graph models resolvers client go.mod go.sum web/lib/src/api/generated
check-generated: generate
	@test -z "$$(git status --porcelain -- $(GENERATED_PATHS))" || { git status --short -- $(GENERATED_PATHS); git diff -- $(GENERATED_PATHS); echo "generated code is stale: run make generate and commit"; exit 1; }

# Refetches the explorer's GraphiQL and React files (exact versions in
# internal/explorer/package-lock.json) from the npm registry into
# internal/explorer/static/vendor, which is committed and embedded in the binary.
graphiql:
	internal/explorer/update.sh

# Rebuilds the web app's bundle (web/app/dist), which is committed and embedded
# in the server; go test ./web/ fails when it differs from a fresh build.
web:
	cd web && npm ci --no-audit --no-fund && npm run build -w app

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# A throw-away server (SQLite in a temporary DATA_DIR, rate limits off) on a
# free port, the load tool's standard suite against it, then the server stops.
# LOAD_FLAGS adds or overrides flags, e.g. make load LOAD_FLAGS="--json".
LOAD_FLAGS ?= --duration 5s --history-filler 5000 --subscribers 200 --rooms 10
.PHONY: load
load:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/qchat-server .
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/qchat-load ./cmd/qchat-load
	@dir=$$(mktemp -d); pid=; \
	trap 'test -n "$$pid" && kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf "$$dir"' EXIT; \
	trap 'exit 130' INT TERM; \
	DATABASE_URL= PORT=0 DATA_DIR="$$dir" LOG_LEVEL=warn BCRYPT_COST=4 RATE_LIMIT_MAX=0 USER_RATE_LIMIT_RATE=0 AUTH_RATE_LIMIT_MAX=0 \
		WS_INIT_RATE_LIMIT=0 WS_MAX_CONNECTIONS_PER_IP=0 WS_MAX_SUBSCRIPTIONS=0 ./$(BIN)/qchat-server >"$$dir/out" 2>"$$dir/log" & pid=$$!; \
	port=; for i in $$(seq 150); do \
		port=$$(sed -n 's/.*listening on http:.*:\([0-9][0-9]*\) .*/\1/p' "$$dir/out"); \
		test -n "$$port" && break; kill -0 $$pid 2>/dev/null || break; sleep 0.1; \
	done; \
	test -n "$$port" || { echo "qchat-server did not start:"; cat "$$dir/log"; exit 1; }; \
	./$(BIN)/qchat-load --server http://127.0.0.1:$$port --pid $$pid --scenario all $(LOAD_FLAGS)

clean:
	rm -rf $(BIN)
