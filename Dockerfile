# syntax=docker/dockerfile:1
#
# QChat server image: two static binaries on distroless, run as nonroot.
#
#   docker build --build-arg VERSION="$(git describe --tags --always --dirty)" -t qchat .
#   docker run -p 8080:8080 -v qchat-data:/data -e APP_ENV=development qchat
#
# The image defaults to APP_ENV=production: behind a TLS-terminating proxy set
# TRUST_PROXY to the proxy's address, or every plain-HTTP request is redirected to
# HTTPS. See docs/DEPLOYMENT.md.
#
# BuildKit is required (cache mounts); it is the default builder since Docker 23.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION} AS build
WORKDIR /src

# Dependencies first, so that editing the code does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .

ARG VERSION=dev
ARG TARGETOS
ARG TARGETARCH
# CGO_ENABLED=0 works because the SQLite driver (modernc.org/sqlite) is pure Go:
# the binaries are statically linked and need no libc in the final image.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
      go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/qchat-server . && \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
      go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/qchat ./cmd/qchat && \
    mkdir -p /out/rootfs/data

# distroless/static: CA certificates (for PostgreSQL and Redis over TLS), tzdata,
# /etc/passwd with nonroot (65532), no shell and no package manager.
FROM gcr.io/distroless/static-debian12:nonroot

COPY --from=build /out/qchat-server /qchat-server
COPY --from=build /out/qchat /qchat
# The SQLite database lives in DATA_DIR. A new named volume mounted on /data
# takes this directory's owner, so the nonroot user can write to it.
# (Copied as an entry of a tree so that /data itself, not only its contents,
# gets the owner.)
COPY --from=build --chown=65532:65532 /out/rootfs/ /

ENV APP_ENV=production \
    PORT=8080 \
    DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
USER 65532:65532

# No HEALTHCHECK: distroless has no shell or curl to run one. Use the
# orchestrator's HTTP probes instead: GET /health/live (liveness) and
# GET /health/ready (readiness), both unauthenticated and exempt from the
# HTTPS redirect (see deploy/kubernetes.yaml).

# Docker sends SIGTERM on stop; the server then shuts down gracefully within
# SHUTDOWN_TIMEOUT (30s). Give `docker stop` more than that: `docker stop -t 40`.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/qchat-server"]
