//go:build tools

// Package tools pins the code generators that `make generate` runs, and modules
// that packages being written next depend on (so `go mod tidy` keeps them).
package tools

import (
	_ "github.com/99designs/gqlgen"
	_ "github.com/Khan/genqlient"
	_ "github.com/joho/godotenv"
	_ "github.com/klauspost/compress/gzhttp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/rs/cors"
	_ "github.com/unrolled/secure"
	_ "golang.org/x/time/rate"
	_ "gopkg.in/natefinch/lumberjack.v2"
)
