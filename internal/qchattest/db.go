// Package qchattest holds test helpers: databases of both dialects, a real
// QChat server on a loopback port, a GraphQL client and websocket clients for
// both subscription protocols.
package qchattest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest/testenv"
)

// PostgresURL returns the test PostgreSQL URL. Without one the test is skipped,
// except under CI=true where a missing service is a failure.
func PostgresURL(t testing.TB) string {
	t.Helper()
	return testenv.Service(t, "PostgreSQL", "QCHAT_TEST_POSTGRES_URL")
}

// ForEachDatabase runs fn once on a fresh SQLite store and once on a fresh
// PostgreSQL schema, each migrated.
func ForEachDatabase(t *testing.T, fn func(t *testing.T, store *db.Store)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, NewSQLite(t)) })
	t.Run("postgres", func(t *testing.T) { fn(t, NewPostgres(t)) })
}

// NewSQLite opens a migrated SQLite store in a temporary directory.
func NewSQLite(t testing.TB) *db.Store {
	t.Helper()
	s, err := db.Open(context.Background(), "", t.TempDir(), db.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate sqlite: %v", err)
	}
	return s
}

// NewPostgres opens a migrated store in a schema of its own, dropped when the
// test ends, so that parallel runs never collide.
func NewPostgres(t testing.TB) *db.Store {
	t.Helper()
	base := PostgresURL(t)
	u := PostgresSchemaURL(t, base)
	s, err := db.Open(context.Background(), u, "", db.Options{MaxOpenConns: 10})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatalf("migrate postgres: %v", err)
	}
	return s
}

// PostgresSchemaURL creates a fresh schema and returns base with its
// search_path set to it; the schema is dropped at cleanup.
func PostgresSchemaURL(t testing.TB, base string) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "qchat_test_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("postgres: %v", err)
	}
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		_ = admin.Close()
		if os.Getenv("CI") != "true" {
			testenv.Skip(t, "PostgreSQL", fmt.Sprintf("not reachable at QCHAT_TEST_POSTGRES_URL: %v", err))
		}
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		_ = admin.Close()
	})
	pu, err := url.Parse(base)
	if err != nil {
		t.Fatalf("QCHAT_TEST_POSTGRES_URL: %v", err)
	}
	q := pu.Query()
	q.Set("search_path", schema)
	pu.RawQuery = q.Encode()
	return pu.String()
}
