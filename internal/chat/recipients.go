package chat

import (
	"context"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
)

// recipientCache keeps, per room, its members with their current keys (what
// every send checks an envelope against) and, per user, the current key (for
// direct messages); and the rooms and users that a new message's event names,
// so that a send does not query them again. Membership changes, room changes
// and key rotations invalidate entries at once on every instance (see
// invalidate.go); the short TTL bounds what a lost invalidation (a shared
// broker down) can leave stale.
type recipientCache struct {
	rooms    *otter.Cache[string, []db.RoomRecipient]
	users    *otter.Cache[string, db.RoomRecipient]
	roomRefs *otter.Cache[string, *models.Room]
	userRefs *otter.Cache[string, *models.User]
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
		roomRefs: otter.Must(&otter.Options[string, *models.Room]{
			MaximumSize:      50_000,
			ExpiryCalculator: otter.ExpiryWriting[string, *models.Room](recipientTTL),
		}),
		userRefs: otter.Must(&otter.Options[string, *models.User]{
			MaximumSize:      200_000,
			ExpiryCalculator: otter.ExpiryWriting[string, *models.User](recipientTTL),
		}),
	}
}

func (c recipientCache) close() {
	c.rooms.StopAllGoroutines()
	c.users.StopAllGoroutines()
	c.roomRefs.StopAllGoroutines()
	c.userRefs.StopAllGoroutines()
}

// cachedOr returns c's entry for key, or loads it, stores it and returns it.
func cachedOr[V any](ctx context.Context, c *otter.Cache[string, V], key string, load func(context.Context, string) (V, error)) (V, error) {
	if v, ok := c.GetIfPresent(key); ok {
		return v, nil
	}
	v, err := load(ctx, key)
	if err != nil {
		return v, err
	}
	c.Set(key, v)
	return v, nil
}

// roomRef returns a room as a message event names it. The room is shared:
// callers must not modify it.
func (s *Service) roomRef(ctx context.Context, id string) (*models.Room, error) {
	return cachedOr(ctx, s.recipients.roomRefs, id, s.store.RoomByID)
}

// UserRef returns a user as a message event names it, without the password
// hash, which has no business in events or other instances. The user is
// shared: callers must not modify it.
func (s *Service) UserRef(ctx context.Context, id string) (*models.User, error) {
	return cachedOr(ctx, s.recipients.userRefs, id, func(ctx context.Context, id string) (*models.User, error) {
		u, err := s.store.UserByID(ctx, id)
		if err == nil {
			u.PasswordHash = nil
		}
		return u, err
	})
}

// roomRecipients returns a room's members with their current keys. The slice
// is shared: callers must not modify it.
func (s *Service) roomRecipients(ctx context.Context, roomID string) ([]db.RoomRecipient, error) {
	return cachedOr(ctx, s.recipients.rooms, roomID, s.store.Recipients)
}

// userRecipients returns users with their current keys (missing users are
// left out).
func (s *Service) userRecipients(ctx context.Context, ids []string) ([]db.RoomRecipient, error) {
	out := make([]db.RoomRecipient, 0, len(ids))
	var missing []string
	for _, id := range ids {
		if rr, ok := s.recipients.users.GetIfPresent(id); ok {
			out = append(out, rr)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	rs, err := s.store.UserRecipients(ctx, missing)
	if err != nil {
		return nil, err
	}
	for _, rr := range rs {
		s.recipients.users.Set(rr.UserID, rr)
	}
	return append(out, rs...), nil
}

// forget applies a "member" invalidation (key room|user: the owner may have
// changed too), a "room" one (renamed, new code, deleted) or a "user" one (a
// key rotation: every room the user is in may hold the old key).
func (c recipientCache) forget(what, key string) {
	switch what {
	case "member":
		room, _, _ := strings.Cut(key, "|")
		c.rooms.Invalidate(room)
		c.roomRefs.Invalidate(room)
	case "room":
		c.roomRefs.Invalidate(key)
	case "user":
		c.users.Invalidate(key)
		c.userRefs.Invalidate(key)
		c.rooms.InvalidateAll()
	}
}
