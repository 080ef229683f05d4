package db

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

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
	insertMessageSQLite = `INSERT INTO messages (id, conversation, room_id, sender_id, recipient_id, ciphertext, nonce, attachment_id, content_hash, created_at, version, signature, key_digests) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	insertKeySQLite     = `INSERT INTO message_keys (message_id, user_id, key_id, kem_ciphertext, wrapped_key) VALUES (?, ?, ?, ?, ?)`
	insertMessagePG     = `INSERT INTO messages (id, conversation, room_id, sender_id, recipient_id, ciphertext, nonce, attachment_id, content_hash, created_at, version, signature, key_digests) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`
	// A direct message records its pair of users (see directPartners): the
	// first message either way writes the row, every later one finds it
	// and writes nothing.
	insertPartnersSQLite = `INSERT INTO direct_partners (user_a, user_b) VALUES (?, ?) ON CONFLICT DO NOTHING`
	insertPartnersPG     = `INSERT INTO direct_partners (user_a, user_b) VALUES ($14, $15) ON CONFLICT DO NOTHING`
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

// insertMessagePostgres writes a message, its keys and (for a direct
// message) its pair of partners in one statement: the message's INSERT and
// the partners' run as data-modifying WITHs, so the whole write is one
// round trip and atomic without BEGIN and COMMIT of its own (the keys'
// foreign key is checked at the end of the statement, when the message row
// exists). (SQLite inserts go through the group writer, see commitBatch.)
func (s *Store) insertMessagePostgres(ctx context.Context, m *models.Message, keys []*models.RecipientKey) error {
	args := append(make([]any, 0, 15+5*len(keys)), messageArgs(m)...)
	with := "WITH "
	if m.RecipientID != nil {
		pa, pb := directPartners(m)
		args = append(args, pa, pb)
		with = "WITH p AS (" + insertPartnersPG + "), "
	}
	if len(keys) == 0 { // not something the service sends
		q := insertMessagePG
		if m.RecipientID != nil {
			q = "WITH m AS (" + insertMessagePG + ") " + insertPartnersPG
		}
		_, err := s.w.DB.ExecContext(ctx, q, args...)
		return err
	}
	var b strings.Builder
	b.Grow(len(with) + len(insertMessagePG) + 110 + 32*len(keys))
	b.WriteString(with)
	b.WriteString("m AS (")
	b.WriteString(insertMessagePG)
	b.WriteString(`) INSERT INTO message_keys (message_id, user_id, key_id, kem_ciphertext, wrapped_key) VALUES `)
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		n := len(args)
		b.WriteString("($" + strconv.Itoa(n+1) + ",$" + strconv.Itoa(n+2) + ",$" + strconv.Itoa(n+3) + ",$" + strconv.Itoa(n+4) + ",$" + strconv.Itoa(n+5) + ")")
		args = append(args, k.MessageID, k.UserID, k.KeyID, k.KEMBytes, k.WrappedBytes)
	}
	_, err := s.w.DB.ExecContext(ctx, b.String(), args...)
	return err
}

// groupWriter commits concurrent message inserts together on SQLite: one
// transaction (one BEGIN, one COMMIT, one WAL append) for every message that
// arrived while the previous batch was being written, and under concurrent
// load for those of a short linger more. SQLite has one writer
// anyway; batching turns waiting in line into shared work.
type groupWriter struct {
	reqs     chan insertReq
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

type insertReq struct {
	m    *models.Message
	keys []*models.RecipientKey
	err  chan error
}

// maxBatch bounds one transaction, so that a burst does not delay the first
// message of the batch for long.
const maxBatch = 256

// After draining the queue, the writer waits up to linger for a batch of
// lingerBatch, but only while senders are arriving concurrently: the previous
// batch held more than one message and was committed less than lingerRecent
// ago. A commit's cost is largely per transaction (its dirty pages written
// to the WAL), so a fuller batch costs less per message, and a lone message
// is never delayed. Measured with qchat-load (docs/PERFORMANCE.md): 2 ms
// cut server CPU by ~7% per direct and per room message; 1 ms by less than
// the runs' spread.
const (
	linger       = 2 * time.Millisecond
	lingerBatch  = 64
	lingerRecent = 10 * time.Millisecond
)

func newGroupWriter(s *Store) *groupWriter {
	g := &groupWriter{reqs: make(chan insertReq, maxBatch), stop: make(chan struct{}), done: make(chan struct{})}
	go g.run(s)
	return g
}

func (g *groupWriter) close() {
	g.stopOnce.Do(func() { close(g.stop) })
	<-g.done
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

func (g *groupWriter) run(s *Store) {
	defer close(g.done)
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
		batch := []insertReq{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-g.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		if prev > 1 && len(batch) < lingerBatch && time.Since(committed) < lingerRecent {
			timer.Reset(linger)
		wait:
			for len(batch) < lingerBatch {
				select {
				case r := <-g.reqs:
					batch = append(batch, r)
				case <-timer.C:
					break wait
				case <-g.stop:
					break wait
				}
			}
			timer.Stop()
		}
		s.commitBatch(batch)
		prev, committed = len(batch), time.Now()
	}
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
