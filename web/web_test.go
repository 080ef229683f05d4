package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/nodetest"
	"github.com/qchat/qchat/pqcrypto"
)

const stepTimeout = 5 * time.Minute

// TestTypeScript installs the workspace from package-lock.json and runs, in
// order: the check that the generated operations match graph/*.graphqls,
// the type check (strict), and the library's tests (node:test), which include
// pqcrypto's fixed vectors read from testdata/. Then envelopes cross between
// the library and pqcrypto both ways, and the library talks to the real
// handler on each database. It skips without Node.js and fails under CI=true.
func TestTypeScript(t *testing.T) {
	_, npm := nodetest.Tools(t)
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if nodetest.NPMCI(t, npm, dir) {
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
	t.Run("EnvelopeInterop", func(t *testing.T) { envelopeInterop(t, dir) })
	t.Run("LiveServer", func(t *testing.T) {
		qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
			srv := qchattest.NewServer(t, store)
			start := time.Now()
			out := runNode(t, node(t), dir, filepath.Join(dir, "lib", "build", "test", "live.js"), srv.URL+"/graphql")
			var res struct {
				OK     bool `json:"ok"`
				Checks int  `json:"checks"`
			}
			if err := json.Unmarshal([]byte(lastLine(out)), &res); err != nil || !res.OK || res.Checks == 0 {
				t.Fatalf("live.js: %v\n%s", err, out)
			}
			t.Logf("live.js: %d checks in %v", res.Checks, time.Since(start).Round(time.Millisecond))
		})
	})
}

func node(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("node")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// interopCase is what lib/test/interop.ts prints or reads: a version 1
// envelope with the seeds of its recipients.
type interopCase struct {
	Header struct {
		Kind           pqcrypto.Kind `json:"kind"`
		ObjectID       string        `json:"objectId"`
		SenderID       string        `json:"senderId"`
		ConversationID string        `json:"conversationId"`
	} `json:"header"`
	Plaintext  string                `json:"plaintext"`
	Recipients []interopRecipient    `json:"recipients"`
	Envelope   pqcrypto.WireEnvelope `json:"envelope"`
}

type interopRecipient struct {
	UserID    string             `json:"userId"`
	KeyID     string             `json:"keyId"`
	Algorithm pqcrypto.Algorithm `json:"algorithm"`
	Seed      string             `json:"seed"`
}

func (c *interopCase) header() pqcrypto.Header {
	return pqcrypto.Header{Kind: c.Header.Kind, ObjectID: c.Header.ObjectID, SenderID: c.Header.SenderID, ConversationID: c.Header.ConversationID}
}

// envelopeInterop holds the library and pqcrypto to each other on fresh
// random keys (the fixed vectors are checked inside npm test): an envelope
// sealed in TypeScript opens with pqcrypto for every recipient and algorithm,
// and one sealed by pqcrypto opens in TypeScript. It runs the test build that
// npm test left in lib/build.
func envelopeInterop(t *testing.T, dir string) {
	node := node(t)
	script := filepath.Join(dir, "lib", "build", "test", "interop.js")

	// TypeScript seals, Go opens.
	out := runNode(t, node, dir, script, "seal")
	var ts interopCase
	if err := json.Unmarshal([]byte(out), &ts); err != nil {
		t.Fatalf("interop.js seal: %v\n%s", err, out)
	}
	env, err := pqcrypto.ValidateWire(ts.Envelope, func(keyID string) (pqcrypto.Algorithm, bool) {
		for _, r := range ts.Recipients {
			if r.KeyID == keyID {
				return r.Algorithm, true
			}
		}
		return "", false
	})
	if err != nil {
		t.Fatalf("the envelope sealed in TypeScript fails pqcrypto's wire checks: %v", err)
	}
	if len(ts.Recipients) != 2 {
		t.Fatalf("interop.js sealed for %d recipients, want 2", len(ts.Recipients))
	}
	for _, r := range ts.Recipients {
		seed, err := pqcrypto.DecodeB64(r.Seed)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := pqcrypto.KeyPairFromSeed(r.Algorithm, seed)
		if err != nil {
			t.Fatal(err)
		}
		pt, err := pqcrypto.Open(ts.header(), env, r.UserID, kp, r.KeyID)
		if err != nil || string(pt) != ts.Plaintext {
			t.Errorf("%s: pqcrypto opens the TypeScript envelope as %q, %v; want %q", r.Algorithm, pt, err, ts.Plaintext)
		}
	}

	// Go seals, TypeScript opens.
	var goCase interopCase
	goCase.Header.Kind = pqcrypto.KindDocument
	goCase.Header.ObjectID, goCase.Header.SenderID, goCase.Header.ConversationID = uuid(t), uuid(t), uuid(t)
	goCase.Plaintext = "sealed in Go ✓ " + uuid(t)
	var rs []pqcrypto.Recipient
	for _, alg := range []pqcrypto.Algorithm{pqcrypto.MLKEM768, pqcrypto.XWing} {
		kp, err := pqcrypto.GenerateKeyPair(alg, nil)
		if err != nil {
			t.Fatal(err)
		}
		r := pqcrypto.Recipient{UserID: uuid(t), KeyID: uuid(t), Algorithm: alg, PublicKey: kp.PublicKey}
		rs = append(rs, r)
		goCase.Recipients = append(goCase.Recipients, interopRecipient{r.UserID, r.KeyID, alg, pqcrypto.EncodeB64(kp.Seed)})
	}
	sealed, err := pqcrypto.Seal(nil, goCase.header(), []byte(goCase.Plaintext), rs)
	if err != nil {
		t.Fatal(err)
	}
	goCase.Envelope = sealed.Wire()
	b, err := json.Marshal(goCase)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "case.json")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	var opened []string
	if out := runNode(t, node, dir, script, "open", file); json.Unmarshal([]byte(out), &opened) != nil {
		t.Fatalf("interop.js open: %s", out)
	}
	if len(opened) != 2 || opened[0] != goCase.Plaintext || opened[1] != goCase.Plaintext {
		t.Errorf("TypeScript opens the pqcrypto envelope as %q, want %q for both recipients", opened, goCase.Plaintext)
	}
}

func runNode(t *testing.T, node, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

func uuid(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
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
