package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest/testenv"
)

const (
	npmCITimeout = 5 * time.Minute
	stepTimeout  = 5 * time.Minute
	stampFile    = ".npm-ci.stamp" // next to package-lock.json
)

// TestTypeScript installs the workspace from package-lock.json and runs, in
// order: the check that the generated operations match graph/*.graphqls,
// the type check (strict), and the library's tests (node:test), which include
// pqcrypto's fixed vectors read from testdata/. It skips without Node.js and
// fails under CI=true.
func TestTypeScript(t *testing.T) {
	npm, err := exec.LookPath("npm")
	if _, errNode := exec.LookPath("node"); err != nil || errNode != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but node/npm are missing (npm: %v, node: %v)", err, errNode)
		}
		testenv.Skip(t, "Node.js", "node and npm are not on PATH")
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if npmCI(t, npm, dir) {
		t.Logf("npm ci: %v", time.Since(start).Round(time.Millisecond))
	}
	for _, script := range []string{"codegen:check", "typecheck", "test"} {
		start := time.Now()
		out, err := runNPM(npm, dir, "run", script)
		if err != nil {
			hint := ""
			if script == "codegen:check" {
				hint = " (the generated operations are stale: run `npm run codegen` in web/ and commit)"
			}
			t.Fatalf("npm run %s%s: %v\n%s", script, hint, err, out)
		}
		t.Logf("npm run %s: %v, %s", script, time.Since(start).Round(time.Millisecond), summary(out))
	}
}

// npmCI installs node_modules from package-lock.json unless the stamp says it
// already did for this exact lock file. It reports whether it ran.
func npmCI(t *testing.T, npm, dir string) bool {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatalf("package-lock.json: %v", err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:]) + "\n"
	stamp := filepath.Join(dir, stampFile)
	if got, err := os.ReadFile(stamp); err == nil && string(got) == want {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", ".package-lock.json")); err == nil {
			return false
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), npmCITimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm ci in %s: %v\n%s", dir, err, b)
	}
	if err := os.WriteFile(stamp, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	return true
}

func runNPM(npm, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return out.String(), err
}

// summary picks node:test's closing counts out of the output, if any.
func summary(out string) string {
	var s []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		for _, p := range []string{"ℹ tests ", "ℹ pass ", "ℹ fail ", "# tests ", "# pass ", "# fail "} {
			if strings.HasPrefix(l, p) {
				s = append(s, strings.TrimPrefix(strings.TrimPrefix(l, "ℹ "), "# "))
			}
		}
	}
	if len(s) == 0 {
		return "ok"
	}
	return strings.Join(s, ", ")
}
