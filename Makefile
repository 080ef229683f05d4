# QChat. `make run` starts the server on SQLite; `make test` runs every check CI runs.
GO      ?= go
BIN     ?= bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run build test vet generate check-generated tidy bench clean

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

# Regenerates the server's executor (gqlgen) and the Go client (genqlient).
generate:
	$(GO) run github.com/99designs/gqlgen generate
	$(GO) generate ./client

# CI: generated code must be what `make generate` produces.
check-generated: generate
	@git diff --exit-code -- graph models resolvers client || { echo "generated code is stale: run make generate and commit"; exit 1; }

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf $(BIN)
