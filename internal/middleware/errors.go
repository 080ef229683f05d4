package middleware

import (
	"encoding/json"
	"net/http"
)

// Codes of the API contract used by HTTP-level answers. They repeat graph's
// constants because graph imports this package, not the other way round.
const (
	codeBadUserInput = "BAD_USER_INPUT"
	codeInternal     = "INTERNAL_SERVER_ERROR"
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
	_ = json.NewEncoder(w).Encode(map[string]any{
		"errors": []any{map[string]any{"message": message, "extensions": ext}},
	})
}
