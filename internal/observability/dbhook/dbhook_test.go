package dbhook

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/sqlitedialect"
	"go.uber.org/goleak"
	_ "modernc.org/sqlite"

	"github.com/qchat/qchat/internal/qchattest/syncbuf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNormalize(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"string", `SELECT * FROM "users" WHERE "username" = 'alice'`, `SELECT * FROM "users" WHERE "username" = ?`},
		{"escaped quote", `INSERT INTO t (a) VALUES ('it''s secret')`, `INSERT INTO t (a) VALUES (?)`},
		{"numbers", `SELECT * FROM t WHERE id = 42 AND score > 3.5 LIMIT 10`, `SELECT * FROM t WHERE id = ? AND score > ? LIMIT ?`},
		{"identifiers with digits stay", `SELECT col1, t2.x FROM t2`, `SELECT col1, t2.x FROM t2`},
		{"blob", `INSERT INTO k (pub) VALUES (X'deadbeef')`, `INSERT INTO k (pub) VALUES (?)`},
		{"escape string", `SELECT E'sec\'ret'`, `SELECT ?`},
		{"bytea", `UPDATE k SET v = '\xdeadbeef' WHERE id = 'a'`, `UPDATE k SET v = ? WHERE id = ?`},
		{"dollar quoted", `SELECT $tag$ top 'secret' $tag$, $$x$$`, `SELECT ?, ?`},
		{"placeholders stay", `SELECT * FROM t WHERE a = $1 AND b = ?`, `SELECT * FROM t WHERE a = $1 AND b = ?`},
		{"whitespace collapsed", "SELECT\n\t1\n  FROM   t", `SELECT ? FROM t`},
		{"unterminated", `SELECT 'abc`, `SELECT ?`},
		{"timestamps", `WHERE created_at < '2024-03-10 12:00:00+00:00'`, `WHERE created_at < ?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Normalize(tt.in); got != tt.want {
				t.Fatalf("Normalize(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
	if got := Normalize("SELECT " + strings.Repeat("a, ", 2000)); len(got) > maxQueryLen+len("…") {
		t.Fatalf("not truncated: %d", len(got))
	}
}

func TestScrubQuoted(t *testing.T) {
	tests := []struct{ in, want string }{
		{`invalid input syntax for type uuid: "secret-value"`, `invalid input syntax for type uuid: ?`},
		{`near 'x': syntax error`, `near ?: syntax error`},
		{`UNIQUE constraint failed: users.username`, `UNIQUE constraint failed: users.username`},
	}
	for _, tt := range tests {
		if got := scrubQuoted(tt.in); got != tt.want {
			t.Errorf("scrubQuoted(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

type user struct {
	bun.BaseModel `bun:"table:users"`
	ID            int64  `bun:",pk,autoincrement"`
	Username      string `bun:",unique"`
	Password      string
}

// lines takes the JSON log lines written to buf so far (buf is written by the
// hook on bun's goroutine).
func lines(t *testing.T, buf *syncbuf.Buffer) []map[string]any {
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(buf.Take()), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func openDB(t *testing.T) *bun.DB {
	t.Helper()
	sqldb, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	sqldb.SetMaxOpenConns(1)
	db := bun.NewDB(sqldb, sqlitedialect.New())
	t.Cleanup(func() { _ = db.Close() })
	if _, err := db.NewCreateTable().Model((*user)(nil)).Exec(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestHookWithSQLite(t *testing.T) {
	const secret = "hunter2-secret"
	tests := []struct {
		name      string
		step      time.Duration // how long every query takes on the hook's clock
		run       func(ctx context.Context, db *bun.DB) error
		wantLevel string
		wantMsg   string
		wantOp    string
		wantTable string
	}{
		{
			name: "fast query is silent",
			step: time.Millisecond,
			run: func(ctx context.Context, db *bun.DB) error {
				_, err := db.NewInsert().Model(&user{Username: "bob", Password: secret}).Exec(ctx)
				return err
			},
		},
		{
			name: "slow insert is a warning without values",
			step: 250 * time.Millisecond,
			run: func(ctx context.Context, db *bun.DB) error {
				_, err := db.NewInsert().Model(&user{Username: "carol", Password: secret}).Exec(ctx)
				return err
			},
			wantLevel: "WARN", wantMsg: "slow database query", wantOp: "INSERT", wantTable: "users",
		},
		{
			name: "slow raw query with args",
			step: 250 * time.Millisecond,
			run: func(ctx context.Context, db *bun.DB) error {
				_, err := db.ExecContext(ctx, "UPDATE users SET password = ? WHERE username = ?", secret, "nobody")
				return err
			},
			wantLevel: "WARN", wantMsg: "slow database query", wantOp: "UPDATE",
		},
		{
			name: "no rows is not an error",
			step: time.Millisecond,
			run: func(ctx context.Context, db *bun.DB) error {
				var u user
				err := db.NewSelect().Model(&u).Where("username = ?", secret).Scan(ctx)
				if !errors.Is(err, sql.ErrNoRows) {
					return errors.New("want ErrNoRows")
				}
				return nil
			},
		},
		{
			name: "failure is an error without values",
			step: time.Millisecond,
			run: func(ctx context.Context, db *bun.DB) error {
				if _, err := db.NewInsert().Model(&user{Username: "dup", Password: secret}).Exec(ctx); err != nil {
					return err
				}
				if _, err := db.NewInsert().Model(&user{Username: "dup", Password: secret}).Exec(ctx); err == nil {
					return errors.New("want a unique violation")
				}
				return nil
			},
			wantLevel: "ERROR", wantMsg: "database query failed", wantOp: "INSERT", wantTable: "users",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := openDB(t)
			var buf syncbuf.Buffer
			h := New(slog.New(slog.NewJSONHandler(&buf, nil)), 100*time.Millisecond)
			var mu sync.Mutex
			now := time.Unix(0, 0)
			h.now = func() time.Time {
				mu.Lock()
				defer mu.Unlock()
				now = now.Add(tt.step)
				return now
			}
			db.AddQueryHook(h)
			if err := tt.run(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			lines := lines(t, &buf)
			if tt.wantLevel == "" {
				if len(lines) != 0 {
					t.Fatalf("logged %v", lines)
				}
				return
			}
			if len(lines) != 1 {
				t.Fatalf("lines = %v, want one", lines)
			}
			l := lines[0]
			raw, _ := json.Marshal(l)
			t.Logf("%s", raw)
			if strings.Contains(string(raw), secret) {
				t.Fatalf("value leaked: %s", raw)
			}
			if l["level"] != tt.wantLevel || l["msg"] != tt.wantMsg || l["operation"] != tt.wantOp {
				t.Fatalf("line = %s", raw)
			}
			if tt.wantTable != "" && l["table"] != tt.wantTable {
				t.Fatalf("table = %v", l["table"])
			}
			if l["duration_ms"] != float64(tt.step.Milliseconds()) {
				t.Fatalf("duration_ms = %v", l["duration_ms"])
			}
			if q, _ := l["query"].(string); !strings.Contains(q, "users") {
				t.Fatalf("query = %q", q)
			}
		})
	}
}

func TestCanceledIsDebug(t *testing.T) {
	var buf syncbuf.Buffer
	h := New(slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), 0)
	ctx := h.BeforeQuery(context.Background(), nil)
	h.AfterQuery(ctx, &bun.QueryEvent{Query: "SELECT 1", QueryTemplate: "SELECT 1", Err: context.Canceled})
	lines := lines(t, &buf)
	if len(lines) != 1 || lines[0]["level"] != "DEBUG" {
		t.Fatalf("lines = %v", lines)
	}
}
