package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// vectorTimeout bounds one run of vector.mjs: about eleven Argon2id derivations
// (19 MiB each, in pure JavaScript) on a shared machine.
const vectorTimeout = 120 * time.Second

var (
	vectorV1 = filepath.Join("..", "pqcrypto", "testdata", "envelope-v1.json")
	vectorV2 = filepath.Join("..", "pqcrypto", "testdata", "envelope-v2-vectors.json")
)

// vectorResult is the last stdout line of vector.mjs.
type vectorResult struct {
	OK bool           `json:"ok"`
	V2 map[string]int `json:"v2"` // section -> entries reproduced, plus tamperChecks
}

// checkVectors runs vector.mjs: the Node client's envelope code must reproduce
// every fixed vector of both versions. It then runs it again on a copy of the
// version 2 file with one value changed in every section, and wants each change
// named as a mismatch: a vector the script did not really compare would pass.
func checkVectors(t *testing.T, node, nodeDir string) {
	t.Helper()
	start := time.Now()
	out, stderr, err := runVector(node, nodeDir, vectorV1, vectorV2)
	if err != nil {
		t.Fatalf("node vector.mjs: %v\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	var res vectorResult
	if err := json.Unmarshal([]byte(lastLine(out)), &res); err != nil || !res.OK {
		t.Fatalf("vector.mjs did not end with the ok line (%v): %q", err, lastLine(out))
	}
	t.Logf("vector.mjs (%v): %s", time.Since(start).Round(time.Millisecond), lastLine(out))

	want := v2SectionSizes(t, readVectors(t))
	for section, n := range want {
		if res.V2[section] != n {
			t.Errorf("vector.mjs reproduced %d of the %d %s vectors", res.V2[section], n, section)
		}
	}
	if res.V2["tamperChecks"] < 100 {
		t.Errorf("vector.mjs ran %d tampering checks, want at least 100", res.V2["tamperChecks"])
	}

	// One changed value per section; each must be reported.
	v := readVectors(t)
	var wantNamed []string
	for _, c := range []struct {
		section string
		change  func(v map[string]any) string // returns the text vector.mjs must print
	}{
		{"identities", func(v map[string]any) string {
			flipField(t, obj(t, obj(t, v, "identities"), "bob"), "publicKey")
			return "identity bob public key"
		}},
		{"kemKeys", func(v map[string]any) string {
			k := obj(t, v, "kemKeys", 3)
			flipField(t, k, "certificateDeterministic")
			return fmt.Sprintf("kemKeys[3] %s deterministic certificate", k["keyId"])
		}},
		{"envelopes", func(v map[string]any) string {
			e := obj(t, v, "envelopes", 1)
			flipField(t, obj(t, e, "envelope"), "signature")
			return fmt.Sprintf("envelope %q deterministic signature", e["name"])
		}},
		{"envelopes (transcript)", func(v map[string]any) string {
			e := obj(t, v, "envelopes", 0)
			flipField(t, e, "transcriptHex")
			return fmt.Sprintf("envelope %q transcript", e["name"])
		}},
		{"safetyNumbers", func(v map[string]any) string {
			s := obj(t, v, "safetyNumbers", 1)
			flipField(t, s, "number")
			return fmt.Sprintf("safety number %s/%s", s["a"], s["b"])
		}},
		{"argon2id", func(v map[string]any) string {
			flipField(t, obj(t, v, "argon2id", 2), "key")
			return "argon2id[2] key"
		}},
		{"backup", func(v map[string]any) string {
			flipField(t, obj(t, v, "backup"), "nonce")
			return "backup sealed with secret"
		}},
		{"backupPassphrase", func(v map[string]any) string {
			flipField(t, obj(t, v, "backupPassphrase"), "salt")
			return "backupPassphrase sealed with secretNfd"
		}},
	} {
		wantNamed = append(wantNamed, c.change(v))
	}
	bad, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	badPath := filepath.Join(t.TempDir(), "envelope-v2-vectors-changed.json")
	if err := os.WriteFile(badPath, bad, 0o644); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	out, stderr, err = runVector(node, nodeDir, vectorV1, badPath)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("vector.mjs on changed vectors: %v, want exit status 1\nstdout:\n%s\nstderr:\n%s", err, out, stderr)
	}
	for _, w := range wantNamed {
		if !strings.Contains(stderr, w+":") {
			t.Errorf("vector.mjs on changed vectors did not name %q:\n%s", w, stderr)
		}
	}
	t.Logf("vector.mjs on changed vectors (%v): exit 1, all %d changes named", time.Since(start).Round(time.Millisecond), len(wantNamed))
}

func runVector(node, dir string, args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), vectorTimeout)
	defer cancel()
	abs := make([]string, 0, len(args)+1)
	abs = append(abs, "vector.mjs")
	for _, a := range args {
		p, err := filepath.Abs(a)
		if err != nil {
			return "", "", err
		}
		abs = append(abs, p)
	}
	cmd := exec.CommandContext(ctx, node, abs...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (after %v)", ctx.Err(), vectorTimeout)
	}
	return o.String(), e.String(), err
}

func readVectors(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile(vectorV2)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s: %v", vectorV2, err)
	}
	return v
}

// v2SectionSizes counts the entries of every section of the version 2 vectors,
// the way vector.mjs reports them: the two sealed backups count as "backups".
func v2SectionSizes(t *testing.T, v map[string]any) map[string]int {
	t.Helper()
	n := map[string]int{}
	for k, x := range v {
		switch x := x.(type) {
		case string: // the description
		case []any:
			n[k] = len(x)
		case map[string]any:
			if strings.HasPrefix(k, "backup") {
				n["backups"]++
			} else {
				n[k] = len(x)
			}
		default:
			t.Fatalf("%s: unexpected section %q (%T)", vectorV2, k, x)
		}
	}
	for _, s := range []string{"identities", "kemKeys", "envelopes", "safetyNumbers", "argon2id", "backups"} {
		if n[s] == 0 {
			t.Fatalf("%s: no %s vectors", vectorV2, s)
		}
	}
	return n
}

// obj walks v by object keys (string) and array indexes (int).
func obj(t *testing.T, v map[string]any, path ...any) map[string]any {
	t.Helper()
	var cur any = v
	for _, p := range path {
		switch p := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("vectors: %v: not an object at %q", path, p)
			}
			cur = m[p]
		case int:
			a, ok := cur.([]any)
			if !ok || p >= len(a) {
				t.Fatalf("vectors: %v: no index %d", path, p)
			}
			cur = a[p]
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		t.Fatalf("vectors: %v is not an object", path)
	}
	return m
}

// flipField changes one character of a base64, hex or digit string (keeping it
// well-formed), so that the value decodes to different bytes.
func flipField(t *testing.T, m map[string]any, key string) {
	t.Helper()
	s, ok := m[key].(string)
	if !ok || len(s) < 12 {
		t.Fatalf("vectors: field %q is not a long string: %v", key, m[key])
	}
	b := []byte(s)
	if b[8] == '1' {
		b[8] = '2'
	} else {
		b[8] = '1'
	}
	m[key] = string(b)
}
