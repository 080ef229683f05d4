// Package middleware holds the HTTP middleware QChat wraps around its routes.
package middleware

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"

	"github.com/qchat/qchat/internal/reqctx"
)

// RequestIDHeader carries the request id to the client, so a user can quote it.
const RequestIDHeader = "X-Request-Id"

// RequestID gives every request an id, echoed in the response header and
// available to every log line of the request through reqctx.RequestID. A client's
// own id is not trusted: it could forge or collide with another's. An
// upgrade request may also outlive its handler (reqctx.Detach): RequestID is
// the outermost middleware, so every one below can defer its end's work
// with reqctx.AtEnd.
func RequestID(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := newRequestID()
		w.Header().Set(RequestIDHeader, id)
		ctx := reqctx.WithRequestID(r.Context(), id)
		if r.Header.Get("Upgrade") != "" {
			ctx = reqctx.WithLifetime(ctx)
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
