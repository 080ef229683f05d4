package db

import (
	"context"
	"strings"

	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// The paged lists. Each reads limit+1 rows in the order of an index, after a
// cursor (see Cursor), and reports whether more remain; none sorts more than
// the rows it returns, except where noted.

// JoinedRoom is a room with the time the listing user joined it, the key of
// the rooms list.
type JoinedRoom struct {
	*models.Room
	JoinedAt models.Time
}

// Cursor is the position of r in the rooms list.
func (r JoinedRoom) Cursor() Cursor { return CursorAt(r.JoinedAt, r.ID) }

// RoomsPage returns up to limit of userID's rooms, most recently joined
// first, after the cursor (nil: from the start), and whether more remain. It
// reads one range of room_members_user_joined_idx.
func (s *Store) RoomsPage(ctx context.Context, userID string, after *Cursor, limit int) ([]JoinedRoom, bool, error) {
	var ms []*models.RoomMember
	q := s.r.NewSelect().Model(&ms).Where("user_id = ?", userID)
	if after != nil {
		q = q.Where("(joined_at, room_id) < (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.OrderExpr("joined_at DESC, room_id DESC").Limit(int64(limit) + 1).Scan(ctx); err != nil {
		return nil, false, translate(err, "rooms")
	}
	more := len(ms) > limit
	if more {
		ms = ms[:limit]
	}
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = m.RoomID
	}
	rooms, err := s.RoomsByIDs(ctx, ids)
	if err != nil {
		return nil, false, err
	}
	byID := make(map[string]*models.Room, len(rooms))
	for _, r := range rooms {
		byID[r.ID] = r
	}
	out := make([]JoinedRoom, 0, len(ms))
	for _, m := range ms {
		// A room deleted between the two reads is left out.
		if r := byID[m.RoomID]; r != nil {
			out = append(out, JoinedRoom{Room: r, JoinedAt: m.JoinedAt})
		}
	}
	return out, more, nil
}

// MemberCursor is the position of m in a room's members list.
func MemberCursor(m *models.RoomMember) Cursor { return CursorAt(m.JoinedAt, m.UserID) }

// MembersPage returns up to limit members of a room, oldest first, after the
// cursor. A room holds at most a few hundred members, the most this sorts.
func (s *Store) MembersPage(ctx context.Context, roomID string, after *Cursor, limit int) ([]*models.RoomMember, bool, error) {
	var ms []*models.RoomMember
	q := s.r.NewSelect().Model(&ms).Where("room_id = ?", roomID)
	if after != nil {
		q = q.Where("(joined_at, user_id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.OrderExpr("joined_at, user_id").Limit(int64(limit) + 1).Scan(ctx); err != nil {
		return nil, false, translate(err, "room members")
	}
	return trim(ms, limit)
}

// DocumentCursor is the position of d in a conversation's documents.
func DocumentCursor(d *models.Document) Cursor { return CursorAt(d.CreatedAt, d.ID) }

// DocumentsPage returns up to limit documents of a conversation, newest
// first, after the cursor: one range of documents_conversation_idx.
func (s *Store) DocumentsPage(ctx context.Context, conversation string, after *Cursor, limit int) ([]*models.Document, bool, error) {
	var ds []*models.Document
	q := s.r.NewSelect().Model(&ds).Where("conversation = ?", conversation)
	if after != nil {
		q = q.Where("(created_at, id) < (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.OrderExpr("created_at DESC, id DESC").Limit(int64(limit) + 1).Scan(ctx); err != nil {
		return nil, false, translate(err, "documents")
	}
	return trim(ds, limit)
}

// KeyCursor is the position of k in a user's keys.
func KeyCursor(k *models.PublicKey) Cursor { return CursorAt(k.CreatedAt, k.ID) }

// KeysPage returns up to limit keys of a user, newest first, after the
// cursor: one range of user_keys_user_idx.
func (s *Store) KeysPage(ctx context.Context, userID string, after *Cursor, limit int) ([]*models.PublicKey, bool, error) {
	var ks []*models.PublicKey
	q := s.r.NewSelect().Model(&ks).Where("user_id = ?", userID)
	if after != nil {
		q = q.Where("(created_at, id) < (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.OrderExpr("created_at DESC, id DESC").Limit(int64(limit) + 1).Scan(ctx); err != nil {
		return nil, false, translate(err, "public keys")
	}
	return trim(ks, limit)
}

func trim[T any](xs []T, limit int) ([]T, bool, error) {
	more := len(xs) > limit
	if more {
		xs = xs[:limit]
	}
	return xs, more, nil
}

// ConversationCursor is the position of c in the conversations list.
func ConversationCursor(c *models.Conversation) Cursor { return CursorAt(c.LastActivityAt, c.Key) }

// conversationsSQL lists every conversation of a user with its last
// activity. The rooms come from room_members_user_joined_idx, the direct
// partners from direct_partners (its primary key and direct_partners_b_idx,
// as Contacts reads them), and each conversation's newest message from
// one probe of messages_conversation_idx. All of the user's conversations
// are sorted by activity, so the cost grows with how many it has (rooms and
// partners), not with how many messages they hold.
//
// A direct conversation's key is built as DirectConversation builds it:
// the two ids in byte order, which on PostgreSQL needs the "C" collation
// (its default collation may order strings otherwise).
const conversationsSQL = `
WITH partners AS (
  SELECT user_b AS peer_id FROM direct_partners WHERE user_a = ?
  UNION
  SELECT user_a FROM direct_partners WHERE user_b = ?
), convs AS (
  SELECT rm.room_id AS conv_key, rm.room_id AS room_id, NULL AS peer_id, rm.joined_at AS since
    FROM room_members rm WHERE rm.user_id = ?
  UNION ALL
  SELECT CASE WHEN ? {collate} < p.peer_id {collate} THEN 'dm:' || ? || ':' || p.peer_id
              ELSE 'dm:' || p.peer_id || ':' || ? END,
         NULL, p.peer_id, 0
    FROM partners p
), latest AS (
  SELECT c.conv_key, c.room_id, c.peer_id, c.since,
    (SELECT m.created_at FROM messages m WHERE m.conversation = c.conv_key
      ORDER BY m.created_at DESC, m.id DESC LIMIT 1) AS last_at,
    (SELECT m.id FROM messages m WHERE m.conversation = c.conv_key
      ORDER BY m.created_at DESC, m.id DESC LIMIT 1) AS last_id
  FROM convs c
), activity AS (
  SELECT conv_key, room_id, peer_id, last_id,
    CASE WHEN last_at IS NULL OR last_at < since THEN since ELSE last_at END AS active_at
  FROM latest
)
SELECT conv_key, room_id, peer_id, last_id, active_at FROM activity
 WHERE {after}
 ORDER BY active_at DESC, conv_key DESC
 LIMIT ?`

// ConversationsPage returns up to limit conversations of userID (its rooms,
// and every user it exchanged a direct message with), most recent activity
// first, after the cursor, and whether more remain. UnreadCount is left 0:
// UnreadCounts fills it for the page.
func (s *Store) ConversationsPage(ctx context.Context, userID string, after *Cursor, limit int) ([]*models.Conversation, bool, error) {
	var rows []struct {
		ConvKey  string  `bun:"conv_key"`
		RoomID   *string `bun:"room_id"`
		PeerID   *string `bun:"peer_id"`
		LastID   *string `bun:"last_id"`
		ActiveAt int64   `bun:"active_at"`
	}
	collate := ""
	if s.dialect == Postgres {
		collate = `COLLATE "C"`
	}
	args := []any{userID, userID, userID, userID, userID, userID}
	cond := "1 = 1"
	if after != nil {
		cond = "(active_at, conv_key) < (?, ?)"
		args = append(args, after.CreatedAt, after.ID)
	}
	args = append(args, limit+1)
	query := strings.NewReplacer("{collate}", collate, "{after}", cond).Replace(conversationsSQL)
	if err := s.r.NewRaw(query, args...).Scan(ctx, &rows); err != nil {
		return nil, false, translate(err, "conversations")
	}
	out := make([]*models.Conversation, len(rows))
	for i, r := range rows {
		out[i] = &models.Conversation{Key: r.ConvKey, RoomID: r.RoomID, PeerID: r.PeerID,
			LastMessageID: r.LastID, LastActivityAt: models.TimeFromMicros(r.ActiveAt)}
	}
	return trim(out, limit)
}

// unreadSQL counts, per conversation, the messages to userID it has not
// marked read, its own left out: one range of message_keys_user_read_idx
// (its unread keys) joined to messages by primary key.
const unreadSQL = `
SELECT m.conversation AS conv_key, COUNT(*) AS n
  FROM message_keys k JOIN messages m ON m.id = k.message_id
 WHERE k.user_id = ? AND k.read_at IS NULL AND m.sender_id <> ? AND m.conversation IN (?)
 GROUP BY m.conversation`

// UnreadCounts returns the number of unread messages of userID in each of
// the conversations (by key) that has any.
func (s *Store) UnreadCounts(ctx context.Context, userID string, convs []string) (map[string]int, error) {
	out := make(map[string]int, len(convs))
	if len(convs) == 0 {
		return out, nil
	}
	var rows []struct {
		ConvKey string `bun:"conv_key"`
		N       int    `bun:"n"`
	}
	if err := s.r.NewRaw(unreadSQL, userID, userID, bun.List(convs)).Scan(ctx, &rows); err != nil {
		return nil, translate(err, "unread counts")
	}
	for _, r := range rows {
		out[r.ConvKey] = r.N
	}
	return out, nil
}
