package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/qchat/qchat/internal/reqctx"
)

func TestMain(m *testing.M) {
	// lumberjack starts a goroutine per file that its Close does not stop
	// (natefinch/lumberjack v2.2.1); it is idle and owned by the library.
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("gopkg.in/natefinch/lumberjack%2ev2.(*Logger).millRun"))
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in      string
		want    slog.Level
		wantErr bool
	}{
		{"", slog.LevelInfo, false},
		{"info", slog.LevelInfo, false},
		{"DEBUG", slog.LevelDebug, false},
		{"warn", slog.LevelWarn, false},
		{"error", slog.LevelError, false},
		{"verbose", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseLevel(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("ParseLevel(%q) = %v, %v; want %v, err %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	tests := []struct {
		key      string
		redacted bool
	}{
		{"password", true},
		{"Password", true},
		{"new_password", true},
		{"token", true},
		{"accessToken", true},
		{"Authorization", true},
		{"secret", true},
		{"secretKey", true},
		{"secret_key", true},
		{"seed", true},
		{"plaintext", true},
		{"cookie", true},
		{"Set-Cookie", true},
		{"user_id", false},
		{"operation", false},
		{"tokens_used", false},
		{"public_key", false},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: Redact}))
			log.Info("m", tt.key, "hunter2", "nested", slog.GroupValue(slog.String(tt.key, "hunter2")))
			leaked := strings.Contains(buf.String(), "hunter2")
			if leaked == tt.redacted {
				t.Fatalf("key %q: redacted=%v, line %s", tt.key, !leaked, buf.String())
			}
		})
	}
}

func decodeLines(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func TestNewConsole(t *testing.T) {
	tests := []struct {
		name       string
		cfg        Config
		wantJSON   bool
		wantColour bool
	}{
		{"production is JSON", Config{Production: true}, true, false},
		{"development to a pipe has no colour", Config{}, false, false},
		{"development forced colour", Config{ForceColor: true}, false, true},
		{"NoColor wins", Config{ForceColor: true, NoColor: true}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tt.cfg.Stdout = &buf
			tt.cfg.Level = "info"
			log, c, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := reqctx.WithRequestID(context.Background(), "req-1")
			log.InfoContext(ctx, "hello", "password", "hunter2", "user_id", "u1")
			log.Debug("hidden")
			out := buf.String()
			if strings.Contains(out, "hunter2") || strings.Contains(out, "hidden") {
				t.Fatalf("leaked or unfiltered: %s", out)
			}
			if got := strings.Contains(out, "\x1b["); got != tt.wantColour {
				t.Fatalf("colour = %v, want %v: %q", got, tt.wantColour, out)
			}
			if !strings.Contains(out, "req-1") {
				t.Fatalf("request id missing: %s", out)
			}
			if tt.wantJSON {
				lines := decodeLines(t, buf.Bytes())
				if len(lines) != 1 || lines[0]["msg"] != "hello" || lines[0]["request_id"] != "req-1" {
					t.Fatalf("lines = %v", lines)
				}
			}
		})
	}
}

func TestNewBadLevel(t *testing.T) {
	if _, _, err := New(Config{Level: "loud"}); err == nil {
		t.Fatal("want an error for an unknown level")
	}
}

func TestFilesByLevel(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)}
	var console bytes.Buffer
	log, c, err := New(Config{Production: true, Level: "info", Dir: dir, Stdout: &console, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("debug line")
	log.Info("info line", "token", "abc")
	log.Error("error line")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	msgs := func(name string) []string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("abc")) {
			t.Fatalf("%s leaked a token: %s", name, b)
		}
		var out []string
		for _, l := range decodeLines(t, b) {
			out = append(out, l["msg"].(string))
		}
		return out
	}
	tests := []struct {
		file string
		want []string
	}{
		{AppLogName, []string{"info line", "error line"}},
		{ErrorLogName, []string{"error line"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			if got := msgs(tt.file); !slices.Equal(got, tt.want) {
				t.Fatalf("%s = %v, want %v", tt.file, got, tt.want)
			}
		})
	}
	if got := len(decodeLines(t, console.Bytes())); got != 2 {
		t.Fatalf("console lines = %d, want 2", got)
	}
}

// backups lists the rotated files of prefix in dir, sorted.
func backups(t *testing.T, dir, prefix string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), prefix+"-") {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestDailyRotation(t *testing.T) {
	dir := t.TempDir()
	day1 := time.Date(2024, 3, 10, 23, 59, 0, 0, time.UTC)
	clock := &fakeClock{t: day1}
	log, c, err := New(Config{Production: true, Dir: dir, Stdout: &bytes.Buffer{}, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	log.Error("first day")
	clock.Set(day1.Add(30 * time.Second)) // same day: no rotation
	log.Error("still first day")
	if got := backups(t, dir, "app"); len(got) != 0 {
		t.Fatalf("rotated within a day: %v", got)
	}

	clock.Set(day1.Add(2 * time.Minute)) // past midnight
	log.Error("second day")
	for _, prefix := range []string{"app", "error"} {
		t.Run(prefix, func(t *testing.T) {
			bs := backups(t, dir, prefix)
			if len(bs) != 1 {
				t.Fatalf("backups = %v, want one", bs)
			}
			old, _ := os.ReadFile(filepath.Join(dir, bs[0]))
			cur, _ := os.ReadFile(filepath.Join(dir, prefix+".log"))
			if !bytes.Contains(old, []byte("first day")) || bytes.Contains(old, []byte("second day")) {
				t.Fatalf("backup holds %s", old)
			}
			if !bytes.Contains(cur, []byte("second day")) || bytes.Contains(cur, []byte("first day")) {
				t.Fatalf("current holds %s", cur)
			}
		})
	}
}

func TestRotatesFileLeftByEarlierDay(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2024, 3, 10, 8, 0, 0, 0, time.UTC)
	path := filepath.Join(dir, AppLogName)
	if err := os.WriteFile(path, []byte("{\"msg\":\"yesterday\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, now.Add(-24*time.Hour), now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	log, c, err := New(Config{Production: true, Dir: dir, Stdout: &bytes.Buffer{}, Clock: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("today")
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	cur, _ := os.ReadFile(path)
	if bytes.Contains(cur, []byte("yesterday")) {
		t.Fatalf("yesterday's lines were not moved aside: %s", cur)
	}
	if bs := backups(t, dir, "app"); len(bs) != 1 {
		t.Fatalf("backups = %v", bs)
	}
}

func TestPrune(t *testing.T) {
	now := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
	name := func(prefix string, age time.Duration, suffix string) string {
		return prefix + "-" + now.Add(-age).UTC().Format(backupTimeFormat) + suffix
	}
	day := 24 * time.Hour
	tests := []struct {
		file string
		kept bool
	}{
		{name("app", 13*day, ".log"), true},
		{name("app", 14*day-time.Minute, ".log"), true},
		{name("app", 14*day+time.Minute, ".log"), false},
		{name("app", 40*day, ".log.gz"), false},
		{name("error", 20*day, ".log"), true}, // errors are kept 30 days
		{name("error", 31*day, ".log"), false},
		{"app-notatime.log", true},
		{"notes.txt", true},
	}
	dir := t.TempDir()
	for _, tt := range tests {
		if err := os.WriteFile(filepath.Join(dir, tt.file), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	clock := &fakeClock{t: now.Add(-day)}
	log, c, err := New(Config{Production: true, Dir: dir, Stdout: &bytes.Buffer{}, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	log.Error("yesterday") // opens the files before the day changes
	clock.Set(now)
	log.Error("today") // rotates and prunes at now
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			_, err := os.Stat(filepath.Join(dir, tt.file))
			if kept := err == nil; kept != tt.kept {
				t.Fatalf("kept = %v, want %v", kept, tt.kept)
			}
		})
	}
}

func TestFanoutGroupsAndAttrs(t *testing.T) {
	var a, b bytes.Buffer
	h := Fanout(
		slog.NewJSONHandler(&a, &slog.HandlerOptions{Level: slog.LevelDebug}),
		slog.NewJSONHandler(&b, &slog.HandlerOptions{Level: slog.LevelError}),
	)
	log := slog.New(h).With("svc", "qchat").WithGroup("g")
	log.Debug("d", "k", 1)
	log.Error("e", "k", 2)
	la, lb := decodeLines(t, a.Bytes()), decodeLines(t, b.Bytes())
	if len(la) != 2 || len(lb) != 1 {
		t.Fatalf("a=%v b=%v", la, lb)
	}
	if lb[0]["svc"] != "qchat" || lb[0]["g"].(map[string]any)["k"] != float64(2) {
		t.Fatalf("attrs lost: %v", lb[0])
	}
}
