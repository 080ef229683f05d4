package web

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest/nodetest"
	"github.com/qchat/qchat/internal/qchattest/testenv"
)

// maxGzippedJS is the budget for the app's JavaScript, gzipped.
const maxGzippedJS = 300 << 10

// needNode returns npm after installing the workspace, or skips without
// Node.js (fails under CI=true).
func needNode(t *testing.T) (npm, dir string) {
	t.Helper()
	_, npm = nodetest.Tools(t)
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.NPMCI(t, npm, dir)
	return npm, dir
}

// TestAppBundleIsWhatMakeWebProduces builds the app from its sources into a
// temporary directory and requires the committed app/dist (which the server
// embeds) to be byte for byte the same, like generated code; and holds the
// gzipped JavaScript to its budget.
func TestAppBundleIsWhatMakeWebProduces(t *testing.T) {
	npm, dir := needNode(t)
	out := t.TempDir()
	start := time.Now()
	if b, err := runNPM(npm, filepath.Join(dir, "app"), "exec", "--", "vite", "build", "--logLevel", "warn", "--outDir", out, "--emptyOutDir"); err != nil {
		t.Fatalf("vite build: %v\n%s", err, b)
	}
	t.Logf("vite build: %v", time.Since(start).Round(time.Millisecond))
	fresh, committed := tree(t, out), tree(t, filepath.Join(dir, "app", "dist"))
	for name, b := range fresh {
		if c, ok := committed[name]; !ok {
			t.Errorf("app/dist lacks %s", name)
		} else if !bytes.Equal(b, c) {
			t.Errorf("app/dist/%s differs from a fresh build", name)
		}
	}
	for name := range committed {
		if _, ok := fresh[name]; !ok {
			t.Errorf("app/dist/%s is not in a fresh build", name)
		}
	}
	if t.Failed() {
		t.Fatal("the committed web app is stale: run `make web` and commit web/app/dist")
	}
	var js int
	for name, b := range fresh {
		if strings.HasSuffix(name, ".js") {
			js += gzipSize(t, b)
		}
	}
	t.Logf("gzipped JavaScript: %.1f KiB (budget %d KiB)", float64(js)/1024, maxGzippedJS>>10)
	if js > maxGzippedJS {
		t.Errorf("gzipped JavaScript is %d bytes, over the budget of %d", js, maxGzippedJS)
	}
}

func tree(t *testing.T, root string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		files[filepath.ToSlash(rel)], err = os.ReadFile(p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func gzipSize(t *testing.T, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Len()
}

var bannerRe = regexp.MustCompile(`listening on (http://\S+)`)

// TestBrowserChat runs app/e2e/chat.mjs: alice and bob (a phone-sized
// screen) in two contexts of a real Chromium register (identity keys made in
// the browser), create and join a room by its code, chat both ways live, see
// typing and receipts, exchange HTML that must stay text, lose the websocket
// and get it back, fail a send and retry it, reload; alice backs her keys up,
// rotates her key, and a third context (alice on a new device) restores the
// backup and reads the whole history; a qchat CLI user talks with the
// browsers, signatures verified both ways; they page back through history,
// open a direct conversation, compare safety numbers; bob resets his
// identity with the CLI, which blocks alice's sending until she accepts it;
// alice starts over with new keys on yet another browser; then sign out,
// with the CSP header checked and no console error or CSP violation. It runs
// against the real server binary on SQLite, on a free port. Screenshots go to
// QCHAT_SCREENSHOTS if set (kept), else to the test's temporary directory.
func TestBrowserChat(t *testing.T) {
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but %s is missing (apt-get install chromium): %v", chromium, err)
		}
		testenv.Skip(t, "Chromium", chromium+" is missing")
	}
	_, dir := needNode(t)
	tmp := t.TempDir()
	server, cli := filepath.Join(tmp, "qchat-server"), filepath.Join(tmp, "qchat")
	for bin, pkg := range map[string]string{server: "github.com/qchat/qchat", cli: "github.com/qchat/qchat/cmd/qchat"} {
		if b, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput(); err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, b)
		}
	}
	url := startServer(t, server, tmp)

	out := os.Getenv("QCHAT_SCREENSHOTS")
	if out == "" {
		out = filepath.Join(tmp, "screenshots")
	}
	start := time.Now()
	res := runNode(t, node(t), dir, filepath.Join(dir, "app", "e2e", "chat.mjs"), url, out, cli)
	var r struct {
		OK     bool `json:"ok"`
		Checks int  `json:"checks"`
		// From navigation to the sign-in form, per browser context.
		FirstScreenMs []int `json:"firstScreenMs"`
	}
	if err := json.Unmarshal([]byte(lastLine(res)), &r); err != nil || !r.OK || r.Checks == 0 {
		t.Fatalf("chat.mjs: %v\n%s", err, res)
	}
	t.Logf("chat.mjs: %d checks in %v; first screen in %v ms; screenshots in %s", r.Checks, time.Since(start).Round(time.Millisecond), r.FirstScreenMs, out)
}

// startServer runs the server binary on SQLite in dir on a free port and
// returns its URL, read from the banner; the server stops with the test.
func startServer(t *testing.T, bin, dir string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "APP_ENV=development", "HOST=127.0.0.1", "PORT=0", "DATABASE_URL=", "DATA_DIR="+dir,
		"BCRYPT_COST=4", "LOG_LEVEL=warn", "LOG_DIR=", "REDIS_URL=",
		// chat.mjs guesses a password until it is told to wait.
		"AUTH_RATE_LIMIT_MAX=3", "AUTH_RATE_LIMIT_WINDOW=15m")
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 10 * time.Second
	var logs bytes.Buffer
	cmd.Stderr = &logs
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := bannerRe.FindStringSubmatch(sc.Text()); m != nil {
				found <- m[1]
				break
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case url := <-found:
		return url
	case <-time.After(30 * time.Second):
		t.Fatalf("no \"listening on\" banner within 30s\n%s", logs.String())
		return ""
	}
}
