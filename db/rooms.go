package db

import (
	"context"

	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// CreateRoom stores a room and its first members in one transaction.
func (s *Store) CreateRoom(ctx context.Context, r *models.Room, members []*models.RoomMember) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewInsert().Model(r).Exec(ctx); err != nil {
			return translate(err, "room")
		}
		if len(members) > 0 {
			if _, err := tx.NewInsert().Model(&members).Exec(ctx); err != nil {
				return translate(err, "room member")
			}
		}
		return nil
	})
}

// RoomByID finds a room.
func (s *Store) RoomByID(ctx context.Context, id string) (*models.Room, error) {
	r := new(models.Room)
	if err := s.r.NewSelect().Model(r).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, translate(err, "room")
	}
	return r, nil
}

// RoomsByIDs returns the rooms that exist among ids.
func (s *Store) RoomsByIDs(ctx context.Context, ids []string) ([]*models.Room, error) {
	var rs []*models.Room
	if len(ids) == 0 {
		return rs, nil
	}
	if err := s.r.NewSelect().Model(&rs).Where("id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, translate(err, "rooms")
	}
	return rs, nil
}

// RoomByCode finds a room by invite code.
func (s *Store) RoomByCode(ctx context.Context, code string) (*models.Room, error) {
	r := new(models.Room)
	if err := s.r.NewSelect().Model(r).Where("code = ?", code).Scan(ctx); err != nil {
		return nil, translate(err, "room")
	}
	return r, nil
}

// Membership returns userID's membership of roomID, or ErrNotFound.
func (s *Store) Membership(ctx context.Context, roomID, userID string) (*models.RoomMember, error) {
	m := new(models.RoomMember)
	err := s.r.NewSelect().Model(m).Where("room_id = ? AND user_id = ?", roomID, userID).Scan(ctx)
	if err != nil {
		return nil, translate(err, "room")
	}
	return m, nil
}

// MembersOfRooms returns the members of every room in ids, oldest member first.
func (s *Store) MembersOfRooms(ctx context.Context, ids []string) ([]*models.RoomMember, error) {
	var ms []*models.RoomMember
	if len(ids) == 0 {
		return ms, nil
	}
	err := s.r.NewSelect().Model(&ms).Where("room_id IN (?)", bun.List(ids)).
		OrderExpr("joined_at, user_id").Scan(ctx)
	if err != nil {
		return nil, translate(err, "room members")
	}
	return ms, nil
}

// RoomRecipient is a member with its current key, what a sender seals for.
type RoomRecipient struct {
	UserID    string              `bun:"user_id"`
	KeyID     string              `bun:"key_id"`
	Algorithm models.KeyAlgorithm `bun:"algorithm"`
}

// Recipients lists the members of a room with their current keys.
func (s *Store) Recipients(ctx context.Context, roomID string) ([]RoomRecipient, error) {
	var rs []RoomRecipient
	err := s.r.NewRaw(`
SELECT rm.user_id, k.id AS key_id, k.algorithm FROM room_members rm
  JOIN users u ON u.id = rm.user_id
  JOIN user_keys k ON k.id = u.current_key_id
 WHERE rm.room_id = ?`, roomID).Scan(ctx, &rs)
	if err != nil {
		return nil, translate(err, "room members")
	}
	return rs, nil
}

// UserRecipients lists users with their current keys.
func (s *Store) UserRecipients(ctx context.Context, userIDs []string) ([]RoomRecipient, error) {
	var rs []RoomRecipient
	err := s.r.NewRaw(`
SELECT u.id AS user_id, k.id AS key_id, k.algorithm FROM users u
  JOIN user_keys k ON k.id = u.current_key_id
 WHERE u.id IN (?)`, bun.List(userIDs)).Scan(ctx, &rs)
	if err != nil {
		return nil, translate(err, "users")
	}
	return rs, nil
}

// MemberCounts returns the number of members of each room in ids.
func (s *Store) MemberCounts(ctx context.Context, ids []string) (map[string]int, error) {
	var rows []struct {
		RoomID string `bun:"room_id"`
		N      int    `bun:"n"`
	}
	out := make(map[string]int, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	err := s.r.NewSelect().Model((*models.RoomMember)(nil)).Column("room_id").ColumnExpr("COUNT(*) AS n").
		Where("room_id IN (?)", bun.List(ids)).Group("room_id").Scan(ctx, &rows)
	if err != nil {
		return nil, translate(err, "room members")
	}
	for _, r := range rows {
		out[r.RoomID] = r.N
	}
	return out, nil
}

// AddMember adds a member; an existing member is a conflict.
func (s *Store) AddMember(ctx context.Context, m *models.RoomMember) error {
	_, err := s.w.NewInsert().Model(m).Exec(ctx)
	if err := translate(err, "room member"); err != nil {
		if isConflict(err) {
			return models.Conflict("user is already a member of this room")
		}
		return err
	}
	return nil
}

// AddMemberIfRoom adds a member unless the room already holds limit members
// (limit 0: no limit); a full room is ErrConflict with full as its message.
//
// The count and the insert share a transaction, and concurrent joins of one
// room take turns: under PostgreSQL's READ COMMITTED each would otherwise
// count the same members and all insert. The room's row is locked FOR NO KEY
// UPDATE, which orders joins among themselves but not against the foreign-key
// checks (KEY SHARE) of messages being sent to the room. On SQLite every
// write transaction already runs alone (one writer connection, BEGIN
// IMMEDIATE).
func (s *Store) AddMemberIfRoom(ctx context.Context, m *models.RoomMember, limit int, full string) error {
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		if limit > 0 {
			if s.dialect == Postgres {
				var id string
				err := tx.NewSelect().Model((*models.Room)(nil)).Column("id").Where("id = ?", m.RoomID).
					For("NO KEY UPDATE").Scan(ctx, &id)
				if err != nil {
					return translate(err, "room")
				}
			}
			n, err := tx.NewSelect().Model((*models.RoomMember)(nil)).Where("room_id = ?", m.RoomID).Count(ctx)
			if err != nil {
				return translate(err, "room members")
			}
			if int(n) >= limit {
				return models.Conflict("%s", full)
			}
		}
		_, err := tx.NewInsert().Model(m).Exec(ctx)
		if err := translate(err, "room member"); err != nil {
			if isConflict(err) {
				return models.Conflict("user is already a member of this room")
			}
			return err
		}
		return nil
	})
}

// RemoveMember removes a member. When the owner leaves, ownership passes to the
// longest-standing admin, else the longest-standing member; a room left empty
// is deleted. It reports whether the room was deleted.
func (s *Store) RemoveMember(ctx context.Context, roomID, userID string) (deleted bool, err error) {
	err = s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		res, err := tx.NewDelete().Model((*models.RoomMember)(nil)).
			Where("room_id = ? AND user_id = ?", roomID, userID).Exec(ctx)
		if err != nil {
			return translate(err, "room member")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return models.NotFound("room member")
		}
		var rest []*models.RoomMember
		if err := tx.NewSelect().Model(&rest).Where("room_id = ?", roomID).
			OrderExpr("joined_at, user_id").Scan(ctx); err != nil {
			return translate(err, "room members")
		}
		if len(rest) == 0 {
			deleted = true
			_, err := tx.NewDelete().Model((*models.Room)(nil)).Where("id = ?", roomID).Exec(ctx)
			return translate(err, "room")
		}
		room := new(models.Room)
		if err := tx.NewSelect().Model(room).Where("id = ?", roomID).Scan(ctx); err != nil {
			return translate(err, "room")
		}
		if room.OwnerID != userID {
			return nil
		}
		heir := rest[0]
		for _, m := range rest {
			if m.Role == models.RoomRoleAdmin {
				heir = m
				break
			}
		}
		if _, err := tx.NewUpdate().Model((*models.RoomMember)(nil)).Set("role = ?", models.RoomRoleOwner).
			Where("room_id = ? AND user_id = ?", roomID, heir.UserID).Exec(ctx); err != nil {
			return translate(err, "room member")
		}
		_, err = tx.NewUpdate().Model((*models.Room)(nil)).Set("owner_id = ?", heir.UserID).
			Where("id = ?", roomID).Exec(ctx)
		return translate(err, "room")
	})
	return deleted, err
}

// SetRole changes a member's role.
func (s *Store) SetRole(ctx context.Context, roomID, userID string, role models.RoomRole) error {
	res, err := s.w.NewUpdate().Model((*models.RoomMember)(nil)).Set("role = ?", role).
		Where("room_id = ? AND user_id = ?", roomID, userID).Exec(ctx)
	if err != nil {
		return translate(err, "room member")
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return models.NotFound("room member")
	}
	return nil
}

// RenameRoom changes a room's name.
func (s *Store) RenameRoom(ctx context.Context, roomID, name string) error {
	_, err := s.w.NewUpdate().Model((*models.Room)(nil)).Set("name = ?", name).Where("id = ?", roomID).Exec(ctx)
	return translate(err, "room")
}

// SetRoomCode changes a room's invite code; a taken code is a conflict.
func (s *Store) SetRoomCode(ctx context.Context, roomID, code string) error {
	_, err := s.w.NewUpdate().Model((*models.Room)(nil)).Set("code = ?", code).Where("id = ?", roomID).Exec(ctx)
	return translate(err, "room code")
}

// DeleteRoom deletes a room with its members and messages.
func (s *Store) DeleteRoom(ctx context.Context, roomID string) error {
	_, err := s.w.NewDelete().Model((*models.Room)(nil)).Where("id = ?", roomID).Exec(ctx)
	return translate(err, "room")
}
