package ratelimit

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/qchat/qchat/internal/apierr"
)

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

// Rejection is the contract's error for a rejected result: RATE_LIMITED with
// retryAfter, and the headers an HTTP answer carries with it.
func Rejection(res Result) *apierr.Error {
	return &apierr.Error{
		Code:       apierr.CodeRateLimited,
		Message:    Message(res),
		Extensions: map[string]any{"retryAfter": res.RetryAfterSeconds()},
		Header:     HeaderFor(res),
	}
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
	e := Rejection(res)
	for k, vs := range e.Header {
		w.Header()[k] = vs
	}
	ext := map[string]any{"code": e.Code}
	for k, v := range e.Extensions {
		ext[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusTooManyRequests)
	_ = json.NewEncoder(w).Encode(apierr.Body(e.Message, ext))
}
