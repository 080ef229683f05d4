package middleware

import (
	"net/http"
	"strings"

	"github.com/rs/cors"
)

// corsMaxAge lets browsers cache a preflight for ten minutes, so an Apollo
// client does not double every request.
const corsMaxAge = 600

// CORS lets the browser origins in origins (CORS_ORIGINS, e.g.
// "https://app.example.com") call the API with credentials; any other origin
// gets no Access-Control-Allow-Origin and the browser withholds the response.
// An empty list allows no cross-origin access at all (rs/cors on its own would
// read an empty list as "everyone"). "*" allows every origin but then without
// credentials, since echoing any origin with credentials would hand every
// website the user's session.
//
// Websocket upgrades are not CORS requests; the websocket transport checks
// their Origin against the same list.
func CORS(origins []string) func(http.Handler) http.Handler {
	opts := cors.Options{
		AllowedMethods: []string{http.MethodGet, http.MethodPost, http.MethodOptions},
		AllowedHeaders: []string{
			"Accept", "Authorization", "Content-Type", "Apollo-Require-Preflight",
			"X-Apollo-Operation-Name", "Apollographql-Client-Name", "Apollographql-Client-Version",
			"X-Request-Id", "X-No-Compression",
		},
		ExposedHeaders: []string{
			"X-Request-Id", "Retry-After", "RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset",
		},
		MaxAge: corsMaxAge,
	}
	var list []string
	wildcard := false
	for _, o := range origins {
		o = strings.TrimRight(strings.TrimSpace(o), "/")
		switch o {
		case "":
			continue
		case "*":
			wildcard = true
		}
		list = append(list, o)
	}
	switch {
	case wildcard:
		opts.AllowedOrigins = []string{"*"}
	case len(list) == 0:
		opts.AllowOriginFunc = func(string) bool { return false }
	default:
		opts.AllowedOrigins = list
		opts.AllowCredentials = true
	}
	return cors.New(opts).Handler
}
