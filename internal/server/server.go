// Package server assembles QChat's HTTP handler: routes, middleware and the
// GraphQL endpoint, from dependencies built by internal/app.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/internal/clientip"
	"github.com/qchat/qchat/internal/explorer"
	"github.com/qchat/qchat/internal/middleware"
	"github.com/qchat/qchat/internal/observability/health"
	"github.com/qchat/qchat/internal/observability/logging"
	"github.com/qchat/qchat/internal/observability/metrics"
	"github.com/qchat/qchat/internal/ratelimit"
	"github.com/qchat/qchat/internal/reqctx"
	"github.com/qchat/qchat/internal/webapp"
	"github.com/qchat/qchat/resolvers"
	webdist "github.com/qchat/qchat/web/app"
)

// Options are the handler's own settings, taken from the configuration by
// internal/app: the handler never sees the whole config.Config.
type Options struct {
	Environment string // reported by /health
	Production  bool   // HSTS, HTTPS redirects
	// TrustProxy are the proxies whose forwarding headers are believed.
	TrustProxy clientip.Proxies
	// CORSOrigins are the browser origins allowed to call the API and open websockets.
	CORSOrigins []string
	// Introspection turns on schema introspection and GraphiQL.
	Introspection bool
	// WebApp serves the web app at / (off for an API-only deployment).
	WebApp bool
	// HealthToken opens /health/detailed and /metrics; HealthPublic opens them to anyone.
	HealthToken  string
	HealthPublic bool
	// WSMaxConnsPerIP caps the open websockets of a client IP (0: no cap).
	WSMaxConnsPerIP int
	// WSWriteTimeout closes a websocket whose client takes no frame this long.
	WSWriteTimeout time.Duration
	// Limits of an operation (0: off each).
	DepthLimit, AliasLimit, ComplexityLimit int
	Version                                 string
	Started                                 time.Time
}

// Deps are what the handler is built from.
type Deps struct {
	Options Options
	Store   *db.Store
	Auth    *auth.Authenticator
	// Chat is the domain; the REST routes call it directly.
	Chat     *chat.Service
	Resolver *resolvers.Resolver
	Log      *slog.Logger
	// Metrics; nil means a private registry.
	Metrics *metrics.Metrics
	// APILimiter counts requests without a valid session per client IP; nil
	// limits nothing.
	APILimiter ratelimit.Limiter
	// UserLimiter counts the requests of each signed-in user (a token bucket);
	// nil limits nothing.
	UserLimiter ratelimit.Limiter
	// BrokerHealth reports the broker; nil means nothing to check.
	BrokerHealth func(ctx context.Context) error
}

// Server is the root handler with its lifecycle.
type Server struct {
	handler http.Handler
	health  *health.Health
	ws      *websockets
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// BeginShutdown turns readiness to 503 at once and closes every websocket with
// 1001 (going away); plain HTTP requests in flight are left to finish.
func (s *Server) BeginShutdown() {
	s.health.SetShuttingDown()
	s.ws.shutdown()
}

// WaitWebsockets waits until every websocket handler has returned, or ctx ends.
func (s *Server) WaitWebsockets(ctx context.Context) error { return s.ws.wait(ctx) }

// New builds the root handler. The middleware order follows the product's:
// client IP and proxies, HTTPS enforcement, CORS, security headers,
// compression, body limits, rate limits, then the routes.
func New(d Deps) (*Server, error) {
	cfg := d.Options
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Metrics == nil {
		d.Metrics = metrics.New(prometheus.NewRegistry())
	}
	if d.APILimiter == nil {
		d.APILimiter = ratelimit.NewMemory(0, 0, nil)
	}
	if d.UserLimiter == nil {
		d.UserLimiter = ratelimit.NewMemoryBucket(0, 0, nil)
	}
	h := health.New(health.Config{
		Version: cfg.Version, Environment: cfg.Environment, Started: cfg.Started, DB: d.Store, Dialect: string(d.Store.Dialect()),
		Broker: d.BrokerHealth, Websockets: d.Metrics.Active, Token: cfg.HealthToken, Public: cfg.HealthPublic, Log: d.Log,
	})
	ws := newWebsockets(cfg.WSMaxConnsPerIP, func(r *http.Request) {
		d.Metrics.RateLimited("ws_connections")
		d.Log.WarnContext(r.Context(), "security: rate_limited", "event", "rate_limited", "limiter", "ws_connections",
			"ip", reqctx.ClientIP(r.Context()))
	})

	schemaCfg := graph.Config{Resolvers: d.Resolver}
	graph.SetComplexity(&schemaCfg.Complexity)
	gql := graph.NewHandler(graph.HandlerConfig{
		Schema: graph.NewExecutableSchema(schemaCfg),
		Log:    d.Log,
		Extensions: []graphql.HandlerExtension{
			socketOperationLimit{anon: d.APILimiter, user: d.UserLimiter, rejected: socketLimitRejected(d), log: d.Log},
			graph.APQ(graph.DefaultAPQCacheBytes),
			graph.RootFieldLimit(graph.DefaultRootFieldLimit),
			graph.DepthLimit(cfg.DepthLimit),
			graph.AliasLimit(cfg.AliasLimit),
			graph.ComplexityLimit(cfg.ComplexityLimit),
			logging.OperationNameExtension(),
			d.Metrics.GraphQLExtension(),
			d.Resolver.LoaderExtension(),
		},
		Introspection:  cfg.Introspection,
		WSInit:         d.Resolver.WebsocketInit,
		WSClose:        d.Resolver.WebsocketClose,
		OriginPatterns: originHosts(cfg.CORSOrigins),
		MaxUploadSize:  chat.MaxDocumentSize + 1<<20,
		ShuttingDown:   ws.shuttingDown,
		WSWriteTimeout: cfg.WSWriteTimeout,
	})

	limited := limitRequests(d)
	mux := http.NewServeMux()
	mux.Handle("/graphql", authenticate(d.Auth, d.Log, limited(ws.track(middleware.WithStatusControl(gql)))))
	mux.Handle("GET /documents/{id}", authenticate(d.Auth, d.Log, limited(downloadDocument(d.Chat, d.Log))))
	if cfg.Introspection {
		// GraphiQL, from files in the binary, at /playground: / is the web app's.
		ex, err := explorer.New()
		if err != nil {
			return nil, err
		}
		page, err := middleware.PlaygroundCSP(ex.Page())
		if err != nil {
			return nil, fmt.Errorf("explorer: %w", err)
		}
		mux.Handle("GET /playground", page)
		mux.Handle("GET /playground/{$}", page)
		mux.Handle("GET "+explorer.AssetPrefix, ex.Assets())
	}
	mux.Handle("GET /health", h.Health())
	mux.Handle("GET /health/live", h.Live())
	mux.Handle("GET /health/ready", h.Ready())
	mux.Handle("GET /health/detailed", h.Protect(h.Detailed()))
	mux.Handle("GET /metrics", h.Protect(d.Metrics.Handler()))
	var app http.Handler
	if cfg.WebApp {
		var err error
		if app, err = webapp.New(webdist.Dist()); err != nil {
			return nil, err
		}
	}
	// Every other GET is the web app's (its client routes fall back to its
	// page); one catch-all, as "GET /" would conflict with "/graphql".
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if app != nil && (r.Method == http.MethodGet || r.Method == http.MethodHead) && !serverPath(r.URL.Path) {
			app.ServeHTTP(w, r)
			return
		}
		writeError(w, http.StatusNotFound, apierr.CodeNotFound, "no such endpoint: "+r.URL.Path)
	})

	compress, err := middleware.Compress()
	if err != nil {
		return nil, fmt.Errorf("compression: %w", err)
	}
	// Probes and scrapes come from inside the cluster, often over plain HTTP;
	// they stay reachable there (the detailed ones are token- or loopback-only).
	isProbe := func(p string) bool { return p == "/health" || strings.HasPrefix(p, "/health/") || p == "/metrics" }
	var handler http.Handler = mux
	handler = middleware.BodyLimit(graph.DefaultMaxBodySize, chat.MaxDocumentSize+1<<20)(handler)
	handler = compress(handler)
	handler = middleware.SecurityHeaders(cfg.Production)(handler)
	handler = middleware.CORS(cfg.CORSOrigins)(handler)
	handler = middleware.HTTPSRedirect(cfg.Production, isProbe)(handler)
	handler = d.Metrics.HTTPMiddleware(handler)
	handler = logging.RequestLog(d.Log, func(r *http.Request) string { return reqctx.ClientIP(r.Context()) },
		logging.WithQuietPaths("/health", "/metrics"))(handler)
	handler = clientip.Middleware(cfg.TrustProxy)(handler)
	handler = middleware.Recover(d.Log)(handler)
	handler = middleware.RequestID(handler)
	return &Server{handler: handler, health: h, ws: ws}, nil
}

// serverPath says whether p is in the server's own namespace, where a path
// without a route is a 404 rather than the web app's page: the explorer where
// it is off, the pprof paths of DEBUG_ADDR (never on this port), the API's.
func serverPath(p string) bool {
	for _, prefix := range []string{"/playground", "/debug/", "/graphql", "/documents/", "/health", "/metrics"} {
		if strings.HasPrefix(p, prefix) {
			return true
		}
	}
	return false
}

// limitRequests spends a signed-in request from its user's token bucket, and
// any other request from its client IP's window. Users behind one NAT or proxy
// share an IP but not a budget, and the per-IP window, sized for anonymous
// traffic, never throttles a person using the chat. It runs after
// authenticate, which decides who the request is from.
func limitRequests(d Deps) func(http.Handler) http.Handler {
	rejected := func(limiter string) func(r *http.Request, res ratelimit.Result) {
		return func(r *http.Request, res ratelimit.Result) {
			d.Metrics.RateLimited(limiter)
			d.Log.WarnContext(r.Context(), "security: rate_limited", "event", "rate_limited", "limiter", limiter,
				"ip", reqctx.ClientIP(r.Context()), "path", r.URL.Path)
		}
	}
	byIP := ratelimit.HTTP(d.APILimiter, func(r *http.Request) string { return reqctx.ClientIP(r.Context()) }, rejected("api"))
	byUser := ratelimit.HTTP(d.UserLimiter, func(r *http.Request) string { return auth.UserFrom(r.Context()).ID }, rejected("user"))
	return func(next http.Handler) http.Handler {
		anon, user := byIP(next), byUser(next)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if auth.UserFrom(r.Context()) != nil {
				user.ServeHTTP(w, r)
				return
			}
			anon.ServeHTTP(w, r)
		})
	}
}

// authenticate puts the user of a valid bearer token into the request context.
// A missing or invalid token leaves the request anonymous: operations that need
// a user answer UNAUTHENTICATED themselves, and `me` answers null.
func authenticate(a *auth.Authenticator, log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if token := auth.BearerToken(r.Header.Get("Authorization")); token != "" {
			u, err := a.Authenticate(r.Context(), token)
			switch {
			case err == nil:
				logging.SetUser(r.Context(), u.ID)
				r = r.WithContext(auth.WithUser(r.Context(), u, token))
			case err != auth.ErrInvalidToken:
				log.ErrorContext(r.Context(), "authenticate", "err", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
