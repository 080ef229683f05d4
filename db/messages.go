package db

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// DirectConversation is the conversation key of a direct exchange between two
// users: the same whichever of them sends.
func DirectConversation(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "dm:" + a + ":" + b
}

// Cursor is a position in a conversation's history (newest first).
type Cursor struct {
	CreatedAt int64
	ID        string
}

// EncodeCursor makes the opaque cursor string clients pass back as `after`.
func EncodeCursor(m *models.Message) string { return Cursor{m.CreatedAt.Micros(), m.ID}.String() }

// CursorAt is the cursor of a list position: a time and the id that breaks
// ties. Every paged list (history, rooms, members, documents, keys,
// conversations) uses this one format.
func CursorAt(t models.Time, id string) Cursor { return Cursor{t.Micros(), id} }

// String is the opaque form of c.
func (c Cursor) String() string {
	b := make([]byte, 0, 8+len(c.ID))
	b = binary.BigEndian.AppendUint64(b, uint64(c.CreatedAt))
	b = append(b, c.ID...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxCursorID is the longest id a cursor carries: a direct conversation's
// key ("dm:" and two UUIDs).
const maxCursorID = 80

// DecodeCursor parses an `after` argument.
func DecodeCursor(s string) (Cursor, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) <= 8 || len(b) > 8+maxCursorID {
		return Cursor{}, models.Invalid("after: not a cursor returned by this server")
	}
	return Cursor{CreatedAt: int64(binary.BigEndian.Uint64(b)), ID: string(b[8:])}, nil
}

// InsertMessage stores a message and its recipient keys in one transaction.
// A message with the same id from the same sender and the same content hash is a
// safe retry: the stored message comes back with existed=true. Anything else
// under a taken id is a conflict.
func (s *Store) InsertMessage(ctx context.Context, m *models.Message, keys []*models.RecipientKey) (stored *models.Message, existed bool, err error) {
	// Prepared before queueing: the group writer's transaction holds SQLite's
	// only writer connection, which preparing would wait for.
	if err := s.prepareWrites(ctx); err != nil {
		return nil, false, err
	}
	err = s.writer.insert(ctx, m, keys)
	if err == nil {
		m.Keys = keys
		return m, false, nil
	}
	if err := translate(err, "message"); !isConflict(err) {
		return nil, false, err
	}
	prev, err := s.MessageByID(ctx, m.ID)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return nil, false, models.Conflict("message id %s is taken", m.ID)
		}
		return nil, false, err
	}
	if prev.SenderID != m.SenderID || !bytes.Equal(prev.ContentHash, m.ContentHash) || prev.Deleted() {
		return nil, false, models.Conflict("message id %s is taken by other content", m.ID)
	}
	return prev, true, nil
}

// MessageByID finds a message (tombstones included).
func (s *Store) MessageByID(ctx context.Context, id string) (*models.Message, error) {
	m := new(models.Message)
	if err := s.r.NewSelect().Model(m).Where("id = ?", id).Scan(ctx); err != nil {
		return nil, translate(err, "message")
	}
	return m, nil
}

// MessagesByIDs returns the messages that exist among ids.
func (s *Store) MessagesByIDs(ctx context.Context, ids []string) ([]*models.Message, error) {
	var ms []*models.Message
	if len(ids) == 0 {
		return ms, nil
	}
	if err := s.r.NewSelect().Model(&ms).Where("id IN (?)", bun.List(ids)).Scan(ctx); err != nil {
		return nil, translate(err, "messages")
	}
	return ms, nil
}

// History returns up to limit messages of a conversation older than after (or
// the newest when after is nil), newest first, and whether more remain. It is one
// range scan of messages_conversation_idx that reads limit+1 rows. With a
// reader, each message's Keys holds that reader's recipient key (empty when it
// has none), looked up in the same query.
func (s *Store) History(ctx context.Context, conversation, reader string, after *Cursor, limit int) ([]*models.Message, bool, error) {
	q := s.r.NewSelect().TableExpr("messages AS m").ColumnExpr(historyColumns).Where("m.conversation = ?", conversation)
	if reader != "" {
		q = q.ColumnExpr(readerKeyColumns).Join("LEFT JOIN message_keys AS k ON k.message_id = m.id AND k.user_id = ?", reader)
	}
	if after != nil {
		q = q.Where("(m.created_at, m.id) < (?, ?)", after.CreatedAt, after.ID)
	}
	rows, err := q.OrderExpr("m.created_at DESC, m.id DESC").Limit(int64(limit) + 1).Rows(ctx)
	if err != nil {
		return nil, false, translate(err, "messages")
	}
	ms, err := scanMessages(rows, limit+1, reader != "")
	if err != nil {
		return nil, false, translate(err, "messages")
	}
	more := len(ms) > limit
	if more {
		ms = ms[:limit]
	}
	return ms, more, nil
}

// RecipientKeys returns the recipient keys for the given (message, user) pairs.
func (s *Store) RecipientKeys(ctx context.Context, pairs []MessageUser) ([]*models.RecipientKey, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	ids, users := splitPairs(pairs)
	rows, err := s.r.NewSelect().Model((*models.RecipientKey)(nil)).Column(keyColumns...).
		Where("message_id IN (?) AND user_id IN (?)", bun.List(ids), bun.List(users)).Rows(ctx)
	if err != nil {
		return nil, translate(err, "recipient keys")
	}
	ks, err := scanKeys(rows, len(ids))
	if err != nil {
		return nil, translate(err, "recipient keys")
	}
	return ks, nil
}

// A page of history and its reader's keys are scanned with database/sql
// directly, column by column: bun's scan of the same rows (its reflection
// over the model, per row and column) cost as much CPU as the database's own
// work on them. The columns are every column of the models, in the order the
// scans below read them.
const (
	historyColumns = "m.id, m.conversation, m.room_id, m.sender_id, m.recipient_id, m.ciphertext, m.nonce, " +
		"m.attachment_id, m.content_hash, m.created_at, m.deleted_at, m.version, m.signature, m.key_digests"
	readerKeyColumns = "k.user_id, k.key_id, k.kem_ciphertext, k.wrapped_key, k.read_at"
)

var keyColumns = []string{"message_id", "user_id", "key_id", "kem_ciphertext", "wrapped_key", "read_at"}

func scanMessages(rows *sql.Rows, capacity int, withKey bool) ([]*models.Message, error) {
	defer rows.Close()
	// The page's messages, and its reader's keys, each in one allocation.
	ms := make([]*models.Message, 0, capacity)
	msgs := make([]models.Message, capacity)
	var keys []models.RecipientKey
	var keyRefs []*models.RecipientKey
	if withKey {
		keys = make([]models.RecipientKey, capacity)
		keyRefs = make([]*models.RecipientKey, capacity)
	}
	dest := make([]any, 0, 19)
	var (
		version     int64
		user, keyID *string // each row's scan sets them, NULL to nil
	)
	for i := 0; rows.Next(); i++ {
		if i == capacity {
			return nil, fmt.Errorf("history: more than the %d rows asked for", capacity)
		}
		m := &msgs[i]
		dest = append(dest[:0], &m.ID, &m.Conversation, optionalString{&m.RoomID}, &m.SenderID, optionalString{&m.RecipientID},
			&m.CipherBytes, &m.NonceBytes, optionalString{&m.AttachmentID}, &m.ContentHash, &m.CreatedAt,
			optionalTime{&m.DeletedAt}, &version, &m.SignatureBytes, &m.KeyDigestBytes)
		if withKey {
			k := &keys[i]
			dest = append(dest, optionalString{&user}, optionalString{&keyID}, &k.KEMBytes, &k.WrappedBytes, optionalTime{&k.ReadAt})
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		m.Version = int(version)
		if withKey {
			// Empty, not nil, when the reader has no key: the key was looked for.
			m.Keys = keyRefs[i:i:i]
			if user != nil && keyID != nil {
				k := &keys[i]
				k.MessageID, k.UserID, k.KeyID = m.ID, *user, *keyID
				keyRefs[i] = k
				m.Keys = keyRefs[i : i+1 : i+1]
			}
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

func scanKeys(rows *sql.Rows, capacity int) ([]*models.RecipientKey, error) {
	defer rows.Close()
	ks := make([]*models.RecipientKey, 0, capacity)
	for rows.Next() {
		k := new(models.RecipientKey)
		if err := rows.Scan(&k.MessageID, &k.UserID, &k.KeyID, &k.KEMBytes, &k.WrappedBytes, optionalTime{&k.ReadAt}); err != nil {
			return nil, err
		}
		ks = append(ks, k)
	}
	return ks, rows.Err()
}

// optionalString scans a nullable text column into a *string (nil for NULL).
type optionalString struct{ p **string }

func (o optionalString) Scan(src any) error {
	switch v := src.(type) {
	case nil:
		*o.p = nil
	case string:
		*o.p = &v
	case []byte:
		s := string(v)
		*o.p = &s
	default:
		return fmt.Errorf("scan text: unsupported type %T", src)
	}
	return nil
}

// optionalTime scans a nullable time column into a *models.Time.
type optionalTime struct{ p **models.Time }

func (o optionalTime) Scan(src any) error {
	if src == nil {
		*o.p = nil
		return nil
	}
	t := new(models.Time)
	if err := t.Scan(src); err != nil {
		return err
	}
	*o.p = t
	return nil
}

// MessageUser names one recipient key (of a message or a document).
type MessageUser struct{ MessageID, UserID string }

// splitPairs returns the distinct object ids and user ids of pairs. The pairs
// of one response almost always share the user, so querying by both lists and
// keeping what matches works the same on both dialects.
func splitPairs(pairs []MessageUser) (ids, users []string) {
	seenU := map[string]bool{}
	seenID := map[string]bool{}
	for _, p := range pairs {
		if !seenID[p.MessageID] {
			seenID[p.MessageID] = true
			ids = append(ids, p.MessageID)
		}
		if !seenU[p.UserID] {
			seenU[p.UserID] = true
			users = append(users, p.UserID)
		}
	}
	return ids, users
}

// DeleteMessage turns a message into a tombstone: the ciphertext, every
// wrapped key and the signature over them are erased, the row stays so
// history keeps its shape (and its version).
func (s *Store) DeleteMessage(ctx context.Context, id string) (*models.Message, error) {
	var m *models.Message
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		now := models.Now()
		res, err := tx.NewUpdate().Model((*models.Message)(nil)).
			Set("deleted_at = ?", now).Set("ciphertext = NULL").Set("nonce = NULL").
			Set("signature = NULL").Set("key_digests = NULL").
			Where("id = ? AND deleted_at IS NULL", id).Exec(ctx)
		if err != nil {
			return translate(err, "message")
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return models.NotFound("message")
		}
		if _, err := tx.NewDelete().Model((*models.RecipientKey)(nil)).Where("message_id = ?", id).Exec(ctx); err != nil {
			return translate(err, "recipient keys")
		}
		m = new(models.Message)
		return translate(tx.NewSelect().Model(m).Where("id = ?", id).Scan(ctx), "message")
	})
	return m, err
}

// MarkRead sets read_at on userID's keys of the given messages where it is not
// set yet, and returns the keys it newly marked.
func (s *Store) MarkRead(ctx context.Context, userID string, ids []string) ([]*models.RecipientKey, error) {
	var marked []*models.RecipientKey
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		marked = marked[:0]
		if err := tx.NewSelect().Model(&marked).
			Where("user_id = ? AND message_id IN (?) AND read_at IS NULL", userID, bun.List(ids)).
			Scan(ctx); err != nil {
			return translate(err, "recipient keys")
		}
		if len(marked) == 0 {
			return nil
		}
		now := models.Now()
		mids := make([]string, len(marked))
		for i, k := range marked {
			mids[i] = k.MessageID
			k.ReadAt = &now
		}
		_, err := tx.NewUpdate().Model((*models.RecipientKey)(nil)).Set("read_at = ?", now).
			Where("user_id = ? AND message_id IN (?) AND read_at IS NULL", userID, bun.List(mids)).Exec(ctx)
		return translate(err, "recipient keys")
	})
	return marked, err
}
