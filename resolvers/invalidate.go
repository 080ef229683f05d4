package resolvers

import (
	"context"
	"encoding/hex"

	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
)

// invalidate drops cached entries of one kind here at once and tells the
// other instances, through the broker, to do the same: in one event whatever
// the number of keys.
func (r *Resolver) invalidate(ctx context.Context, what string, keys ...string) {
	if len(keys) == 0 {
		return
	}
	inv := &broker.Invalidation{What: what, Key: keys[0], More: keys[1:]}
	r.applyInvalidation(*inv)
	ev := &broker.Event{Kind: broker.Invalidate, Inval: inv}
	if err := r.broker.Publish(context.WithoutCancel(ctx), []string{broker.InvalidationTopic}, ev); err != nil {
		r.log.WarnContext(ctx, "publish invalidation", "what", what, "err", err)
	}
}

func (r *Resolver) applyInvalidation(inv broker.Invalidation) {
	for _, key := range inv.Keys() {
		switch inv.What {
		case "session":
			if h, err := hex.DecodeString(key); err == nil {
				r.auth.Forget(h)
			}
			r.sockets.revoke(key)
		case "user":
			r.auth.ForgetUser(key)
			r.recipients.forget(inv.What, key)
		case "member":
			r.members.Invalidate(key)
			r.recipients.forget(inv.What, key)
		case "room":
			r.recipients.forget(inv.What, key)
		}
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
