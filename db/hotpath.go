package db

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// The message insert is the hottest write. bun formats every argument into
// the SQL text, so a message with 50 recipients became ~115 KB of hex literals
// for the database to parse per send. This path passes arguments to the
// driver instead: on SQLite through statements prepared once on the single
// writer connection, on PostgreSQL as one multi-row INSERT whose text depends
// only on the row count (pgx caches its prepared form).

const (
	insertMessageSQLite = `INSERT INTO messages (id, conversation, room_id, sender_id, recipient_id, ciphertext, nonce, attachment_id, content_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertKeySQLite     = `INSERT INTO message_keys (message_id, user_id, key_id, kem_ciphertext, wrapped_key) VALUES (?, ?, ?, ?, ?)`
	insertMessagePG     = `INSERT INTO messages (id, conversation, room_id, sender_id, recipient_id, ciphertext, nonce, attachment_id, content_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`
)

type writeStmts struct {
	once    sync.Once
	err     error
	message *sql.Stmt
	key     *sql.Stmt
}

// prepareWrites prepares the SQLite statements once; it must not run inside a
// transaction (the writer has one connection).
func (s *Store) prepareWrites(ctx context.Context) error {
	if s.dialect != SQLite {
		return nil
	}
	_, err := s.sqliteStmts(ctx)
	if err != nil {
		return fmt.Errorf("prepare message insert: %w", err)
	}
	return nil
}

func (s *Store) sqliteStmts(ctx context.Context) (*writeStmts, error) {
	st := &s.stmts
	st.once.Do(func() {
		if st.message, st.err = s.w.DB.PrepareContext(ctx, insertMessageSQLite); st.err != nil {
			return
		}
		st.key, st.err = s.w.DB.PrepareContext(ctx, insertKeySQLite)
	})
	return st, st.err
}

func messageArgs(m *models.Message) []any {
	return []any{m.ID, m.Conversation, m.RoomID, m.SenderID, m.RecipientID, m.CipherBytes, m.NonceBytes, m.AttachmentID, m.ContentHash, m.CreatedAt.Micros()}
}

// insertMessageRows writes a message and its keys inside tx.
func (s *Store) insertMessageRows(ctx context.Context, tx bun.Tx, m *models.Message, keys []*models.RecipientKey) error {
	if s.dialect == SQLite {
		st := &s.stmts // prepared by prepareWrites before the transaction
		if _, err := tx.Tx.StmtContext(ctx, st.message).ExecContext(ctx, messageArgs(m)...); err != nil {
			return err
		}
		ks := tx.Tx.StmtContext(ctx, st.key)
		for _, k := range keys {
			if _, err := ks.ExecContext(ctx, k.MessageID, k.UserID, k.KeyID, k.KEMBytes, k.WrappedBytes); err != nil {
				return err
			}
		}
		return nil
	}
	if _, err := tx.Tx.ExecContext(ctx, insertMessagePG, messageArgs(m)...); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO message_keys (message_id, user_id, key_id, kem_ciphertext, wrapped_key) VALUES `)
	args := make([]any, 0, 5*len(keys))
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		n := 5 * i
		b.WriteString("($" + strconv.Itoa(n+1) + ",$" + strconv.Itoa(n+2) + ",$" + strconv.Itoa(n+3) + ",$" + strconv.Itoa(n+4) + ",$" + strconv.Itoa(n+5) + ")")
		args = append(args, k.MessageID, k.UserID, k.KeyID, k.KEMBytes, k.WrappedBytes)
	}
	_, err := tx.Tx.ExecContext(ctx, b.String(), args...)
	return err
}
