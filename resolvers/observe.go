package resolvers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/ratelimit"
	"github.com/qchat/qchat/internal/reqctx"
)

// Observer receives the events operators count at the GraphQL edge
// (metrics.Metrics implements it; the domain counts sent messages itself).
type Observer interface {
	SubscriptionStarted()
	SubscriptionEnded()
	WebsocketOpened()
	WebsocketClosed()
	RateLimited(limiter string)
}

type noObserver struct{}

func (noObserver) SubscriptionStarted() {}
func (noObserver) SubscriptionEnded()   {}
func (noObserver) WebsocketOpened()     {}
func (noObserver) WebsocketClosed()     {}
func (noObserver) RateLimited(string)   {}

// security writes one security-event line through the domain's logger.
func (r *Resolver) security(ctx context.Context, level slog.Level, event string, attrs ...any) {
	r.chat.Security(ctx, level, event, attrs...)
}

// Failed logins are counted twice: per client IP and username, so that
// someone's typos never block another person's login from the same address
// (a household, an office behind NAT), and per client IP with a looser cap,
// so that trying one password on many usernames (credential stuffing) still
// stops. Failed registrations (a taken name) have their own budget and never
// block a login.

// loginKey is the per-(IP, username) key. The username is hashed: keys stay
// short whatever a client sends, and no username is written to Redis.
func loginKey(ip, username string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(username)))
	return ip + "|" + hex.EncodeToString(sum[:12])
}

// checkLoginLimit refuses a login for username from a client IP that has used
// up either budget of failed logins.
func (r *Resolver) checkLoginLimit(ctx context.Context, username string) error {
	ip := reqctx.ClientIP(ctx)
	if err := r.checkLimit(ctx, r.loginLimit, loginKey(ip, username), "auth"); err != nil {
		return err
	}
	return r.checkLimit(ctx, r.loginIPLimit, ip, "auth_ip")
}

// loginFailed counts a failed login against both budgets.
func (r *Resolver) loginFailed(ctx context.Context, username string) {
	ip := reqctx.ClientIP(ctx)
	r.spend(ctx, r.loginLimit, loginKey(ip, username))
	r.spend(ctx, r.loginIPLimit, ip)
}

// loginSucceeded forgets the failed logins of this IP and username: the
// person got in. The per-IP count stays, or a stuffer holding one valid
// account could reset it at will.
func (r *Resolver) loginSucceeded(ctx context.Context, username string) {
	if err := r.loginLimit.Reset(ctx, loginKey(reqctx.ClientIP(ctx), username)); err != nil {
		r.log.WarnContext(ctx, "auth rate limiter unavailable", "err", err)
	}
}

// checkRegisterLimit refuses a registration from a client IP with too many
// failed registrations.
func (r *Resolver) checkRegisterLimit(ctx context.Context) error {
	return r.checkLimit(ctx, r.registerLimit, reqctx.ClientIP(ctx), "register")
}

// registerFailed counts a failed registration against the client IP.
func (r *Resolver) registerFailed(ctx context.Context) {
	r.spend(ctx, r.registerLimit, reqctx.ClientIP(ctx))
}

// checkLimit answers RATE_LIMITED when key has no budget left in l. An
// unavailable limiter allows: its outage must not become the API's.
func (r *Resolver) checkLimit(ctx context.Context, l ratelimit.Limiter, key, name string) error {
	res, err := l.Peek(ctx, key)
	if err != nil {
		r.log.WarnContext(ctx, "auth rate limiter unavailable, allowing", "limiter", name, "err", err)
		return nil
	}
	if res.Allowed {
		return nil
	}
	r.obs.RateLimited(name)
	r.security(ctx, slog.LevelWarn, "rate_limited", "limiter", name)
	// The edge answers it with the HTTP shape of the other limits: 429 and
	// the headers the error carries.
	return ratelimit.Rejection(res)
}

// spend counts one failure against key in l.
func (r *Resolver) spend(ctx context.Context, l ratelimit.Limiter, key string) {
	if _, err := l.Take(ctx, key); err != nil {
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
		return nil, apierr.New(apierr.CodeRateLimited, "too many subscriptions on this connection", map[string]any{"limit": r.maxSubs})
	}
	r.obs.SubscriptionStarted()
	return func() { n.Add(-1); r.obs.SubscriptionEnded() }, nil
}
