package resolvers

import (
	"context"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/qchat/qchat/db"
)

// recipientCache keeps, per room, its members with their current keys (what
// every send checks an envelope against) and, per user, the current key (for
// direct messages). Membership changes and key rotations invalidate entries at
// once on every instance (see invalidate.go); the short TTL bounds what a lost
// invalidation (a shared broker down) can leave stale.
type recipientCache struct {
	rooms *otter.Cache[string, []db.RoomRecipient]
	users *otter.Cache[string, db.RoomRecipient]
}

const recipientTTL = 5 * time.Second

func newRecipientCache() recipientCache {
	return recipientCache{
		rooms: otter.Must(&otter.Options[string, []db.RoomRecipient]{
			MaximumSize:      50_000,
			ExpiryCalculator: otter.ExpiryWriting[string, []db.RoomRecipient](recipientTTL),
		}),
		users: otter.Must(&otter.Options[string, db.RoomRecipient]{
			MaximumSize:      200_000,
			ExpiryCalculator: otter.ExpiryWriting[string, db.RoomRecipient](recipientTTL),
		}),
	}
}

func (c recipientCache) close() {
	c.rooms.StopAllGoroutines()
	c.users.StopAllGoroutines()
}

// roomRecipients returns a room's members with their current keys. The slice
// is shared: callers must not modify it.
func (r *Resolver) roomRecipients(ctx context.Context, roomID string) ([]db.RoomRecipient, error) {
	if rs, ok := r.recipients.rooms.GetIfPresent(roomID); ok {
		return rs, nil
	}
	rs, err := r.store.Recipients(ctx, roomID)
	if err != nil {
		return nil, err
	}
	r.recipients.rooms.Set(roomID, rs)
	return rs, nil
}

// userRecipients returns users with their current keys (missing users are
// left out).
func (r *Resolver) userRecipients(ctx context.Context, ids []string) ([]db.RoomRecipient, error) {
	out := make([]db.RoomRecipient, 0, len(ids))
	var missing []string
	for _, id := range ids {
		if rr, ok := r.recipients.users.GetIfPresent(id); ok {
			out = append(out, rr)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	rs, err := r.store.UserRecipients(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, rr := range rs {
		r.recipients.users.Set(rr.UserID, rr)
	}
	return append(out, rs...), nil
}

// forgetRecipients applies a "member" invalidation (key room|user) or a
// "user" one (a key rotation: every room the user is in may hold the old key).
func (c recipientCache) forget(what, key string) {
	switch what {
	case "member":
		room, _, _ := strings.Cut(key, "|")
		c.rooms.Invalidate(room)
	case "user":
		c.users.Invalidate(key)
		c.rooms.InvalidateAll()
	}
}
