package logging

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/internal/observability/internal/respwriter"
	"github.com/qchat/qchat/internal/reqctx"
)

type requestInfoKey struct{}

// requestInfo is filled in by handlers further down the chain, which only see
// a derived context: the middleware that owns the log line cannot read values
// they add to theirs, so it hands them a mutable holder instead.
type requestInfo struct {
	mu         sync.Mutex
	operation  string
	operations int
	userID     string
}

// SetOperation records the GraphQL operation name of the request in ctx, for
// its log line. It does nothing outside RequestLog.
func SetOperation(ctx context.Context, name string) {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		ri.mu.Lock()
		ri.operation = name
		ri.operations++
		ri.mu.Unlock()
	}
}

// SetUser records the authenticated user of the request in ctx, for its log
// line. It does nothing outside RequestLog.
func SetUser(ctx context.Context, id string) {
	if ri, ok := ctx.Value(requestInfoKey{}).(*requestInfo); ok {
		ri.mu.Lock()
		ri.userID = id
		ri.mu.Unlock()
	}
}

func (ri *requestInfo) snapshot() (op string, ops int, user string) {
	ri.mu.Lock()
	defer ri.mu.Unlock()
	return ri.operation, ri.operations, ri.userID
}

// RequestLogOption tunes RequestLog.
type RequestLogOption func(*requestLogConfig)

type requestLogConfig struct {
	now   func() time.Time
	quiet []string
}

// WithQuietPaths logs successful requests to these path prefixes at debug
// instead of info: probes and scrapes every few seconds would otherwise drown
// the real traffic. Failures (status >= 500) are still errors.
func WithQuietPaths(prefixes ...string) RequestLogOption {
	return func(c *requestLogConfig) { c.quiet = append(c.quiet, prefixes...) }
}

// WithClock measures durations with now instead of time.Now (tests).
func WithClock(now func() time.Time) RequestLogOption {
	return func(c *requestLogConfig) { c.now = now }
}

// RequestLog logs one line per HTTP request when it ends: method, path (never
// the query string, which can carry a token), GraphQL operation, client IP,
// status, duration, user agent, user id and request id. A websocket is one
// request, logged when it closes, with the number of operations it ran.
// Status >= 500 logs at error, anything else at info.
//
// Place it inside middleware.RequestID (so the id is known) and outside
// authentication (so SetUser finds its holder).
func RequestLog(log *slog.Logger, clientIP func(*http.Request) string, opts ...RequestLogOption) func(http.Handler) http.Handler {
	cfg := requestLogConfig{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if clientIP == nil {
		clientIP = func(r *http.Request) string { return r.RemoteAddr }
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := cfg.now()
			ri := &requestInfo{}
			rec := respwriter.New(w)
			ctx := context.WithValue(r.Context(), requestInfoKey{}, ri)
			next.ServeHTTP(rec, r.WithContext(ctx))
			status := rec.Status()
			ln := requestLine{
				log: log, ctx: r.Context(), now: cfg.now, start: start, ri: ri,
				upgraded: rec.Upgraded(), bytes: rec.Bytes(),
				// Room for the attributes write adds.
				attrs: append(make([]slog.Attr, 0, 10),
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Int("status", status),
					slog.Attr{}, // duration_ms, at the end
					slog.String("client_ip", clientIP(r)),
					slog.String("user_agent", r.UserAgent()),
					slog.String("request_id", reqctx.RequestID(r.Context())),
				),
			}
			switch {
			case status >= 500:
				ln.level = slog.LevelError
			case cfg.isQuiet(r.URL.Path):
				ln.level = slog.LevelDebug
			}
			if ln.upgraded {
				// A websocket served after its handler returned ends later;
				// the line holds what it says of the request, so that the
				// request and its response are not kept for the socket's
				// life.
				later := ln
				reqctx.AtEnd(ctx, later.write)
				return
			}
			ln.write()
		})
	}
}

// requestLine is a request's log line, written when the request ends.
type requestLine struct {
	log      *slog.Logger
	ctx      context.Context
	level    slog.Level
	now      func() time.Time
	start    time.Time
	ri       *requestInfo
	upgraded bool
	bytes    int64
	attrs    []slog.Attr
}

func (l *requestLine) write() {
	attrs := l.attrs
	attrs[3] = slog.Float64("duration_ms", float64(l.now().Sub(l.start).Microseconds())/1000)
	op, ops, user := l.ri.snapshot()
	if l.upgraded {
		attrs = append(attrs, slog.Bool("websocket", true), slog.Int("operations", ops))
	} else {
		attrs = append(attrs, slog.Int64("bytes", l.bytes))
		if op != "" {
			attrs = append(attrs, slog.String("operation", op))
		}
	}
	if user != "" {
		attrs = append(attrs, slog.String("user_id", user))
	}
	l.log.LogAttrs(l.ctx, l.level, "http request", attrs...)
}

func (c requestLogConfig) isQuiet(path string) bool {
	for _, p := range c.quiet {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}

// OperationNameExtension is a gqlgen extension that records each operation's
// name (or "anonymous") with SetOperation, so RequestLog can show it without
// reading the body itself.
func OperationNameExtension() graphql.HandlerExtension { return operationName{} }

type operationName struct{}

var (
	_ graphql.HandlerExtension        = operationName{}
	_ graphql.OperationContextMutator = operationName{}
)

func (operationName) ExtensionName() string                   { return "OperationNameLog" }
func (operationName) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext runs after parsing and validation, when the
// operation that will run is known even if the client sent no operationName.
func (operationName) MutateOperationContext(ctx context.Context, opCtx *graphql.OperationContext) *gqlerror.Error {
	name := "anonymous"
	if opCtx.Operation != nil && opCtx.Operation.Name != "" {
		name = opCtx.Operation.Name
	}
	SetOperation(ctx, name)
	return nil
}
