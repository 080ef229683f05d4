package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/qchat/qchat/internal/qchattest/nodetest"
	"github.com/qchat/qchat/internal/qchattest/syncbuf"
	"github.com/qchat/qchat/internal/qchattest/testenv"
)

const (
	scenarioTimeout = 120 * time.Second
	startTimeout    = 30 * time.Second
	stopTimeout     = 15 * time.Second
)

// result is the last stdout line of scenario.mjs.
type result struct {
	OK         bool     `json:"ok"`
	Plaintexts []string `json:"plaintexts"`
	Secrets    []string `json:"secrets"`    // passwords
	SecretKeys []string `json:"secretKeys"` // base64 seeds
	Usernames  []string `json:"usernames"`  // stored in clear: the positive control of the file scan
	Misuse     int      `json:"misuseChecks"`
	Refusals   int      `json:"clientRefusals"` // what the client itself refused: forged certificates, changed identities, bad backups
}

// TestApolloClient proves the contract from the outside: a Node client built
// only from the API contract and the envelope specifications, versions 1 and 2
// (Apollo Client, graphql-ws, @noble/post-quantum, @noble/hashes, WebCrypto),
// reproduces every fixed vector, then runs its whole scenario against the real
// server binary, on SQLite and on PostgreSQL, and the database holds no
// plaintext, password, passphrase or secret key afterwards.
func TestApolloClient(t *testing.T) {
	node, npm := nodetest.Tools(t)
	nodeDir, err := filepath.Abs("node")
	if err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if installed := nodetest.NPMCI(t, npm, nodeDir); installed {
		t.Logf("npm ci: %v", time.Since(start).Round(time.Millisecond))
	} else {
		t.Logf("npm ci: skipped, node_modules matches package-lock.json")
	}

	t.Run("Vectors", func(t *testing.T) { checkVectors(t, node, nodeDir) })

	start = time.Now()
	bin := filepath.Join(t.TempDir(), "qchat-server")
	build := exec.Command("go", "build", "-o", bin, "..")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	t.Logf("go build: %v", time.Since(start).Round(time.Millisecond))

	t.Run("SQLite", func(t *testing.T) {
		start := time.Now()
		dataDir := t.TempDir()
		srv := startServer(t, bin, map[string]string{"DATA_DIR": dataDir, "DATABASE_URL": ""})
		res := runScenario(t, node, nodeDir, srv.url)
		scanFiles(t, "while the server runs", dataDir, res) // the -wal file is still there
		srv.stop(t)
		scanFiles(t, "after SIGTERM", dataDir, res)
		t.Logf("SQLite: %v (%d plaintexts, %d misuse checks, %d client refusals)", time.Since(start).Round(time.Millisecond), len(res.Plaintexts), res.Misuse, res.Refusals)
	})

	t.Run("PostgreSQL", func(t *testing.T) {
		base := testenv.Service(t, "PostgreSQL", "QCHAT_TEST_POSTGRES_URL")
		start := time.Now()
		db, dsn, schema := freshSchema(t, base)
		srv := startServer(t, bin, map[string]string{"DATA_DIR": t.TempDir(), "DATABASE_URL": dsn})
		res := runScenario(t, node, nodeDir, srv.url)
		srv.stop(t)
		scanPostgres(t, db, schema, res)
		t.Logf("PostgreSQL: %v (%d plaintexts, %d misuse checks, %d client refusals)", time.Since(start).Round(time.Millisecond), len(res.Plaintexts), res.Misuse, res.Refusals)
	})
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// runScenario runs scenario.mjs against url and returns its result line.
func runScenario(t *testing.T, node, dir, graphqlURL string) *result {
	t.Helper()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), scenarioTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "scenario.mjs", graphqlURL)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	logStderr := func() {
		t.Logf("scenario.mjs stderr:\n%s", stderr.String())
		if s := stdout.String(); s != "" {
			t.Logf("scenario.mjs stdout:\n%s", s)
		}
	}
	if err != nil {
		logStderr()
		t.Fatalf("node scenario.mjs %s: %v (context: %v, after %v)", graphqlURL, err, ctx.Err(), time.Since(start).Round(time.Millisecond))
	}
	var res result
	line := lastLine(stdout.String())
	if err := json.Unmarshal([]byte(line), &res); err != nil || !res.OK {
		logStderr()
		t.Fatalf("scenario.mjs did not end with the ok line (%v): %q", err, line)
	}
	if len(res.Plaintexts) == 0 || len(res.Secrets) == 0 || len(res.SecretKeys) == 0 || len(res.Usernames) == 0 {
		t.Fatalf("scenario.mjs reported an empty list: %q", line)
	}
	if testing.Verbose() {
		t.Logf("scenario.mjs progress:\n%s", stderr.String())
	}
	t.Logf("scenario.mjs: %v", time.Since(start).Round(time.Millisecond))
	return &res
}

type server struct {
	url    string
	cmd    *exec.Cmd
	done   chan error // the result of cmd.Wait, sent once
	exited bool       // done was received
	stderr *syncbuf.Buffer
}

var listenRE = regexp.MustCompile(`listening on http://\S*:(\d+)`)

// startServer runs the binary on PORT=0 with env on top of the test's
// environment, waits for its listening line and for /health/ready.
func startServer(t *testing.T, bin string, env map[string]string) *server {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Dir = t.TempDir() // no stray .env from the checkout
	// The scenario makes ~100 requests in two seconds from one address: the
	// internet-facing rate limits are tested elsewhere.
	cmd.Env = append(os.Environ(), "PORT=0", "BCRYPT_COST=4", "APP_ENV=development", "LOG_LEVEL=info",
		"RATE_LIMIT_MAX=0", "AUTH_RATE_LIMIT_MAX=0", "WS_INIT_RATE_LIMIT=0")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, done: make(chan error, 1), stderr: &syncbuf.Buffer{}}
	cmd.Stderr = s.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	t.Cleanup(func() {
		if !s.exited {
			_ = cmd.Process.Kill()
			<-s.done
		}
		if t.Failed() {
			t.Logf("server stderr:\n%s", s.stderr.String())
		}
	})
	port := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				port <- m[1]
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
		s.done <- cmd.Wait()
	}()
	select {
	case p := <-port:
		s.url = "http://127.0.0.1:" + p + "/graphql"
	case err := <-s.done:
		s.exited = true
		t.Fatalf("server exited before listening: %v\nstderr:\n%s", err, s.stderr.String())
	case <-time.After(startTimeout):
		t.Fatalf("server printed no listening line within %v\nstderr:\n%s", startTimeout, s.stderr.String())
	}
	ready := strings.TrimSuffix(s.url, "/graphql") + "/health/ready"
	deadline := time.Now().Add(startTimeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(ready)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s not 200 within %v (last: %v)\nstderr:\n%s", ready, startTimeout, err, s.stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for a graceful exit.
func (s *server) stop(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case err := <-s.done:
		s.exited = true
		if err != nil {
			t.Errorf("server exit after SIGTERM: %v\nstderr:\n%s", err, s.stderr.String())
		}
	case <-time.After(stopTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		s.exited = true
		t.Fatalf("server did not stop within %v of SIGTERM", stopTimeout)
	}
}

// needles are what must never reach the database: every plaintext, every
// password, every secret-key seed (raw and base64).
func needles(t *testing.T, res *result) map[string][]byte {
	t.Helper()
	n := map[string][]byte{}
	for _, p := range res.Plaintexts {
		n["plaintext "+strconvQuote(p)] = []byte(p)
	}
	for _, p := range res.Secrets {
		n["password "+strconvQuote(p)] = []byte(p)
	}
	for _, k := range res.SecretKeys {
		raw, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			t.Fatalf("secret key %q: %v", k, err)
		}
		n["secret key seed (raw) "+k] = raw
		n["secret key seed (base64) "+k] = []byte(k)
	}
	return n
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// scanFiles reads every file in the SQLite data directory (qchat.db, -wal,
// -shm) and fails on any needle; the usernames, stored in clear, must be found
// so that the scan is known to look at real data.
func scanFiles(t *testing.T, when, dir string, res *result) {
	t.Helper()
	var all [][]byte
	var names []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		all = append(all, b)
		names = append(names, fmt.Sprintf("%s (%d bytes)", filepath.Base(path), len(b)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) == 0 {
		t.Fatalf("no files in DATA_DIR %s", dir)
	}
	t.Logf("scanned %s: %s", when, strings.Join(names, ", "))
	for what, needle := range needles(t, res) {
		for i, b := range all {
			if bytes.Contains(b, needle) {
				t.Errorf("%s: %s contains %s", when, names[i], what)
			}
		}
	}
	for _, u := range res.Usernames {
		found := false
		for _, b := range all {
			found = found || bytes.Contains(b, []byte(u))
		}
		if !found {
			t.Errorf("%s: username %q not found in the SQLite files: the scan does not see the data", when, u)
		}
	}
}

// freshSchema creates a schema of its own in the PostgreSQL database at base
// and returns a handle and a DATABASE_URL whose search_path is that schema.
func freshSchema(t *testing.T, base string) (db *sql.DB, dsn, schema string) {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema = "qchat_e2e_" + hex.EncodeToString(b[:])
	db, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatalf("QCHAT_TEST_POSTGRES_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		_ = db.Close()
		t.Fatalf("create schema in QCHAT_TEST_POSTGRES_URL: %v", err)
	}
	t.Cleanup(func() {
		if _, err := db.Exec("DROP SCHEMA " + schema + " CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = db.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("QCHAT_TEST_POSTGRES_URL: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	t.Logf("PostgreSQL schema %s", schema)
	return db, u.String(), schema
}

// scanPostgres dumps every row of every table of the test's schema as text
// (bytea appears as \x hex) and fails on any needle, in clear or in hex; the
// usernames must be found, as on SQLite.
func scanPostgres(t *testing.T, db *sql.DB, schema string, res *result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = $1 AND table_type = 'BASE TABLE' ORDER BY table_name`, schema)
	if err != nil {
		t.Fatalf("list tables: %v", err)
	}
	var tables []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, n)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatalf("no tables in schema %s", schema)
	}
	var dump strings.Builder
	for _, table := range tables {
		q := fmt.Sprintf(`SELECT r::text FROM %s.%s r`, quoteIdent(schema), quoteIdent(table))
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var row string
			if err := rows.Scan(&row); err != nil {
				t.Fatal(err)
			}
			dump.WriteString(row)
			dump.WriteByte('\n')
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			t.Fatal(err)
		}
	}
	text := dump.String()
	t.Logf("scanned %d tables of schema %s (%d bytes as text)", len(tables), schema, len(text))
	for what, needle := range needles(t, res) {
		if strings.Contains(text, string(needle)) || strings.Contains(text, hex.EncodeToString(needle)) {
			t.Errorf("PostgreSQL schema %s contains %s", schema, what)
		}
	}
	for _, u := range res.Usernames {
		if !strings.Contains(text, u) {
			t.Errorf("username %q not found in the PostgreSQL tables: the scan does not see the data", u)
		}
	}
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
