package db

import (
	"context"
	"strings"

	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// UsernameKey is the case-folded form that makes usernames unique.
func UsernameKey(username string) string { return strings.ToLower(username) }

// CreateUser stores a user with its first key. A taken username is a conflict.
func (s *Store) CreateUser(ctx context.Context, u *models.User, k *models.PublicKey) error {
	return s.CreateUserWithIdentity(ctx, u, k, nil)
}

// CreateUserWithIdentity stores a user with its first key and, for a
// version 2 account, the identity key that certifies it (nil for version 1).
func (s *Store) CreateUserWithIdentity(ctx context.Context, u *models.User, k *models.PublicKey, ik *models.IdentityKey) error {
	u.UsernameKey = UsernameKey(u.Username)
	u.CurrentKeyID = k.ID
	k.UserID = u.ID
	k.Current = true
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(u).Exec(ctx); err != nil {
			if err := translate(err, "username"); isConflict(err) {
				return models.Conflict("username %q is taken", u.Username)
			}
			return translate(err, "user")
		}
		if _, err := tx.NewInsert().Model(k).Exec(ctx); err != nil {
			return translate(err, "public key")
		}
		if ik != nil {
			ik.UserID = u.ID
			ik.Current = true
			if _, err := tx.NewInsert().Model(ik).Exec(ctx); err != nil {
				return translate(err, "identity key")
			}
		}
		return nil
	})
}

// UserByUsername finds a user regardless of case.
func (s *Store) UserByUsername(ctx context.Context, username string) (*models.User, error) {
	u := new(models.User)
	err := s.r.NewSelect().Model(u).Where("username_key = ?", UsernameKey(username)).Scan(ctx)
	if err != nil {
		return nil, translate(err, "user")
	}
	return u, nil
}

// UserByID finds one user.
func (s *Store) UserByID(ctx context.Context, id string) (*models.User, error) {
	u := new(models.User)
	if err := s.r.NewSelect().Model(u).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, translate(err, "user")
	}
	return u, nil
}

// UsersByIDs returns the users that exist among ids, in no particular order.
func (s *Store) UsersByIDs(ctx context.Context, ids []string) ([]*models.User, error) {
	var us []*models.User
	if len(ids) == 0 {
		return us, nil
	}
	if err := s.r.NewSelect().Model(&us).Where("id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, translate(err, "users")
	}
	return us, nil
}

// KeysByIDs returns the public keys that exist among ids.
func (s *Store) KeysByIDs(ctx context.Context, ids []string) ([]*models.PublicKey, error) {
	var ks []*models.PublicKey
	if len(ids) == 0 {
		return ks, nil
	}
	if err := s.r.NewSelect().Model(&ks).Where("id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, translate(err, "public keys")
	}
	return ks, nil
}

// RotateKey makes k the user's current key; older keys stay readable.
func (s *Store) RotateKey(ctx context.Context, userID string, k *models.PublicKey) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error { return rotateKey(ctx, tx, userID, k) })
}

func rotateKey(ctx context.Context, tx bun.Tx, userID string, k *models.PublicKey) error {
	k.UserID = userID
	k.Current = true
	if _, err := tx.NewUpdate().Model((*models.PublicKey)(nil)).Set("current = ?", false).
		Where("user_id = ? AND current = ?", userID, true).Exec(ctx); err != nil {
		return translate(err, "public key")
	}
	if _, err := tx.NewInsert().Model(k).Exec(ctx); err != nil {
		return translate(err, "public key")
	}
	res, err := tx.NewUpdate().Model((*models.User)(nil)).Set("current_key_id = ?", k.ID).
		Where("id = ?", userID).Exec(ctx)
	if err != nil {
		return translate(err, "user")
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return models.NotFound("user")
	}
	return nil
}

// CreateSession stores a session.
func (s *Store) CreateSession(ctx context.Context, sess *models.Session) error {
	_, err := s.w.NewInsert().Model(sess).Exec(ctx)
	return translate(err, "session")
}

// SessionByHash finds an unexpired session.
func (s *Store) SessionByHash(ctx context.Context, hash []byte) (*models.Session, error) {
	sess := new(models.Session)
	err := s.r.NewSelect().Model(sess).Where("token_hash = ? AND expires_at > ?", hash, models.Now()).Scan(ctx)
	if err != nil {
		return nil, translate(err, "session")
	}
	return sess, nil
}

// DeleteSession revokes a session.
func (s *Store) DeleteSession(ctx context.Context, hash []byte) error {
	_, err := s.w.NewDelete().Model((*models.Session)(nil)).Where("token_hash = ?", hash).Exec(ctx)
	return translate(err, "session")
}

// DeleteExpiredSessions removes sessions past their expiry and says how many.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	res, err := s.w.NewDelete().Model((*models.Session)(nil)).Where("expires_at <= ?", models.Now()).Exec(ctx)
	if err != nil {
		return 0, translate(err, "sessions")
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Contacts returns the ids of users who share a room or a direct conversation
// with userID (userID excluded): the audience of its presence.
func (s *Store) Contacts(ctx context.Context, userID string) ([]string, error) {
	var ids []string
	err := s.r.NewRaw(`
SELECT DISTINCT m2.user_id FROM room_members m1
  JOIN room_members m2 ON m2.room_id = m1.room_id
 WHERE m1.user_id = ? AND m2.user_id <> ?
UNION
SELECT user_b FROM direct_partners WHERE user_a = ?
UNION
SELECT user_a FROM direct_partners WHERE user_b = ?`, userID, userID, userID, userID).Scan(ctx, &ids)
	if err != nil {
		return nil, translate(err, "contacts")
	}
	return ids, nil
}

// SharesConversation reports whether a and b share a room or a direct conversation.
func (s *Store) SharesConversation(ctx context.Context, a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	var n int
	err := s.r.NewRaw(`
SELECT CASE WHEN EXISTS (
  SELECT 1 FROM room_members m1 JOIN room_members m2 ON m2.room_id = m1.room_id
   WHERE m1.user_id = ? AND m2.user_id = ?
) OR EXISTS (SELECT 1 FROM messages WHERE conversation = ?) THEN 1 ELSE 0 END`,
		a, b, DirectConversation(a, b)).Scan(ctx, &n)
	if err != nil {
		return false, translate(err, "contacts")
	}
	return n > 0, nil
}

// SharingConversation returns which of others share a room or a direct
// conversation with userID (userID itself does). It costs one query when
// every one of them is found in a shared room, as in a room's member list,
// and a second for the rest, which asks for one row of each direct
// conversation rather than reading its history.
func (s *Store) SharingConversation(ctx context.Context, userID string, others []string) (map[string]bool, error) {
	out := make(map[string]bool, len(others))
	var ask []string
	for _, o := range others {
		if o == userID {
			out[o] = true
		} else if !out[o] {
			ask = append(ask, o)
		}
	}
	if len(ask) == 0 {
		return out, nil
	}
	var inRooms []string
	if err := s.r.NewRaw(`
SELECT DISTINCT m2.user_id FROM room_members m1
  JOIN room_members m2 ON m2.room_id = m1.room_id
 WHERE m1.user_id = ? AND m2.user_id IN (?)`, userID, bun.List(ask)).Scan(ctx, &inRooms); err != nil {
		return nil, translate(err, "contacts")
	}
	for _, id := range inRooms {
		out[id] = true
	}
	var q strings.Builder
	var args []any
	for _, o := range ask {
		if out[o] {
			continue
		}
		if q.Len() > 0 {
			q.WriteString("\nUNION ALL ")
		}
		// EXISTS stops at the first row of the conversation's index.
		q.WriteString("SELECT ? WHERE EXISTS (SELECT 1 FROM messages WHERE conversation = ?)")
		args = append(args, o, DirectConversation(userID, o))
	}
	if q.Len() == 0 {
		return out, nil
	}
	var direct []string
	if err := s.r.NewRaw(q.String(), args...).Scan(ctx, &direct); err != nil {
		return nil, translate(err, "contacts")
	}
	for _, id := range direct {
		out[id] = true
	}
	return out, nil
}
