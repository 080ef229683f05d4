package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/uptrace/bun"

	"github.com/qchat/qchat/models"
)

// The message insert is the hottest write. bun formats every argument into
// the SQL text, so a message with 50 recipients became ~115 KB of hex literals
// for the database to parse per send. This path passes arguments to the
// driver instead: on SQLite through statements prepared once on the single
// writer connection, on PostgreSQL through pgx itself (not database/sql), as
// one statement whose text is the same for every message with keys (pgx
// caches its prepared form).

const (
	insertMessageSQLite = `INSERT INTO messages (id, conversation, room_id, sender_id, recipient_id, ciphertext, nonce, attachment_id, content_hash, created_at, version, signature, key_digests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertKeySQLite     = `INSERT INTO message_keys (message_id, user_id, key_id, kem_ciphertext, wrapped_key) VALUES (?, ?, ?, ?, ?)`
	insertMessagePG     = `INSERT INTO messages (id, conversation, room_id, sender_id, recipient_id, ciphertext, nonce, attachment_id, content_hash, created_at, version, signature, key_digests) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	// A direct message records its pair of users (see directPartners): the
	// first message either way writes the row, every later one finds it
	// and writes nothing.
	insertPartnersSQLite = `INSERT INTO direct_partners (user_a, user_b) VALUES (?, ?) ON CONFLICT DO NOTHING`
)

// directPartners returns a direct message's pair of users in the order of
// direct_partners (and of DirectConversation): byte order.
func directPartners(m *models.Message) (a, b string) {
	a, b = m.SenderID, *m.RecipientID
	if b < a {
		a, b = b, a
	}
	return a, b
}

type writeStmts struct {
	once     sync.Once
	err      error
	message  *sql.Stmt
	key      *sql.Stmt
	partners *sql.Stmt
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
		if st.key, st.err = s.w.DB.PrepareContext(ctx, insertKeySQLite); st.err != nil {
			return
		}
		st.partners, st.err = s.w.DB.PrepareContext(ctx, insertPartnersSQLite)
	})
	return st, st.err
}

func messageArgs(m *models.Message) []any {
	return []any{m.ID, m.Conversation, m.RoomID, m.SenderID, m.RecipientID, m.CipherBytes, m.NonceBytes, m.AttachmentID, m.ContentHash, m.CreatedAt.Micros(), m.EnvelopeVersion(), m.SignatureBytes, m.KeyDigestBytes}
}

// The PostgreSQL insert is one statement per message: the message's INSERT
// runs as a data-modifying WITH, and its keys' and (for a direct message)
// its pair of partners' inserts read the row it returns, so a message, its
// keys and its partners are written atomically (the keys' foreign key is
// checked at the end of the statement, when the message row exists). The
// keys travel as four arrays, so the text is the same for any number of
// recipients and pgx prepares it once per connection. ON CONFLICT (id) DO
// NOTHING turns a taken id into no row (the statement answers SELECT 0)
// instead of an error: in a batch, an error would undo every other message
// of the batch's transaction, a conflict (a client's retry) leaves them be.
const (
	insertMessageWithPG = `WITH m AS (` + insertMessagePG + ` ON CONFLICT (id) DO NOTHING RETURNING id), ` +
		`keys AS (INSERT INTO message_keys (message_id, user_id, key_id, kem_ciphertext, wrapped_key) ` +
		`SELECT m.id, u.user_id, u.key_id, u.kem, u.wrapped FROM m, ` +
		`unnest($14::varchar[], $15::varchar[], $16::bytea[], $17::bytea[]) AS u(user_id, key_id, kem, wrapped))`
	insertRoomMessagePG   = insertMessageWithPG + ` SELECT 1 FROM m`
	insertDirectMessagePG = insertMessageWithPG + `, p AS (INSERT INTO direct_partners (user_a, user_b) ` +
		`SELECT $18::varchar, $19::varchar FROM m ON CONFLICT DO NOTHING) SELECT 1 FROM m`
)

// errTaken is what a message whose id is taken gets from the PostgreSQL
// insert; InsertMessage then decides between a retry and a conflict.
var errTaken = models.Conflict("message already exists")

// queuePostgres adds a message's insert to b.
func queuePostgres(b *pgx.Batch, m *models.Message, keys []*models.RecipientKey) {
	// FlatArray: pgx encodes it without reflection.
	users, keyIDs := make(pgtype.FlatArray[string], len(keys)), make(pgtype.FlatArray[string], len(keys))
	kems, wrapped := make(pgtype.FlatArray[[]byte], len(keys)), make(pgtype.FlatArray[[]byte], len(keys))
	for i, k := range keys {
		users[i], keyIDs[i], kems[i], wrapped[i] = k.UserID, k.KeyID, k.KEMBytes, k.WrappedBytes
	}
	args := append(messageArgs(m), users, keyIDs, kems, wrapped)
	if m.RecipientID == nil {
		b.Queue(insertRoomMessagePG, args...)
		return
	}
	pa, pb := directPartners(m)
	b.Queue(insertDirectMessagePG, append(args, pa, pb)...)
}

// inserted reads one message's result from a batch: nil, errTaken when its
// id was taken (no row), or the statement's error.
func inserted(br pgx.BatchResults) error {
	tag, err := br.Exec()
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return errTaken
	}
	return nil
}

// groupWriter commits concurrent message inserts together: one transaction
// (on SQLite one BEGIN, one COMMIT, one WAL append; on PostgreSQL one
// pipeline of statements, one round trip and one commit) for every message
// that arrived while the previous batch was being written, and under
// concurrent load for those of a short linger more. Each message gets its
// own result: one that fails does not fail the others.
type groupWriter struct {
	reqs     chan insertReq
	stop     chan struct{}
	done     sync.WaitGroup
	stopOnce sync.Once
	commit   func(batch []insertReq)
	linger   bool
	// beforeCommit, when set (by tests, before the first insert), is called
	// with each batch's size before it is written.
	beforeCommit func(n int)
}

type insertReq struct {
	m    *models.Message
	keys []*models.RecipientKey
	err  chan error
}

// maxBatch bounds one transaction, so that a burst does not delay the first
// message of the batch for long; maxBatchKeys bounds it by recipient keys
// (about 1.2 KB each), so that room messages batch in fewer.
const (
	maxBatch     = 256
	maxBatchKeys = 2048
)

// After draining the queue, a writer waits up to linger for a batch of
// lingerBatch, but only while senders are arriving concurrently: the previous
// batch held more than one message and was committed less than lingerRecent
// ago. A commit's cost is largely per transaction (its dirty pages written
// to the WAL), so a fuller batch costs less per message, and a lone message
// is never delayed. Measured with qchat-load (docs/PERFORMANCE.md): on
// SQLite 2 ms cut server CPU by ~7% per direct and per room message, 1 ms by
// less than the runs' spread; on PostgreSQL, whose commit is also paid per
// transaction, it made batches of 3.8 messages 4.9 on average.
const (
	linger       = 2 * time.Millisecond
	lingerBatch  = 64
	lingerRecent = 10 * time.Millisecond
)

// newGroupWriter starts workers goroutines that take batches from one queue
// and hand each to commit, which must answer every request of the batch.
func newGroupWriter(workers int, lingering bool, commit func(batch []insertReq)) *groupWriter {
	g := &groupWriter{reqs: make(chan insertReq, maxBatch), stop: make(chan struct{}), commit: commit, linger: lingering}
	for range workers {
		g.done.Go(g.run)
	}
	return g
}

func (g *groupWriter) close() {
	g.stopOnce.Do(func() { close(g.stop) })
	g.done.Wait()
}

// insert queues one message and waits for its batch to commit.
func (g *groupWriter) insert(ctx context.Context, m *models.Message, keys []*models.RecipientKey) error {
	r := insertReq{m: m, keys: keys, err: make(chan error, 1)}
	select {
	case g.reqs <- r:
	case <-g.stop:
		return sql.ErrConnDone
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the insert happens whatever the caller does; a caller that
	// gives up and retries with the same id gets the idempotent answer.
	return <-r.err
}

func (g *groupWriter) run() {
	timer := time.NewTimer(linger)
	timer.Stop()
	prev, committed := 0, time.Time{}
	for {
		var first insertReq
		select {
		case <-g.stop:
			return
		case first = <-g.reqs:
		}
		batch, keys := []insertReq{first}, len(first.keys)
	drain:
		for len(batch) < maxBatch && keys < maxBatchKeys {
			select {
			case r := <-g.reqs:
				batch, keys = append(batch, r), keys+len(r.keys)
			default:
				break drain
			}
		}
		if g.linger && prev > 1 && len(batch) < lingerBatch && time.Since(committed) < lingerRecent {
			timer.Reset(linger)
		wait:
			for len(batch) < lingerBatch && keys < maxBatchKeys {
				select {
				case r := <-g.reqs:
					batch, keys = append(batch, r), keys+len(r.keys)
				case <-timer.C:
					break wait
				case <-g.stop:
					break wait
				}
			}
			timer.Stop()
		}
		if g.beforeCommit != nil {
			g.beforeCommit(len(batch))
		}
		g.commit(batch)
		prev, committed = len(batch), time.Now()
	}
}

// pgWriters is how many batches are written to PostgreSQL at once, each on
// a connection of the pool: while one waits for its commit (or for a lock:
// a user being deleted holds their row), the next gathers the messages that
// arrive meanwhile. One writer made fuller batches (6-7 messages against 4-5
// under qchat-load's dm), which saved PostgreSQL's CPU but not QChat's.
const pgWriters = 2

// pgBatchTimeout bounds a batch's time on PostgreSQL: the callers wait for
// it whatever their own contexts say.
const pgBatchTimeout = 30 * time.Second

// commitBatchPostgres sends a batch as one pipeline: PostgreSQL runs the
// statements in one implicit transaction and commits them together. A taken
// id is not an error (see insertMessageWithPG), so a batch of messages and
// retries commits whole. Any other error from the server (a key for a user
// deleted meanwhile) rolls the whole transaction back: then each message is
// written again on its own, so that only the failing one fails. An error of
// the connection is everyone's: whether the commit happened is unknown, and
// a client's retry with the same id gets the idempotent answer.
func (s *Store) commitBatchPostgres(batch []insertReq) {
	ctx, cancel := context.WithTimeout(context.Background(), pgBatchTimeout)
	defer cancel()
	b := &pgx.Batch{QueuedQueries: make([]*pgx.QueuedQuery, 0, len(batch))}
	for _, r := range batch {
		queuePostgres(b, r.m, r.keys)
	}
	br := s.pool.SendBatch(ctx, b)
	errs := make([]error, len(batch))
	var failed error // the first error other than a taken id
	for i := range batch {
		errs[i] = inserted(br)
		if failed == nil && errs[i] != nil && errs[i] != errTaken {
			failed = errs[i]
		}
	}
	if err := br.Close(); failed == nil {
		failed = err
	}
	var pgErr *pgconn.PgError
	switch {
	case failed == nil: // committed
	case len(batch) > 1 && errors.As(failed, &pgErr):
		for i, r := range batch {
			errs[i] = s.insertMessagePostgres(ctx, r.m, r.keys)
		}
	default: // nothing committed, or unknown: a result read before the error says nothing
		for i := range errs {
			errs[i] = failed
		}
	}
	for i, r := range batch {
		r.err <- errs[i]
	}
}

// insertMessagePostgres writes one message in a transaction of its own.
func (s *Store) insertMessagePostgres(ctx context.Context, m *models.Message, keys []*models.RecipientKey) error {
	b := &pgx.Batch{}
	queuePostgres(b, m, keys)
	br := s.pool.SendBatch(ctx, b)
	err := inserted(br)
	return errors.Join(err, br.Close())
}

// commitBatch writes a batch in one transaction. A message whose row fails
// (a taken id) fails alone: SQLite undoes just that statement, and a failed
// key or partners insert removes its message again (the keys follow by
// cascade; a partners row is only inserted after everything else of its
// message succeeded).
func (s *Store) commitBatch(batch []insertReq) {
	ctx := context.Background()
	errs := make([]error, len(batch))
	err := s.w.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		ms := tx.Tx.StmtContext(ctx, s.stmts.message)
		ks := tx.Tx.StmtContext(ctx, s.stmts.key)
		var ps *sql.Stmt
		for i, r := range batch {
			if _, err := ms.ExecContext(ctx, messageArgs(r.m)...); err != nil {
				errs[i] = err
				continue
			}
			var err error
			for _, k := range r.keys {
				if _, err = ks.ExecContext(ctx, k.MessageID, k.UserID, k.KeyID, k.KEMBytes, k.WrappedBytes); err != nil {
					break
				}
			}
			if err == nil && r.m.RecipientID != nil {
				if ps == nil {
					ps = tx.Tx.StmtContext(ctx, s.stmts.partners)
				}
				a, b := directPartners(r.m)
				_, err = ps.ExecContext(ctx, a, b)
			}
			if err != nil {
				errs[i] = err
				if _, derr := tx.Tx.ExecContext(ctx, `DELETE FROM messages WHERE id = ?`, r.m.ID); derr != nil {
					return derr
				}
			}
		}
		return nil
	})
	for i, r := range batch {
		if err != nil {
			r.err <- err
		} else {
			r.err <- errs[i]
		}
	}
}
