// Package nodetest helps Go tests that run Node.js code of the repository
// (the Apollo end-to-end scenario, the TypeScript library): it installs a
// package's node_modules once per lock file.
package nodetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest/testenv"
)

// StampFile, next to package-lock.json, holds the hash of the lock file that
// node_modules was last installed from.
const StampFile = ".npm-ci.stamp"

// npmCITimeout bounds an install from the npm registry on a slow link.
const npmCITimeout = 5 * time.Minute

// NPMCI installs dir's node_modules from its package-lock.json with npm ci,
// unless the stamp says it already did for this exact lock file. It reports
// whether it ran.
func NPMCI(t *testing.T, npm, dir string) bool {
	t.Helper()
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		t.Fatalf("package-lock.json: %v", err)
	}
	sum := sha256.Sum256(lock)
	want := hex.EncodeToString(sum[:]) + "\n"
	stamp := filepath.Join(dir, StampFile)
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

// Tools returns the paths of node and npm. Without them the test is skipped
// (with the one-line summary testenv prints), and fails under CI=true.
func Tools(t *testing.T) (node, npm string) {
	t.Helper()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but node/npm are missing (node: %v, npm: %v)", errNode, errNpm)
		}
		testenv.Skip(t, "Node.js", "node and npm are not on PATH")
	}
	return node, npm
}
