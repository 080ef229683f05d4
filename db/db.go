// Package db is QChat's storage: Open picks the dialect from the URL, and every
// query lives here. Driver errors leave this package as model errors, and
// dialect differences stay inside it.
package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"github.com/uptrace/bun/migrate"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/qchat/qchat/migrations"
	"github.com/qchat/qchat/models"
)

// Dialect names the database engine behind a Store.
type Dialect string

const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Options tune the connection pool.
type Options struct {
	MinConns        int // PostgreSQL: connections kept open (DB_POOL_MIN)
	SSLMode         string
	SSLRootCert     string
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	ConnMaxIdleTime time.Duration
}

func (o Options) withDefaults() Options {
	if o.MaxOpenConns <= 0 {
		o.MaxOpenConns = 20
	}
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 2
	}
	if o.ConnMaxLifetime <= 0 {
		o.ConnMaxLifetime = time.Hour
	}
	if o.ConnMaxIdleTime <= 0 {
		o.ConnMaxIdleTime = 10 * time.Minute
	}
	return o
}

// Store is the database. On SQLite, writes go through a single connection so they
// are serialised deliberately instead of failing with "database is locked", and
// reads use a pool of their own (WAL lets them run beside the writer).
type Store struct {
	dialect Dialect
	w       *bun.DB // writes and transactions
	r       *bun.DB // reads; the same as w on PostgreSQL
	pool    *pgxpool.Pool
	stmts   writeStmts   // SQLite statements prepared on the writer connection
	writer  *groupWriter // batches concurrent message inserts
}

// Open connects to databaseURL: empty means the SQLite file dataDir/qchat.db,
// postgres:// or postgresql:// means PostgreSQL, sqlite:PATH or file:PATH an
// explicit SQLite file. It checks the connection before returning.
func Open(ctx context.Context, databaseURL, dataDir string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	switch {
	case databaseURL == "":
		if dataDir == "" {
			dataDir = "./data"
		}
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create DATA_DIR %q: %w", dataDir, err)
		}
		return openSQLite(ctx, filepath.Join(dataDir, "qchat.db"), opts)
	case strings.HasPrefix(databaseURL, "postgres://"), strings.HasPrefix(databaseURL, "postgresql://"):
		if _, err := url.Parse(databaseURL); err != nil {
			return nil, fmt.Errorf("DATABASE_URL is not a valid URL: %w", err)
		}
		return openPostgres(ctx, databaseURL, opts)
	case strings.HasPrefix(databaseURL, "sqlite:"), strings.HasPrefix(databaseURL, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(databaseURL, "sqlite:"), "file:")
		path = strings.TrimPrefix(path, "//")
		if path == "" {
			return nil, errors.New("DATABASE_URL sqlite: needs a file path, e.g. sqlite:./data/qchat.db")
		}
		return openSQLite(ctx, path, opts)
	default:
		return nil, errors.New("DATABASE_URL must start with postgres:// (or be unset for SQLite in DATA_DIR)")
	}
}

func openSQLite(ctx context.Context, path string, opts Options) (*Store, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create database directory %q: %w", dir, err)
		}
	}
	// synchronous(NORMAL) in WAL mode: a commit survives the process being
	// killed (the WAL is written before commit returns); only an OS crash or power
	// loss can drop the last transactions. _txlock=immediate takes the write lock
	// at BEGIN so a transaction never has to upgrade a read lock.
	// wal_autocheckpoint(4000): the WAL is copied back into the database every
	// 4,000 pages (16 MB) instead of SQLite's default 1,000. The pages every
	// batch of messages dirties again (the tails of the indexes) are copied
	// once per checkpoint, and the checkpoint's fsync is paid a quarter as
	// often: 118 -> 99 µs of CPU per direct message written
	// (BenchmarkInsertDirectMessage, 30,000 messages).
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=wal_autocheckpoint(4000)&_txlock=immediate"
	wdb, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetConnMaxLifetime(0)
	rdb, err := sql.Open("sqlite", dsn+"&_pragma=query_only(1)")
	if err != nil {
		_ = wdb.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	rdb.SetMaxOpenConns(max(opts.MaxOpenConns, 4))
	rdb.SetMaxIdleConns(max(opts.MaxIdleConns, 4))
	s := &Store{dialect: SQLite, w: bun.NewDB(wdb, sqlitedialect.New()), r: bun.NewDB(rdb, sqlitedialect.New())}
	if err := s.Ping(ctx); err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("open sqlite %q: %w", path, err)
	}
	s.writer = newGroupWriter(1, true, s.commitBatch)
	return s, nil
}

func openPostgres(_ context.Context, dsn string, opts Options) (*Store, error) {
	dsn, err := withTLS(dsn, opts.SSLMode, opts.SSLRootCert)
	if err != nil {
		return nil, err
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL is not a valid PostgreSQL URL: %s", oneLine(err))
	}
	// pgxpool rather than database/sql's own pool: it keeps DB_POOL_MIN
	// connections open, checks idle ones in the background, and replaces
	// broken ones, so the server recovers by itself when PostgreSQL returns.
	pcfg.MaxConns = int32(opts.MaxOpenConns)
	pcfg.MinConns = int32(min(opts.MinConns, opts.MaxOpenConns))
	pcfg.MaxConnLifetime = opts.ConnMaxLifetime
	pcfg.MaxConnIdleTime = opts.ConnMaxIdleTime
	pcfg.HealthCheckPeriod = 30 * time.Second
	// Connecting is lazy: a PostgreSQL that is briefly down does not stop the
	// server from starting (see WaitReachable).
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %s", oneLine(err))
	}
	sqldb := stdlib.OpenDBFromPool(pool)
	sqldb.SetMaxOpenConns(opts.MaxOpenConns)
	bdb := bun.NewDB(sqldb, pgdialect.New())
	s := &Store{dialect: Postgres, w: bdb, r: bdb, pool: pool}
	s.writer = newGroupWriter(pgWriters, true, s.commitBatchPostgres)
	return s, nil
}

// withTLS adds sslmode and sslrootcert (DB_SSL_MODE, DB_SSL_CA) to a
// PostgreSQL URL: with a provider's CA file, verify-full checks both the
// certificate chain and the host name.
func withTLS(dsn, mode, rootCert string) (string, error) {
	if mode == "" && rootCert == "" {
		return dsn, nil
	}
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("DATABASE_URL is not a valid URL: %s", oneLine(err))
	}
	q := u.Query()
	if rootCert != "" {
		if _, err := os.Stat(rootCert); err != nil {
			return "", fmt.Errorf("DB_SSL_CA: cannot read %s: %w", rootCert, err)
		}
		q.Set("sslrootcert", rootCert)
		if mode == "" && q.Get("sslmode") == "" {
			mode = "verify-full"
		}
	}
	if mode != "" {
		q.Set("sslmode", mode)
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// WaitReachable pings the database with growing pauses until it answers or
// timeout passes; the server calls it at start so that a PostgreSQL still
// booting beside it is waited for instead of being fatal.
func (s *Store) WaitReachable(ctx context.Context, timeout time.Duration, onRetry func(err error, next time.Duration)) error {
	deadline := time.Now().Add(timeout)
	pause := 250 * time.Millisecond
	for {
		err := s.Ping(ctx)
		if err == nil {
			return nil
		}
		if time.Now().Add(pause).After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("cannot reach the database within %s (check DATABASE_URL host, port and credentials): %s", timeout, oneLine(err))
		}
		if onRetry != nil {
			onRetry(err, pause)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pause):
		}
		pause = min(pause*2, 5*time.Second)
	}
}

// Dialect reports the engine.
func (s *Store) Dialect() Dialect { return s.dialect }

// DB exposes the write handle for migrations and tests.
func (s *Store) DB() *bun.DB { return s.w }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.w.PingContext(ctx); err != nil {
		return err
	}
	if s.r != s.w {
		return s.r.PingContext(ctx)
	}
	return nil
}

// Stats reports the connection pool: pgxpool's on PostgreSQL (database/sql
// only wraps it there), the write handle's on SQLite.
func (s *Store) Stats() sql.DBStats {
	if s.pool == nil {
		return s.w.Stats()
	}
	st := s.pool.Stat()
	return sql.DBStats{
		MaxOpenConnections: int(st.MaxConns()),
		OpenConnections:    int(st.TotalConns()),
		InUse:              int(st.AcquiredConns()),
		Idle:               int(st.IdleConns()),
		WaitCount:          st.EmptyAcquireCount(),
		WaitDuration:       st.EmptyAcquireWaitTime(),
	}
}

// Close closes every connection.
func (s *Store) Close() error {
	if s.writer != nil {
		s.writer.close()
	}
	if s.stmts.message != nil {
		_ = s.stmts.message.Close()
	}
	if s.stmts.key != nil {
		_ = s.stmts.key.Close()
	}
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	if s.pool != nil {
		s.pool.Close()
	}
	return err
}

// Migrator returns bun's migrator over QChat's migrations.
func (s *Store) Migrator() *migrate.Migrator {
	return migrate.NewMigrator(s.w, migrations.New())
}

// Migrate applies every pending migration. On PostgreSQL, instances starting
// together take turns through a session advisory lock, which the database
// drops by itself if the holder dies (bun's lock table would stay locked
// after a kill). SQLite serves one process, so it needs none.
func (s *Store) Migrate(ctx context.Context) error {
	m := s.Migrator()
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("init migrations: %w", err)
	}
	if s.dialect == Postgres {
		conn, err := s.w.Conn(ctx)
		if err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", migrationLockID); err != nil {
			return fmt.Errorf("migrate: wait for the migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(?)", migrationLockID) //nolint:errcheck // the session ends anyway
	}
	if _, err := m.Migrate(ctx); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// migrationLockID names QChat's advisory lock ("qchatmig" in ASCII).
const migrationLockID int64 = 0x71636861746d6967

// Pending reports whether migrations remain to be applied.
func (s *Store) Pending(ctx context.Context) (int, error) {
	ms, err := s.Migrator().MissingMigrations(ctx)
	if err != nil {
		return 0, err
	}
	return len(ms), nil
}

// tx runs fn in a transaction on the write handle.
func (s *Store) tx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	return s.w.RunInTx(ctx, nil, fn)
}

// translate turns driver errors into model errors.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return models.NotFound(what)
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "23505":
			return models.Conflict("%s already exists", what)
		case "23503":
			return models.NotFound(what)
		}
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return models.Conflict("%s already exists", what)
		case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
			return models.NotFound(what)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// oneLine folds a multi-line driver error (pgx lists every address it tried) so
// that start-up failures print as one line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
}

func isConflict(err error) bool { return errors.Is(err, models.ErrConflict) }

// AddQueryHook installs a bun query hook (slow-query and error logging) on
// every handle of the store.
func (s *Store) AddQueryHook(h bun.QueryHook) {
	s.w.AddQueryHook(h)
	if s.r != s.w {
		s.r.AddQueryHook(h)
	}
}
