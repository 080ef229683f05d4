package middleware

import (
	"bufio"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/reqctx"
)

// Recover turns a panic in any handler or middleware below it into HTTP 500
// with the contract's INTERNAL_SERVER_ERROR and the request id, and logs the
// panic with its stack under that id. The client learns nothing about the
// cause. (Resolver panics never get here: gqlgen recovers them per field.)
//
// http.ErrAbortHandler is re-panicked: it is how a handler asks net/http to
// abort the response silently. A panic after the response has started cannot
// become a clean 500 either — the status is already on the wire — so it is
// logged and the connection aborted, leaving the client a truncated response
// instead of one with an error glued to its end.
//
// Place it inside RequestID, so the id is known, and outside everything else.
func Recover(log *slog.Logger) func(http.Handler) http.Handler {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &startedWriter{ResponseWriter: w}
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				rid := reqctx.RequestID(r.Context())
				log.ErrorContext(r.Context(), "panic in http handler",
					"method", r.Method, "path", r.URL.Path,
					"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				if rw.started {
					panic(http.ErrAbortHandler)
				}
				writeError(w, http.StatusInternalServerError, "internal server error",
					map[string]any{"code": apierr.CodeInternal, "requestId": rid})
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

// startedWriter notes whether the response has begun. It implements Flusher
// and Hijacker itself (those start the response too) and Unwrap for
// http.ResponseController, so streaming and websockets pass through.
type startedWriter struct {
	http.ResponseWriter
	started bool
}

func (s *startedWriter) WriteHeader(status int) {
	if status >= 200 {
		s.started = true
	}
	s.ResponseWriter.WriteHeader(status)
}

func (s *startedWriter) Write(p []byte) (int, error) {
	s.started = true
	return s.ResponseWriter.Write(p)
}

func (s *startedWriter) Flush() {
	s.started = true
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *startedWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	s.started = true
	return http.NewResponseController(s.ResponseWriter).Hijack()
}

func (s *startedWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
