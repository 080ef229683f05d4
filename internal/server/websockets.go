package server

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/reqctx"
)

// websockets tracks open sockets: a cap per client IP, and the shutdown that
// closes them all and waits for their handlers.
type websockets struct {
	maxPerIP int
	// rejected is told of each socket refused for the per-IP cap.
	rejected func(r *http.Request)

	mu    sync.Mutex
	perIP map[string]int
	wg    sync.WaitGroup

	stopping atomic.Bool
	stop     context.Context
	cancel   context.CancelFunc
}

func newWebsockets(maxPerIP int, rejected func(r *http.Request)) *websockets {
	ctx, cancel := context.WithCancel(context.Background())
	return &websockets{maxPerIP: maxPerIP, rejected: rejected, perIP: map[string]int{}, stop: ctx, cancel: cancel}
}

func (ws *websockets) shuttingDown() bool { return ws.stopping.Load() }

func (ws *websockets) shutdown() {
	ws.stopping.Store(true)
	ws.cancel()
}

func (ws *websockets) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { ws.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// track wraps the upgrade requests of next: it refuses a client IP over its
// cap with 429, refuses new sockets during shutdown with 503, and ends each
// socket's context when the shutdown begins (gqlgen then closes the socket).
func (ws *websockets) track(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") == "" {
			next.ServeHTTP(w, r)
			return
		}
		if ws.stopping.Load() {
			writeError(w, http.StatusServiceUnavailable, apierr.CodeInternal, "server shutting down")
			return
		}
		ip := reqctx.ClientIP(r.Context())
		ws.mu.Lock()
		if ws.maxPerIP > 0 && ws.perIP[ip] >= ws.maxPerIP {
			ws.mu.Unlock()
			ws.rejected(r)
			w.Header().Set("Retry-After", "60")
			writeError(w, http.StatusTooManyRequests, apierr.CodeRateLimited, "too many open websockets from this address")
			return
		}
		ws.perIP[ip]++
		ws.wg.Add(1)
		ws.mu.Unlock()
		// The socket's context ends with the socket, or the shutdown: not
		// with the upgrade handler, which may return while the socket is
		// served on (reqctx.Detach).
		ctx, cancel := context.WithCancel(graph.WithSocketState(context.WithoutCancel(r.Context())))
		stop := context.AfterFunc(ws.stop, cancel)
		next.ServeHTTP(w, r.WithContext(ctx))
		reqctx.AtEnd(ctx, func() {
			cancel()
			stop()
			// The socket counts as open until its close frame is out (see
			// graph.SocketState.WaitClosed), so wait covers the handshake.
			graph.SocketStateFrom(ctx).WaitClosed()
			ws.mu.Lock()
			if ws.perIP[ip]--; ws.perIP[ip] <= 0 {
				delete(ws.perIP, ip)
			}
			ws.mu.Unlock()
			ws.wg.Done()
		})
	})
}
