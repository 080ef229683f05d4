package middleware

import (
	"encoding/json"
	"net/http"

	"github.com/qchat/qchat/internal/apierr"
)

// writeError answers in the GraphQL error shape, so that a client handles an
// HTTP-level rejection (413, 500) with the same code path as a resolver error.
func writeError(w http.ResponseWriter, status int, message string, ext map[string]any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	// A handler that gave up (or panicked) may have announced a length for a
	// body it never wrote.
	h.Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(apierr.Body(message, ext))
}
