// Package server assembles QChat's HTTP handler: routes, middleware and the
// GraphQL endpoint, from dependencies built by run().
package server

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/middleware"
	"github.com/qchat/qchat/resolvers"
)

// Deps are what the handler is built from.
type Deps struct {
	Config   config.Config
	Store    *db.Store
	Auth     *auth.Authenticator
	Resolver *resolvers.Resolver
	Log      *slog.Logger
	Version  string
	Started  time.Time
}

// New returns the root handler.
func New(d Deps) http.Handler {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	gql := graph.NewHandler(graph.HandlerConfig{
		Schema: graph.NewExecutableSchema(graph.Config{Resolvers: d.Resolver}),
		Log:    d.Log,
		Extensions: []graphql.HandlerExtension{
			d.Resolver.LoaderExtension(),
		},
		Introspection:  d.Config.Introspection,
		WSInit:         d.Resolver.WebsocketInit,
		WSClose:        d.Resolver.WebsocketClose,
		OriginPatterns: originHosts(d.Config.CORSOrigins),
	})

	mux := http.NewServeMux()
	mux.Handle("/graphql", authenticate(d.Auth, d.Log, graph.LimitBody(1<<20, resolvers.MaxDocumentSize+1<<20, gql)))
	mux.Handle("GET /documents/{id}", authenticate(d.Auth, d.Log, downloadDocument(d.Resolver, d.Log)))
	mux.Handle("GET /{$}", playground.Handler("QChat", "/graphql"))
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"status": "healthy", "uptime": time.Since(d.Started).Seconds(), "version": d.Version, "environment": d.Config.Env,
		})
	})
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, r *http.Request) {
		if err := d.Store.Ping(r.Context()); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "database": "down"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	return middleware.RequestID(mux)
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
				r = r.WithContext(auth.WithUser(r.Context(), u, token))
			case err != auth.ErrInvalidToken:
				log.ErrorContext(r.Context(), "authenticate", "request_id", middleware.RequestIDFrom(r.Context()), "err", err)
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
