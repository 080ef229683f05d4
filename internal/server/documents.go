package server

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/models"
)

// downloadDocument streams a document's ciphertext to a member of its
// conversation: GET /documents/{id} with the bearer token. Anyone else gets 404,
// so a document's existence is not revealed.
func downloadDocument(svc *chat.Service, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := auth.UserFrom(r.Context())
		if u == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="qchat"`)
			writeError(w, http.StatusUnauthorized, apierr.CodeUnauthenticated, "authentication required: send Authorization: Bearer <token>")
			return
		}
		d, body, size, err := svc.OpenDocument(r.Context(), u, r.PathValue("id"))
		switch {
		case errors.Is(err, models.ErrNotFound), errors.Is(err, models.ErrInvalid):
			writeError(w, http.StatusNotFound, apierr.CodeNotFound, "document not found")
			return
		case err != nil:
			log.ErrorContext(r.Context(), "download document", "err", err)
			writeError(w, http.StatusInternalServerError, apierr.CodeInternal, "internal server error")
			return
		}
		defer body.Close()
		h := w.Header()
		// The body is ciphertext: never sniffed, cached by shared caches, or compressed.
		h.Set("Content-Type", "application/octet-stream")
		h.Set("Content-Length", strconv.FormatInt(size, 10))
		h.Set("Content-Disposition", `attachment; filename="`+d.ID+`.qenc"`)
		h.Set("Cache-Control", "private, no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodHead {
			return
		}
		if _, err := io.Copy(w, body); err != nil {
			log.DebugContext(r.Context(), "download interrupted", "document_id", d.ID, "err", err)
		}
	})
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, apierr.Body(msg, map[string]any{"code": code}))
}
