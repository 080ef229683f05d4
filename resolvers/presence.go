package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/observability/logging"
	"github.com/qchat/qchat/internal/ratelimit"
	"github.com/qchat/qchat/internal/reqctx"
)

type socketKey struct{}

// WebsocketInit authenticates a socket from its connection_init payload
// ({"authToken": "..."} or {"Authorization": "Bearer ..."}) and marks the user
// online.
func (r *Resolver) WebsocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, error) {
	if res, err := r.wsInitLimit.Take(ctx, reqctx.ClientIP(ctx)); err == nil && !res.Allowed {
		if st := graph.SocketStateFrom(ctx); st != nil {
			st.RateLimited()
		}
		r.obs.RateLimited("ws_init")
		r.security(ctx, slog.LevelWarn, "rate_limited", "limiter", "ws_init")
		return ctx, errors.New(ratelimit.Message(res))
	}
	token := payload.GetString("authToken")
	if token == "" {
		token = auth.BearerToken(payload.Authorization())
	}
	if token == "" {
		return ctx, errors.New("authentication required: connection_init payload needs authToken")
	}
	u, expires, err := r.auth.AuthenticateUntil(ctx, token)
	if err != nil {
		r.security(ctx, slog.LevelWarn, "ws_unauthorized")
		return ctx, errors.New("invalid or expired token")
	}
	r.chat.Connect(ctx, u.ID)
	r.obs.WebsocketOpened()
	logging.SetUser(ctx, u.ID)
	// The socket's context ends when its session is revoked anywhere, and
	// when the session expires, like a logout.
	ctx, cancel := context.WithCancel(ctx)
	state := graph.SocketStateFrom(ctx)
	end := func() {
		if state != nil {
			state.Revoke()
		}
		cancel()
	}
	untrack := r.chat.TrackSocket(token, end)
	expiry := time.AfterFunc(time.Until(expires), end)
	ctx = context.WithValue(ctx, socketKey{}, func() { expiry.Stop(); untrack(); cancel() })
	return withSubscriptionCounter(auth.WithUser(ctx, u, token)), nil
}

// WebsocketClose marks the user of an authenticated socket offline when its
// last socket closes.
func (r *Resolver) WebsocketClose(ctx context.Context) {
	u := auth.UserFrom(ctx)
	if u == nil {
		return
	}
	if release, ok := ctx.Value(socketKey{}).(func()); ok {
		release()
	}
	r.obs.WebsocketClosed()
	r.chat.Disconnect(ctx, u.ID)
}
