package resolvers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/clientip"
	"github.com/qchat/qchat/internal/observability/logging"
	"github.com/qchat/qchat/internal/ratelimit"
	"github.com/qchat/qchat/models"
)

// WebsocketInit authenticates a socket from its connection_init payload
// ({"authToken": "..."} or {"Authorization": "Bearer ..."}) and marks the user
// online.
func (r *Resolver) WebsocketInit(ctx context.Context, payload transport.InitPayload) (context.Context, error) {
	if res, err := r.wsInitLimit.Take(ctx, clientip.From(ctx)); err == nil && !res.Allowed {
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
	if online, err := r.presence.Connect(ctx, u.ID); err != nil {
		r.log.WarnContext(ctx, "presence connect", "err", err)
	} else if online {
		r.announce(ctx, u.ID, true)
	}
	r.obs.WebsocketOpened()
	logging.SetUser(ctx, u.ID)
	// The socket's context ends when its session is revoked anywhere.
	ctx, cancel := context.WithCancel(ctx)
	sk := &socket{cancel: cancel, state: graph.SocketStateFrom(ctx)}
	hash := sessionKey(token)
	r.sockets.add(hash, sk)
	// The session's end closes the socket too, like a logout.
	expiry := time.AfterFunc(time.Until(expires), func() {
		if sk.state != nil {
			sk.state.Revoke()
		}
		cancel()
	})
	ctx = context.WithValue(ctx, socketKey{}, func() { expiry.Stop(); r.sockets.remove(hash, sk); cancel() })
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
	ctx = context.WithoutCancel(ctx)
	if offline, err := r.presence.Disconnect(ctx, u.ID); err != nil {
		r.log.WarnContext(ctx, "presence disconnect", "err", err)
	} else if offline {
		r.announce(ctx, u.ID, false)
	}
}

// announce tells the user's contacts (and the user's own other sockets) that
// it came online or went offline.
func (r *Resolver) announce(ctx context.Context, userID string, online bool) {
	contacts, err := r.store.Contacts(ctx, userID)
	if err != nil {
		r.log.WarnContext(ctx, "presence contacts", "err", err)
		return
	}
	r.publish(ctx, contacts, &broker.Event{Kind: broker.Presence, Presence: &models.PresenceEvent{UserID: userID, Online: online}})
}

// online is a user's presence as the caller may see it: the truth for the
// user and for those who share a room or a direct conversation with it (who
// hear its presence events anyway), false for anyone else, so that a
// stranger polling userByUsername(x) { online } cannot watch x come and go.
// Without a caller (a login's own payload) it is false too.
//
// Sharing is asked first and presence only for those who share: the answer's
// cost, and so its timing, does not depend on a stranger's presence.
func (r *Resolver) online(ctx context.Context, userID string) (bool, error) {
	viewer := auth.UserFrom(ctx)
	if viewer == nil {
		return false, nil
	}
	l := r.loaders(ctx)
	if userID != viewer.ID {
		shared, err := l.Sharing().Load(ctx, userPair{viewer: viewer.ID, other: userID})
		if err != nil || !shared {
			return false, err
		}
	}
	return l.Online().Load(ctx, userID)
}
