package ratelimit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
)

// CodeRateLimited is the contract's extensions.code for a rejected request.
// It is repeated here rather than imported from graph, which sits above this
// package.
const CodeRateLimited = "RATE_LIMITED"

// Headers sets the RateLimit-* headers (IETF draft, as express-rate-limit's
// standard headers) and, for a rejection, Retry-After. A disabled limiter
// (Limit 0) sets none: advertising a limit of 0 would tell clients to stop.
func Headers(w http.ResponseWriter, res Result) {
	for k, vs := range HeaderFor(res) {
		w.Header()[k] = vs
	}
}

// HeaderFor returns the RateLimit-* (and, when rejected, Retry-After) headers
// of a result, for answers written elsewhere.
func HeaderFor(res Result) http.Header {
	h := http.Header{}
	if res.Limit <= 0 {
		return h
	}
	h.Set("RateLimit-Limit", strconv.Itoa(res.Limit))
	h.Set("RateLimit-Remaining", strconv.Itoa(res.Remaining))
	h.Set("RateLimit-Reset", strconv.Itoa(res.ResetSeconds()))
	if !res.Allowed {
		h.Set("Retry-After", strconv.Itoa(res.RetryAfterSeconds()))
	}
	return h
}

// Message is the client-facing text of a rejection.
func Message(res Result) string {
	return fmt.Sprintf("too many requests, retry in %d seconds", res.RetryAfterSeconds())
}

// HTTP limits requests by keyFn(r) (the client IP, usually): each request takes
// one from its key; over the limit the answer is HTTP 429 with Retry-After and
// a GraphQL-shaped error body, so Apollo clients see extensions.code
// RATE_LIMITED like any other error. Allowed responses carry the RateLimit-*
// headers too. An empty key is not limited. onReject (may be nil) is told of
// each rejection, for the security log and metrics.
//
// If the limiter fails (a shared store being down), the request is let through:
// an outage of the limiter must not become an outage of the API.
func HTTP(l Limiter, keyFn func(*http.Request) string, onReject func(r *http.Request, res Result)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			key := keyFn(r)
			if key == "" {
				next.ServeHTTP(w, r)
				return
			}
			res, err := l.Take(r.Context(), key)
			if err != nil {
				next.ServeHTTP(w, r)
				return
			}
			if res.Allowed {
				Headers(w, res)
				next.ServeHTTP(w, r)
				return
			}
			if onReject != nil {
				onReject(r, res)
			}
			WriteRejection(w, res)
		})
	}
}

// WriteRejection answers 429 with the GraphQL error body for res.
func WriteRejection(w http.ResponseWriter, res Result) {
	Headers(w, res)
	body := map[string]any{"errors": []any{map[string]any{
		"message": Message(res),
		"extensions": map[string]any{
			"code":       CodeRateLimited,
			"retryAfter": res.RetryAfterSeconds(),
		},
	}}}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(body)
}
