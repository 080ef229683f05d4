package reqctx

import (
	"context"
	"sync"
)

// A request usually ends when its handler returns. A websocket need not:
// once upgraded it can be served by a goroutine of its own, so that the
// handler's goroutine, its deep stack of middleware frames and net/http's
// per-request state are released for the socket's whole life. The
// middlewares that act when a request ends (the request log, the request
// metrics, the server's socket accounting) then act when the socket ends.

type lifetime struct {
	mu       sync.Mutex
	detached bool
	ended    bool
	atEnd    []func()
}

type lifetimeKey struct{}

// WithLifetime lets the request of ctx be detached (see Detach).
func WithLifetime(ctx context.Context) context.Context {
	return context.WithValue(ctx, lifetimeKey{}, &lifetime{})
}

// Detach marks the request of ctx as going on after its handler returns; the
// caller must call end once when it has ended. ok is false when the request
// cannot be detached (no WithLifetime above it): the handler must then serve
// it to its end before returning. ctx's cancellation still follows the
// handler's return (net/http's): a detached request's work needs a context
// that does not, such as context.WithoutCancel(ctx).
func Detach(ctx context.Context) (end func(), ok bool) {
	l, _ := ctx.Value(lifetimeKey{}).(*lifetime)
	if l == nil {
		return nil, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.detached {
		return nil, false
	}
	l.detached = true
	return sync.OnceFunc(func() {
		l.mu.Lock()
		fns := l.atEnd
		l.atEnd, l.ended = nil, true
		l.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	}), true
}

// AtEnd runs fn when the request of ctx ends: now, unless the request was
// detached, and then when it ends. Middlewares call it after their next
// handler returns, so the innermost one's fn runs first, as without
// detaching.
func AtEnd(ctx context.Context, fn func()) {
	if l, _ := ctx.Value(lifetimeKey{}).(*lifetime); l != nil {
		l.mu.Lock()
		if l.detached && !l.ended {
			l.atEnd = append(l.atEnd, fn)
			l.mu.Unlock()
			return
		}
		l.mu.Unlock()
	}
	fn()
}
