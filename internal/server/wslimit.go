package server

import (
	"context"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/ratelimit"
	"github.com/qchat/qchat/internal/reqctx"
)

// socketOperationLimit counts every operation sent over an open websocket as
// if it had come as its own HTTP request: against its user's bucket (a socket
// is signed in once connection_init succeeds), or the client IP's window
// otherwise. Without it, one upgrade would buy unlimited queries and
// mutations. Plain HTTP operations are already counted by the middleware.
type socketOperationLimit struct {
	anon, user ratelimit.Limiter
	rejected   func(ctx context.Context)
	log        *slog.Logger
}

var (
	_ graphql.HandlerExtension     = socketOperationLimit{}
	_ graphql.OperationInterceptor = socketOperationLimit{}
)

func (socketOperationLimit) ExtensionName() string                   { return "SocketOperationLimit" }
func (socketOperationLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (l socketOperationLimit) InterceptOperation(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
	if graph.SocketStateFrom(ctx) == nil {
		return next(ctx)
	}
	limiter, key := l.anon, reqctx.ClientIP(ctx)
	if u := auth.UserFrom(ctx); u != nil {
		limiter, key = l.user, u.ID
	}
	res, err := limiter.Take(ctx, key)
	if err != nil {
		l.log.WarnContext(ctx, "rate limiter unavailable, allowing", "err", err)
		return next(ctx)
	}
	if res.Allowed {
		return next(ctx)
	}
	l.rejected(ctx)
	// A one-shot answer: the transport must not loop on a rejected operation.
	return graphql.OneShot(&graphql.Response{Errors: gqlerror.List{
		graph.AsGQL(ratelimit.Rejection(res)),
	}})
}

func socketLimitRejected(d Deps) func(ctx context.Context) {
	return func(ctx context.Context) {
		d.Metrics.RateLimited("api")
		d.Log.WarnContext(ctx, "security: rate_limited", "event", "rate_limited", "limiter", "api", "transport", "websocket",
			"ip", reqctx.ClientIP(ctx))
	}
}
