package resolvers

import (
	"context"
	"encoding/hex"

	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
)

// invalidate drops a cached entry here at once and tells the other
// instances, through the broker, to do the same.
func (r *Resolver) invalidate(ctx context.Context, what, key string) {
	r.applyInvalidation(broker.Invalidation{What: what, Key: key})
	ev := &broker.Event{Kind: broker.Invalidate, Inval: &broker.Invalidation{What: what, Key: key}}
	if err := r.broker.Publish(context.WithoutCancel(ctx), []string{broker.InvalidationTopic}, ev); err != nil {
		r.log.WarnContext(ctx, "publish invalidation", "what", what, "err", err)
	}
}

func (r *Resolver) applyInvalidation(inv broker.Invalidation) {
	switch inv.What {
	case "session":
		if h, err := hex.DecodeString(inv.Key); err == nil {
			r.auth.Forget(h)
		}
		r.sockets.revoke(inv.Key)
	case "user":
		r.auth.ForgetUser(inv.Key)
		r.recipients.forget(inv.What, inv.Key)
	case "member":
		r.members.Invalidate(inv.Key)
		r.recipients.forget(inv.What, inv.Key)
	case "room":
		r.recipients.forget(inv.What, inv.Key)
	}
}

// RunInvalidations applies the invalidations other instances publish until
// ctx ends. Run it once per process, in its own goroutine. If the broker drops
// the subscription (it fell behind), it subscribes again.
func (r *Resolver) RunInvalidations(ctx context.Context) {
	for ctx.Err() == nil {
		in, err := r.broker.Subscribe(ctx, broker.InvalidationTopic)
		if err != nil {
			return // broker closed
		}
		for ev := range in {
			if ev.Kind == broker.Invalidate && ev.Inval != nil {
				r.applyInvalidation(*ev.Inval)
			}
		}
	}
}

func sessionKey(token string) string { return hex.EncodeToString(auth.TokenHash(token)) }

func memberKey(roomID, userID string) string { return roomID + "|" + userID }
