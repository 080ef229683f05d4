package db_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/migrate"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/migrations"
	"github.com/qchat/qchat/models"
)

func seedUser(t testing.TB, s *db.Store, name string) *models.User {
	t.Helper()
	u := &models.User{ID: uuid.NewString(), Username: name, PasswordHash: []byte("x"), CreatedAt: models.Now()}
	k := &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: []byte{1}, Fingerprint: "f", CreatedAt: models.Now()}
	if err := s.CreateUser(t.Context(), u, k); err != nil {
		t.Fatal(err)
	}
	return u
}

// History must be one range scan of messages_conversation_idx on both
// dialects, whatever the table holds.
func TestHistoryUsesTheConversationIndex(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		u := seedUser(t, s, "alice")
		conv := db.DirectConversation(u.ID, u.ID)
		for i := range 30 {
			m := &models.Message{ID: uuid.NewString(), Conversation: conv, SenderID: u.ID, CipherBytes: []byte{byte(i)},
				NonceBytes: make([]byte, 12), ContentHash: []byte{1}, CreatedAt: models.Now()}
			if _, _, err := s.InsertMessage(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
		}
		page, more, err := s.History(ctx, conv, "", nil, 10)
		if err != nil || len(page) != 10 || !more {
			t.Fatalf("page %d more %v err %v", len(page), more, err)
		}
		cur, err := db.DecodeCursor(db.EncodeCursor(page[9]))
		if err != nil {
			t.Fatal(err)
		}
		const q = `SELECT * FROM messages WHERE conversation = ? AND (created_at, id) < (?, ?) ORDER BY created_at DESC, id DESC LIMIT 11`
		text := explain(t, s, q, conv, cur.CreatedAt, cur.ID)
		if !strings.Contains(text, "messages_conversation_idx") || strings.Contains(text, "TEMP B-TREE") || strings.Contains(text, "Sort") {
			t.Fatalf("history plan does not read the index in order:\n%s", text)
		}
		// With the reader's keys joined, as History reads them.
		const qk = `SELECT * FROM messages AS m LEFT JOIN message_keys AS k ON k.message_id = m.id AND k.user_id = ?
WHERE m.conversation = ? AND (m.created_at, m.id) < (?, ?) ORDER BY m.created_at DESC, m.id DESC LIMIT 11`
		text = explain(t, s, qk, u.ID, conv, cur.CreatedAt, cur.ID)
		if !strings.Contains(text, "messages_conversation_idx") || strings.Contains(text, "TEMP B-TREE") || strings.Contains(text, "Sort") ||
			strings.Contains(strings.ToUpper(text), "SCAN K") || strings.Contains(text, "Seq Scan") {
			t.Fatalf("history plan with the reader's keys does not read the index in order:\n%s", text)
		}
	})
}

// explain returns the database's plan for query (sequential scans forbidden
// on PostgreSQL, whose planner prefers them on tiny tables).
func explain(t *testing.T, s *db.Store, query string, args ...any) string {
	t.Helper()
	var plan []string
	err := s.DB().RunInTx(t.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
		explain := "EXPLAIN QUERY PLAN "
		if s.Dialect() == db.Postgres {
			if _, err := tx.ExecContext(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
				return err
			}
			explain = "EXPLAIN "
		}
		rows, err := tx.QueryContext(ctx, explain+query, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, _ := rows.Columns()
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			plan = append(plan, fmt.Sprint(vals...))
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "\n")
}

// The room and attachment indexes are partial (rows
// without the column are left out); lookups by that column still use them.
func TestPartialMessageIndexesServeTheirLookups(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		id := uuid.NewString()
		for _, tc := range []struct{ query, index string }{
			{`SELECT id FROM messages WHERE room_id = ?`, "messages_room_idx"},
			{`SELECT id FROM messages WHERE attachment_id = ?`, "messages_attachment_idx"},
		} {
			// PostgreSQL may pick another of the partial indexes that covers
			// the query; what matters is that none is refused for being partial.
			plan := explain(t, s, tc.query, id)
			if !strings.Contains(plan, tc.index) && (s.Dialect() != db.Postgres || !strings.Contains(plan, "Index") || strings.Contains(plan, "Seq Scan")) {
				t.Errorf("%s\ndoes not use %s:\n%s", tc.query, tc.index, plan)
			}
		}
	})
}

// Every migration rolls back (the last group: all of them on a fresh store)
// and applies again, ending with the partial message indexes.
func TestMigrationsRollBackAndApplyAgain(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		def := func() (string, error) {
			var sql string
			q := `SELECT sql FROM sqlite_master WHERE name = 'messages_room_idx'`
			if s.Dialect() == db.Postgres {
				q = `SELECT indexdef FROM pg_indexes WHERE indexname = 'messages_room_idx' AND schemaname = current_schema()`
			}
			err := s.DB().NewRaw(q).Scan(ctx, &sql)
			return sql, err
		}
		if d, err := def(); err != nil || !strings.Contains(d, "IS NOT NULL") {
			t.Fatalf("after migrating up: %q %v", d, err)
		}
		if _, err := s.Migrator().Rollback(ctx); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		if d, err := def(); !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("after rolling back the index is still there: %q %v", d, err)
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if d, err := def(); err != nil || !strings.Contains(d, "IS NOT NULL") {
			t.Fatalf("after migrating up again: %q %v", d, err)
		}
		seedUser(t, s, "erin") // the tables work again
	})
}

func TestTranslateErrors(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		seedUser(t, s, "bob")
		dup := &models.User{ID: uuid.NewString(), Username: "BOB", PasswordHash: []byte("x"), CreatedAt: models.Now()}
		k := &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: []byte{1}, Fingerprint: "f", CreatedAt: models.Now()}
		if err := s.CreateUser(ctx, dup, k); !errors.Is(err, models.ErrConflict) {
			t.Fatalf("duplicate username: %v", err)
		}
		if _, err := s.UserByID(ctx, uuid.NewString()); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
		if _, err := s.Membership(ctx, uuid.NewString(), uuid.NewString()); !errors.Is(err, models.ErrNotFound) {
			t.Fatalf("missing membership: %v", err)
		}
		if _, err := db.DecodeCursor("%%%"); !errors.Is(err, models.ErrInvalid) {
			t.Fatalf("bad cursor: %v", err)
		}
	})
}

// Concurrent inserts share transactions on SQLite: a duplicate id inside a
// batch fails alone (and reads as a retry), the others commit.
func TestConcurrentInsertsAndRetries(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		u := seedUser(t, s, "carol")
		conv := db.DirectConversation(u.ID, u.ID)
		dup := uuid.NewString()
		mk := func(id string) (*models.Message, []*models.RecipientKey) {
			m := &models.Message{ID: id, Conversation: conv, SenderID: u.ID, CipherBytes: []byte("ct"),
				NonceBytes: make([]byte, 12), ContentHash: []byte("same"), CreatedAt: models.Now()}
			return m, []*models.RecipientKey{{MessageID: id, UserID: u.ID, KeyID: u.CurrentKeyID, KEMBytes: []byte{1}, WrappedBytes: []byte{2}}}
		}
		var wg sync.WaitGroup
		var fresh, retries atomic.Int32
		for i := range 60 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id := uuid.NewString()
				if i%10 == 0 {
					id = dup
				}
				m, keys := mk(id)
				_, existed, err := s.InsertMessage(ctx, m, keys)
				if err != nil {
					t.Errorf("insert %s: %v", id, err)
					return
				}
				if existed {
					retries.Add(1)
				} else {
					fresh.Add(1)
				}
			}()
		}
		wg.Wait()
		if fresh.Load() != 55 || retries.Load() != 5 {
			t.Fatalf("fresh %d retries %d, want 55 and 5", fresh.Load(), retries.Load())
		}
		n, err := s.DB().NewSelect().Table("message_keys").Count(ctx)
		if err != nil || n != 55 {
			t.Fatalf("%d recipient keys (err %v), want 55", n, err)
		}
	})
}

// Concurrent inserts are written in batches, and a message that fails in a
// batch fails alone. Every writer is held on a message of its own while nine
// senders queue; the first writer released then takes all nine as one batch:
// fresh messages, a retry of a stored message, other content under its id,
// the same new id twice, and a key for a user who does not exist.
func TestInsertBatchesFailAlone(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		u := seedUser(t, s, "erin")
		v, w, x := seedUser(t, s, "frank"), seedUser(t, s, "grace"), seedUser(t, s, "heidi")
		// Direct messages from u to v unless the case says otherwise (nil:
		// no recipient, as a room message is written).
		msg := func(id, content, keyUser string, to *models.User) (*models.Message, []*models.RecipientKey) {
			m := &models.Message{ID: id, Conversation: "c", SenderID: u.ID, CipherBytes: []byte(content),
				NonceBytes: make([]byte, 12), ContentHash: []byte(content), CreatedAt: models.Now()}
			if to != nil {
				m.Conversation, m.RecipientID = db.DirectConversation(u.ID, to.ID), &to.ID
			}
			return m, []*models.RecipientKey{{MessageID: id, UserID: keyUser, KeyID: u.CurrentKeyID, KEMBytes: []byte{1}, WrappedBytes: []byte{2}}}
		}
		stored := uuid.NewString()
		first, firstKeys := msg(stored, "a", u.ID, v)
		if _, _, err := s.InsertMessage(ctx, first, firstKeys); err != nil {
			t.Fatal(err)
		}

		sizes, release := make(chan int), make(chan struct{})
		db.SetBeforeCommit(s, func(n int) { sizes <- n; <-release })
		type result struct {
			existed bool
			err     error
		}
		send := func(m *models.Message, keys []*models.RecipientKey) chan result {
			ch := make(chan result, 1)
			go func() {
				_, existed, err := s.InsertMessage(ctx, m, keys)
				ch <- result{existed, err}
			}()
			return ch
		}
		var held []chan result
		for range db.Writers(s) {
			held = append(held, send(msg(uuid.NewString(), "held", u.ID, v)))
			if n := <-sizes; n != 1 {
				t.Fatalf("a held writer took %d messages, want 1", n)
			}
		}

		twice := uuid.NewString()
		missing := uuid.NewString()
		cases := []struct {
			id, content, keyUser string
			to                   *models.User
		}{
			{uuid.NewString(), "b", u.ID, v}, {uuid.NewString(), "c", u.ID, v}, {uuid.NewString(), "d", u.ID, v},
			{uuid.NewString(), "e", u.ID, nil},  // no recipient
			{stored, "a", u.ID, v},              // a retry: reads as existed
			{stored, "other", u.ID, w},          // a clash: conflict, and no partners u and w
			{twice, "f", u.ID, v},               // the same new id twice: one fresh,
			{twice, "f", u.ID, v},               // the other reads as a retry
			{missing, "g", uuid.NewString(), x}, // fails: no such user, and no partners u and x
		}
		results := make([]chan result, len(cases))
		for i, c := range cases {
			results[i] = send(msg(c.id, c.content, c.keyUser, c.to))
		}
		for db.QueuedInserts(s) < len(cases) {
			runtime.Gosched()
		}
		release <- struct{}{} // the first writer commits its held message and takes the queue
		if n := <-sizes; n != len(cases) {
			t.Fatalf("the queued messages went in a batch of %d, want %d", n, len(cases))
		}
		for range held {
			release <- struct{}{}
		}
		for i, ch := range held {
			if r := <-ch; r.err != nil || r.existed {
				t.Fatalf("held message %d: existed %v, err %v", i, r.existed, r.err)
			}
		}
		var fresh, existed int
		for i, ch := range results {
			r := <-ch
			switch c := cases[i]; {
			case c.id == stored && c.content == "other":
				if !errors.Is(r.err, models.ErrConflict) {
					t.Errorf("other content under a stored id: %v, want a conflict", r.err)
				}
			case c.id == missing:
				if r.err == nil {
					t.Error("a key for a missing user was accepted")
				}
			case r.err != nil:
				t.Errorf("message %d (%s) failed with the batch: %v", i, c.content, r.err)
			case r.existed:
				existed++
			default:
				fresh++
			}
		}
		if fresh != 5 || existed != 2 {
			t.Errorf("%d fresh and %d retries, want 5 and 2", fresh, existed)
		}
		for _, w := range []struct {
			table, where string
			arg          any
			want         int64
		}{
			{"messages", "sender_id = ?", u.ID, int64(1 + len(held) + 5)},
			{"message_keys", "user_id = ?", u.ID, int64(1 + len(held) + 5)},
			{"messages", "id = ?", missing, 0},
			{"direct_partners", "? IN (user_a, user_b)", u.ID, 1}, // u and v only
		} {
			n, err := s.DB().NewSelect().Table(w.table).Where(w.where, w.arg).Count(ctx)
			if err != nil || n != w.want {
				t.Errorf("%s where %s: %d rows (err %v), want %d", w.table, w.where, n, err, w.want)
			}
		}
	})
}

// A message and its keys are written together or not at all: a key that
// cannot be stored (here: for a user who does not exist) leaves no message.
func TestMessageInsertIsAllOrNothing(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		u := seedUser(t, s, "dave")
		id := uuid.NewString()
		m := &models.Message{ID: id, Conversation: db.DirectConversation(u.ID, u.ID), SenderID: u.ID, CipherBytes: []byte("ct"),
			NonceBytes: make([]byte, 12), ContentHash: []byte("h"), CreatedAt: models.Now()}
		keys := []*models.RecipientKey{
			{MessageID: id, UserID: u.ID, KeyID: u.CurrentKeyID, KEMBytes: []byte{1}, WrappedBytes: []byte{2}},
			{MessageID: id, UserID: uuid.NewString(), KeyID: u.CurrentKeyID, KEMBytes: []byte{1}, WrappedBytes: []byte{2}},
		}
		if _, _, err := s.InsertMessage(ctx, m, keys); err == nil {
			t.Fatal("a key for a missing user was accepted")
		}
		for _, table := range []string{"messages", "message_keys"} {
			n, err := s.DB().NewSelect().Table(table).Where("? = ?", bun.Ident(map[string]string{"messages": "id", "message_keys": "message_id"}[table]), id).Count(ctx)
			if err != nil || n != 0 {
				t.Fatalf("%s holds %d rows of the failed message (err %v)", table, n, err)
			}
		}
		// The same id then works: nothing of the failed attempt is in the way.
		if _, existed, err := s.InsertMessage(ctx, m, keys[:1]); err != nil || existed {
			t.Fatalf("insert after the failure: existed %v, err %v", existed, err)
		}
	})
}

// migrateTo rolls every migration back and applies those before the one
// whose name ends in suffix: the schema as it was before that step.
func migrateTo(t *testing.T, s *db.Store, suffix string) {
	t.Helper()
	ctx := t.Context()
	all := migrations.New().Sorted()
	i := slices.IndexFunc(all, func(m migrate.Migration) bool { return strings.HasSuffix(m.Name, suffix) })
	if i < 0 {
		t.Fatalf("no migration %s", suffix)
	}
	if _, err := s.Migrator().Rollback(ctx); err != nil {
		t.Fatalf("rollback: %v", err)
	}
	before := migrate.NewMigrations()
	for _, m := range all[:i] {
		before.Add(m)
	}
	if _, err := migrate.NewMigrator(s.DB(), before).Migrate(ctx); err != nil {
		t.Fatalf("migrate to before %s: %v", suffix, err)
	}
}

// The identity-key migration rolls back and applies again over version 1
// data: the v1 rows survive both ways, and after applying they read as
// version 1 with no signature.
func TestIdentityKeyMigrationKeepsVersion1Data(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		migrateTo(t, s, "00005")
		raw := func(q string, args ...any) {
			t.Helper()
			if _, err := s.DB().NewRaw(q, args...).Exec(ctx); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		seedV1 := func(uid, mid, did string) {
			t.Helper()
			raw(`INSERT INTO users (id, username, username_key, password_hash, current_key_id, created_at) VALUES (?, ?, ?, ?, ?, 1)`, uid, uid[:8], uid[:8], []byte("x"), uid)
			raw(`INSERT INTO user_keys (id, user_id, algorithm, public_key, fingerprint, "current", created_at) VALUES (?, ?, 'ML_KEM_768', ?, 'f', TRUE, 1)`, uid, uid, []byte{1})
			raw(`INSERT INTO messages (id, conversation, sender_id, recipient_id, ciphertext, nonce, content_hash, created_at) VALUES (?, 'c', ?, ?, ?, ?, ?, 2)`, mid, uid, uid, []byte{2}, []byte{3}, []byte{4})
			raw(`INSERT INTO documents (id, conversation, uploader_id, recipient_id, name, mime_type, size, nonce, created_at) VALUES (?, 'c', ?, ?, 'a.txt', 'text/plain', 1, ?, 3)`, did, uid, uid, []byte{5})
		}
		uid, mid, did := uuid.NewString(), uuid.NewString(), uuid.NewString()
		seedV1(uid, mid, did)

		check := func(when string) {
			t.Helper()
			var m models.Message
			if err := s.DB().NewSelect().Model(&m).Where("id = ?", mid).Scan(ctx); err != nil {
				t.Fatalf("%s: read the v1 message: %v", when, err)
			}
			if m.Version != 1 || m.SignatureBytes != nil || m.KeyDigestBytes != nil {
				t.Errorf("%s: v1 message reads as version %d, signature %x, digests %x", when, m.Version, m.SignatureBytes, m.KeyDigestBytes)
			}
			var d models.Document
			if err := s.DB().NewSelect().Model(&d).Where("id = ?", did).Scan(ctx); err != nil {
				t.Fatalf("%s: read the v1 document: %v", when, err)
			}
			if d.Version != 1 || d.SignatureBytes != nil {
				t.Errorf("%s: v1 document reads as version %d, signature %x", when, d.Version, d.SignatureBytes)
			}
			var k models.PublicKey
			if err := s.DB().NewSelect().Model(&k).Where("id = ?", uid).Scan(ctx); err != nil {
				t.Fatalf("%s: read the v1 key: %v", when, err)
			}
			if k.Seq != nil || k.SignatureBytes != nil {
				t.Errorf("%s: v1 key reads with seq %v, signature %x", when, k.Seq, k.SignatureBytes)
			}
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		check("after applying")
		// v2 data in the new tables must go cleanly with the rollback.
		raw(`INSERT INTO identity_keys (id, user_id, key, fingerprint, "current", created_at) VALUES (?, ?, ?, 'f', TRUE, 4)`, uuid.NewString(), uid, []byte{6})
		raw(`INSERT INTO key_backups (user_id, backup, updated_at) VALUES (?, '{}', 5)`, uid)
		if _, err := s.Migrator().Rollback(ctx); err != nil {
			t.Fatalf("rollback the identity-key migration: %v", err)
		}
		var n int
		if err := s.DB().NewRaw(`SELECT COUNT(*) FROM messages WHERE id = ?`, mid).Scan(ctx, &n); err != nil || n != 1 {
			t.Fatalf("after rolling back, the v1 message: %d %v", n, err)
		}
		seedV1(uuid.NewString(), uuid.NewString(), uuid.NewString()) // v1 writes work on the v1 schema
		if err := s.Migrate(ctx); err != nil {
			t.Fatalf("apply again: %v", err)
		}
		check("after applying again")
		// One current identity key per user.
		raw(`INSERT INTO identity_keys (id, user_id, key, fingerprint, "current", created_at) VALUES (?, ?, ?, 'f', TRUE, 4)`, uuid.NewString(), uid, []byte{6})
		if _, err := s.DB().NewRaw(`INSERT INTO identity_keys (id, user_id, key, fingerprint, "current", created_at) VALUES (?, ?, ?, 'g', TRUE, 5)`, uuid.NewString(), uid, []byte{7}).Exec(ctx); err == nil {
			t.Error("a second current identity key for one user was accepted")
		}
	})
}
