package docs

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is the directory holding go.mod, found from this package's.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	return dir
}

// repoFiles lists the repository's files relative to root: what git tracks,
// plus new files it does not ignore, so that a file is checked before its
// first commit. Without git (an exported tree) it walks the directory,
// leaving out what is never committed.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		var files []string
		for _, f := range strings.Split(string(out), "\x00") {
			if f == "" {
				continue
			}
			if _, err := os.Stat(filepath.Join(root, f)); err == nil { // deleted but not yet committed
				files = append(files, filepath.FromSlash(f))
			}
		}
		return files
	}
	skip := map[string]bool{".git": true, "node_modules": true, "bin": true, "data": true, "logs": true}
	var files []string
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && skip[d.Name()] {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, p)
			files = append(files, rel)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestNoReferenceOutsideRepository fails if any file names a path outside
// the repository where the specifications once lived: the protocol and the
// API contract are docs/PROTOCOL.md and docs/PROTOCOL-V2.md, and the test
// vectors are in pqcrypto/testdata.
func TestNoReferenceOutsideRepository(t *testing.T) {
	// Spelled in pieces so that this file does not match itself.
	forbidden := [][]byte{[]byte(".." + "/shared"), []byte("shared" + "/spec")}
	root := repoRoot(t)
	files := repoFiles(t, root)
	if len(files) < 50 {
		t.Fatalf("only %d files found under %s", len(files), root)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range forbidden {
			if !bytes.Contains(b, bad) {
				continue
			}
			sc := bufio.NewScanner(bytes.NewReader(b))
			sc.Buffer(nil, len(b)+1)
			for n := 1; sc.Scan(); n++ {
				if bytes.Contains(sc.Bytes(), bad) {
					t.Errorf("%s:%d mentions %q, which is not in the repository", f, n, bad)
				}
			}
		}
	}
}

// mdLinkRe matches a Markdown link's target: [text](target).
var mdLinkRe = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// TestMarkdownLinksResolve fails if a Markdown file links to a file of the
// repository that does not exist. Anchors and links to the web are not
// checked.
func TestMarkdownLinksResolve(t *testing.T) {
	root := repoRoot(t)
	for _, f := range repoFiles(t, root) {
		if !strings.HasSuffix(f, ".md") || strings.Contains(f, "node_modules") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mdLinkRe.FindAllSubmatch(b, -1) {
			target := string(m[1])
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "#") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			p := filepath.Join(root, filepath.Dir(f), filepath.FromSlash(target))
			if _, err := os.Stat(p); err != nil {
				t.Errorf("%s links to %s, which does not exist", f, m[1])
			}
		}
	}
}
