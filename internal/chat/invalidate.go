package chat

import (
	"context"
	"encoding/hex"

	"github.com/qchat/qchat/internal/broker"
)

// invalidate drops cached entries of one kind here at once and tells the
// other instances, through the broker, to do the same: in one event whatever
// the number of keys.
func (s *Service) invalidate(ctx context.Context, what string, keys ...string) {
	if len(keys) == 0 {
		return
	}
	inv := &broker.Invalidation{What: what, Key: keys[0], More: keys[1:]}
	s.applyInvalidation(*inv)
	ev := &broker.Event{Kind: broker.Invalidate, Inval: inv}
	if err := s.broker.Publish(context.WithoutCancel(ctx), []string{broker.InvalidationTopic}, ev); err != nil {
		s.log.WarnContext(ctx, "publish invalidation", "what", what, "err", err)
	}
}

func (s *Service) applyInvalidation(inv broker.Invalidation) {
	for _, key := range inv.Keys() {
		switch inv.What {
		case "session":
			if h, err := hex.DecodeString(key); err == nil {
				s.auth.Forget(h)
			}
			s.sockets.revoke(key)
		case "user":
			s.auth.ForgetUser(key)
			s.recipients.forget(inv.What, key)
			s.signers.Invalidate(key)
		case "member":
			s.members.Invalidate(key)
			s.recipients.forget(inv.What, key)
		case "room":
			s.recipients.forget(inv.What, key)
		}
	}
}

// RunInvalidations applies the invalidations other instances publish until
// ctx ends. Run it once per process, in its own goroutine. If the broker drops
// the subscription (it fell behind), it subscribes again.
func (s *Service) RunInvalidations(ctx context.Context) {
	for ctx.Err() == nil {
		in, err := s.broker.Subscribe(ctx, broker.InvalidationTopic)
		if err != nil {
			return // broker closed
		}
		for ev := range in {
			if ev.Kind == broker.Invalidate && ev.Inval != nil {
				s.applyInvalidation(*ev.Inval)
			}
		}
	}
}

func memberKey(roomID, userID string) string { return roomID + "|" + userID }
