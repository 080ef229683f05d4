// Package graph is the GraphQL edge of QChat: the schema files, the executor
// gqlgen generates from them (never edited by hand), and the handler built
// around it: transports, document and cost limits, the error presenter that
// turns every error into its extensions.code, and the websocket's lifecycle.
package graph

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	coderws "github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
)

// HandlerConfig assembles the GraphQL endpoint.
type HandlerConfig struct {
	Schema graphql.ExecutableSchema
	Log    *slog.Logger
	// Extensions run around every operation (loaders, limits).
	Extensions []graphql.HandlerExtension
	// Introspection enables schema introspection (off in production by
	// default). Off, __schema and __type are refused as invalid and field
	// suggestions ("Did you mean …") are not offered either, as they too
	// reveal the schema.
	Introspection bool
	// DocumentLimits bound a query document before it is validated; zero
	// fields take the defaults (see DocumentLimits).
	DocumentLimits DocumentLimits
	// WSInit authenticates a websocket from its connection_init payload and
	// returns the context its operations run in; an error refuses the socket.
	WSInit func(ctx context.Context, payload transport.InitPayload) (context.Context, error)
	// WSClose is called once when a socket that WSInit accepted closes.
	WSClose func(ctx context.Context)
	// OriginPatterns are the cross-origin hosts a browser websocket may come
	// from (same-origin always passes); see coder/websocket AcceptOptions.
	OriginPatterns []string
	// MaxUploadSize bounds multipart requests; MaxBodySize JSON bodies.
	MaxUploadSize int64
	MaxBodySize   int64
	// WSReadLimit bounds one websocket frame.
	WSReadLimit int64
	// WSWriteTimeout bounds one websocket write (<= 0: DefaultWSWriteTimeout).
	// A client that stops reading fills the connection's buffers, and the
	// write waiting on it would hold the socket's goroutines, its
	// subscriptions and their queued events for ever; past the timeout the
	// socket is closed instead.
	WSWriteTimeout time.Duration
	// ShuttingDown reports a graceful shutdown: sockets closed then say 1001
	// (going away), so clients reconnect elsewhere instead of giving up.
	ShuttingDown func() bool
}

// Size limits of a request. The largest legitimate one is a sendMessage to
// a full room, one recipient key per member: models.MaxRoomMembers is chosen
// so that it fits both with room to spare, and a test asserts it.
const (
	// DefaultMaxBodySize bounds a JSON request body.
	DefaultMaxBodySize = 1 << 20
	// DefaultWSReadLimit bounds one websocket frame.
	DefaultWSReadLimit = 1 << 20
)

// DefaultWSWriteTimeout is WSWriteTimeout's default: long enough for a slow
// mobile link to take a frame of a large message.
const DefaultWSWriteTimeout = 10 * time.Second

// NewHandler builds the gqlgen server with both websocket protocols, GET/POST
// JSON and multipart transports, the error presenter and panic recovery.
func NewHandler(cfg HandlerConfig) *handler.Server {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxBodySize <= 0 {
		cfg.MaxBodySize = DefaultMaxBodySize
	}
	if cfg.MaxUploadSize <= 0 {
		cfg.MaxUploadSize = 11 << 20 // a 10 MiB file plus the operation's JSON
	}
	if cfg.WSReadLimit <= 0 {
		cfg.WSReadLimit = DefaultWSReadLimit
	}
	if cfg.WSWriteTimeout <= 0 {
		cfg.WSWriteTimeout = DefaultWSWriteTimeout
	}
	srv := handler.New(withHistoryPages(cfg.Schema, cfg.Extensions))
	errorf := func(ctx context.Context, err error) {
		cfg.Log.DebugContext(ctx, "websocket error", "err", err)
	}
	shuttingDown := cfg.ShuttingDown
	if shuttingDown == nil {
		shuttingDown = func() bool { return false }
	}
	srv.AddTransport(socketTransport{
		sockets: frameSocket{AcceptOptions: coderws.AcceptOptions{
			OriginPatterns:  cfg.OriginPatterns,
			CompressionMode: coderws.CompressionDisabled,
		}, WriteTimeout: cfg.WSWriteTimeout},
		initTimeout: 10 * time.Second,
		keepAlive:   15 * time.Second,
		readLimit:   cfg.WSReadLimit,
		init:        cfg.WSInit,
		closed:      cfg.WSClose,
		errorf:      errorf,
		panicked: func(ctx context.Context, v any) {
			cfg.Log.ErrorContext(ctx, "panic serving a websocket", "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
		},
		shuttingDown: shuttingDown,
		schema:       cfg.Schema,
	})
	srv.AddTransport(transport.Options{})
	srv.AddTransport(transport.GET{})
	srv.AddTransport(postJSON{})
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: cfg.MaxUploadSize, MaxMemory: 1 << 20})

	// Parsed documents are cached by query text; 256 bounds the memory even for
	// documents near the 1 MiB body limit.
	queries := lru.New[*ast.QueryDocument](256)
	srv.SetQueryCache(queries)
	limits := cfg.DocumentLimits.withDefaults()
	if limits.Tokens > 0 {
		srv.SetParserTokenLimit(limits.Tokens)
	}
	srv.SetErrorPresenter(ErrorPresenter(cfg.Log))
	srv.SetRecoverFunc(Recover(cfg.Log))
	// The first OperationContextMutator and the last OperationParameterMutator
	// (variables.go).
	srv.Use(variableRestore{})
	if cfg.Introspection {
		srv.Use(extension.Introspection{})
	} else {
		srv.SetDisableSuggestion(true)
		srv.Use(introspectionOff{})
	}
	for _, e := range cfg.Extensions {
		srv.Use(e)
	}
	// Parameter mutators run in the order they are added, and before gqlgen
	// parses and validates: the document guard comes after the extensions, so
	// after APQ has put a persisted query's text in place.
	srv.Use(documentGuard{limits: limits, cache: queries})
	srv.Use(slowConsumers{})
	srv.Use(variableStandIns{schema: cfg.Schema.Schema(), cache: queries})
	return srv
}

// withHistoryPages puts the history fast path (history.go) in front of the
// generated schema, unless an extension intercepts fields, which the fast
// path does not call.
func withHistoryPages(es graphql.ExecutableSchema, exts []graphql.HandlerExtension) graphql.ExecutableSchema {
	gen, ok := es.(*executableSchema)
	if !ok {
		return es
	}
	for _, e := range exts {
		switch e.(type) {
		case graphql.FieldInterceptor, graphql.RootFieldInterceptor:
			return es
		}
	}
	return historySchema{gen}
}
