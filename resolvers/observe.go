package resolvers

import (
	"context"
	"log/slog"
	"net/http"
	"sync/atomic"

	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/clientip"
	"github.com/qchat/qchat/internal/middleware"
	"github.com/qchat/qchat/internal/ratelimit"
)

// Observer receives the events operators count (metrics.Metrics implements it).
type Observer interface {
	MessageSent()
	SubscriptionStarted()
	SubscriptionEnded()
	WebsocketOpened()
	WebsocketClosed()
	RateLimited(limiter string)
}

type noObserver struct{}

func (noObserver) MessageSent()         {}
func (noObserver) SubscriptionStarted() {}
func (noObserver) SubscriptionEnded()   {}
func (noObserver) WebsocketOpened()     {}
func (noObserver) WebsocketClosed()     {}
func (noObserver) RateLimited(string)   {}

// security writes one security-event line: what happened, to whom, from where.
// It never carries a password, token or key.
func (r *Resolver) security(ctx context.Context, level slog.Level, event string, attrs ...any) {
	base := []any{"event", event, "ip", clientip.From(ctx), "request_id", middleware.RequestIDFrom(ctx)}
	if u := userID(ctx); u != "" {
		base = append(base, "user_id", u)
	}
	r.log.Log(ctx, level, "security: "+event, append(base, attrs...)...)
}

// checkAuthLimit refuses a login or registration from a client IP that has
// used up its budget of failed attempts.
func (r *Resolver) checkAuthLimit(ctx context.Context) error {
	ip := clientip.From(ctx)
	res, err := r.authLimit.Peek(ctx, ip)
	if err != nil {
		r.log.WarnContext(ctx, "auth rate limiter unavailable, allowing", "err", err)
		return nil
	}
	if res.Allowed {
		return nil
	}
	r.obs.RateLimited("auth")
	r.security(ctx, slog.LevelWarn, "rate_limited", "limiter", "auth")
	// Answer with the same HTTP shape as the other limits: 429 and its headers.
	middleware.SetStatus(ctx, http.StatusTooManyRequests, ratelimit.HeaderFor(res))
	return graph.NewCodedError(graph.CodeRateLimited, ratelimit.Message(res), map[string]any{"retryAfter": res.RetryAfterSeconds()})
}

// authFailed counts a failed login or registration against the client IP.
func (r *Resolver) authFailed(ctx context.Context) {
	if _, err := r.authLimit.Take(ctx, clientip.From(ctx)); err != nil {
		r.log.WarnContext(ctx, "auth rate limiter unavailable", "err", err)
	}
}

type subCountKey struct{}

// withSubscriptionCounter gives a websocket connection its subscription count.
func withSubscriptionCounter(ctx context.Context) context.Context {
	return context.WithValue(ctx, subCountKey{}, new(atomic.Int32))
}

// acquireSubscription reserves one of the connection's subscriptions; the
// returned release gives it back.
func (r *Resolver) acquireSubscription(ctx context.Context) (release func(), err error) {
	n, _ := ctx.Value(subCountKey{}).(*atomic.Int32)
	if n == nil || r.maxSubs <= 0 {
		r.obs.SubscriptionStarted()
		return r.obs.SubscriptionEnded, nil
	}
	if n.Add(1) > int32(r.maxSubs) {
		n.Add(-1)
		r.obs.RateLimited("subscriptions")
		return nil, graph.NewCodedError(graph.CodeRateLimited, "too many subscriptions on this connection", map[string]any{"limit": r.maxSubs})
	}
	r.obs.SubscriptionStarted()
	return func() { n.Add(-1); r.obs.SubscriptionEnded() }, nil
}
