package explorer

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"
)

// TestEmbeddedFiles checks what New builds from the embedded files: the page,
// and every asset with a known type.
func TestEmbeddedFiles(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(e.page.body, []byte("/playground/assets/explorer.js")) {
		t.Error("page does not load the start-up script")
	}
	for _, name := range []string{"explorer.js", "explorer.css", "favicon.svg", "vendor/graphiql.min.js",
		"vendor/graphiql.min.css", "vendor/react.production.min.js", "vendor/react-dom.production.min.js"} {
		if a, ok := e.assets[name]; !ok || len(a.body) == 0 || a.contentType == "" || a.etag == "" {
			t.Errorf("asset %s missing or incomplete", name)
		}
	}
}

// npmNetworkError matches npm's messages for a registry it cannot reach.
var npmNetworkError = regexp.MustCompile(`ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network`)

// TestVendorIsWhatUpdateProduces runs update.sh (what `make graphiql` runs)
// into a temporary directory and requires static/vendor to hold exactly its
// output, byte for byte: the committed files are the published packages of
// package-lock.json, untouched. It needs node, npm and the registry; without
// them it skips (under CI=true it fails).
func TestVendorIsWhatUpdateProduces(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: skips the npm download")
	}
	ci := os.Getenv("CI") == "true"
	for _, tool := range []string{"bash", "node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			if ci {
				t.Fatalf("CI=true but %s is missing: %v", tool, err)
			}
			t.Skipf("%s is needed to refetch GraphiQL: %v", tool, err)
		}
	}
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "update.sh", out)
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if !ci && npmNetworkError.MatchString(stderr.String()) {
			t.Skipf("npm registry unreachable, cannot refetch GraphiQL: %v\n%s", err, stderr.String())
		}
		t.Fatalf("update.sh: %v\n%s", err, stderr.String())
	}

	want := readTree(t, out)
	got := readTree(t, filepath.Join("static", "vendor"))
	for _, name := range sortedKeys(want) {
		g, ok := got[name]
		switch {
		case !ok:
			t.Errorf("static/vendor lacks %s: run make graphiql", name)
		case !bytes.Equal(g, want[name]):
			t.Errorf("static/vendor/%s differs from what update.sh fetches: run make graphiql", name)
		}
	}
	for _, name := range sortedKeys(got) {
		if _, ok := want[name]; !ok {
			t.Errorf("static/vendor/%s is not produced by update.sh", name)
		}
	}
}

func readTree(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return files
}

func sortedKeys(m map[string][]byte) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
