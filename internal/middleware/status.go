package middleware

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
)

// StatusControl lets code deep inside a request (a resolver) choose the HTTP
// status and headers of its response: a login refused by the auth rate limit
// answers 429 with Retry-After, like every other limit, although gqlgen
// writes GraphQL responses as 200.
type StatusControl struct {
	mu     sync.Mutex
	status int
	header http.Header
}

type statusKey struct{}

// Set asks for status and header on the response of ctx's request; outside a
// request wrapped by WithStatusControl it does nothing.
func SetStatus(ctx context.Context, status int, header http.Header) {
	c, _ := ctx.Value(statusKey{}).(*StatusControl)
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = status
	c.header = header
}

// WithStatusControl lets handlers below it use SetStatus. Websocket upgrades
// pass through untouched (their response is the upgrade).
func WithStatusControl(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, r)
			return
		}
		c := &StatusControl{}
		sw := &statusWriter{ResponseWriter: w, c: c}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), statusKey{}, c)))
	})
}

type statusWriter struct {
	http.ResponseWriter
	c       *StatusControl
	written bool
}

func (w *statusWriter) apply(status int) int {
	if w.written {
		return status
	}
	w.written = true
	w.c.mu.Lock()
	defer w.c.mu.Unlock()
	if w.c.status == 0 || status != http.StatusOK {
		return status
	}
	for k, vs := range w.c.header {
		w.ResponseWriter.Header()[k] = vs
	}
	return w.c.status
}

func (w *statusWriter) WriteHeader(status int) { w.ResponseWriter.WriteHeader(w.apply(status)) }

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.written {
		w.WriteHeader(http.StatusOK)
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		if !w.written {
			w.WriteHeader(http.StatusOK)
		}
		f.Flush()
	}
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(w.ResponseWriter).Hijack()
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
