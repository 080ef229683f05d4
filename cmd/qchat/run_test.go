package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestKeygenStoresSecretsSealed(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name       string
		passphrase string
	}{{"clear", ""}, {"sealed", "correct horse"}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			getenv := env(map[string]string{"QCHAT_CONFIG_DIR": dir, "QCHAT_PASSPHRASE": tc.passphrase})
			var stdout, stderr bytes.Buffer
			if err := run(ctx, []string{"keygen", "--json", "--algorithm", "x_wing"}, strings.NewReader(""), &stdout, &stderr, getenv); err != nil {
				t.Fatal(err)
			}
			var out struct {
				Algorithm, Fingerprint string
				Encrypted              bool
			}
			if err := json.Unmarshal(stdout.Bytes(), &out); err != nil || out.Algorithm != "X_WING" || out.Encrypted != (tc.passphrase != "") {
				t.Fatalf("keygen output %s: %v", stdout.String(), err)
			}
			info, err := os.Stat(filepath.Join(dir, keysFile))
			if err != nil || info.Mode().Perm() != 0o600 {
				t.Fatalf("keys.json mode %v, %v", info.Mode(), err)
			}
			var ks keyStore
			if _, err := readJSON(dir, keysFile, &ks); err != nil {
				t.Fatal(err)
			}
			seeds, err := ks.seeds(func() ([]byte, error) { return []byte(tc.passphrase), nil })
			if err != nil || len(seeds) != 1 {
				t.Fatalf("seeds: %v", err)
			}
			for _, seed := range seeds {
				if strings.Contains(stdout.String()+stderr.String(), seed) {
					t.Error("keygen printed the secret seed")
				}
				raw, _ := os.ReadFile(filepath.Join(dir, keysFile))
				if tc.passphrase != "" && bytes.Contains(raw, []byte(seed)) {
					t.Error("sealed key store holds the seed in the clear")
				}
			}
			if tc.passphrase != "" {
				if _, err := ks.seeds(func() ([]byte, error) { return []byte("wrong"), nil }); !errors.Is(err, errBadPassphrase) {
					t.Errorf("wrong passphrase: %v", err)
				}
			}
			// A second keygen must not silently destroy the key.
			if err := run(ctx, []string{"keygen"}, strings.NewReader(""), &stdout, &stderr, getenv); err == nil {
				t.Error("keygen over an existing key store succeeded without --force")
			}
		})
	}
}

func TestParseInterspersed(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
	}{
		{[]string{"lab", "hello", "world"}, []string{"lab", "hello", "world"}, false},
		{[]string{"--json", "lab", "hi"}, []string{"lab", "hi"}, true},
		{[]string{"lab", "hi", "--json"}, []string{"lab", "hi"}, true},
		{[]string{"lab", "--", "-not-a-flag", "--json"}, []string{"lab", "-not-a-flag", "--json"}, false},
	} {
		a := &app{stderr: &bytes.Buffer{}}
		fs := a.flags("send")
		pos, err := parse(fs, tc.args, 2, -1, "")
		if err != nil || !slices.Equal(pos, tc.pos) || a.json != tc.json {
			t.Errorf("parse(%q) = %q json=%v, %v; want %q json=%v", tc.args, pos, a.json, err, tc.pos, tc.json)
		}
	}
	a := &app{stderr: &bytes.Buffer{}}
	if _, err := parse(a.flags("send"), []string{"lab"}, 2, -1, ""); !errors.Is(err, errUsage) {
		t.Errorf("too few arguments: %v", err)
	}
	if _, err := parse(flag.NewFlagSet("x", flag.ContinueOnError), []string{"--nope"}, 0, 0, ""); !errors.Is(err, errUsage) {
		t.Errorf("unknown flag: %v", err)
	}
}

func TestMimeType(t *testing.T) {
	for name, want := range map[string]string{
		"a.PDF": "application/pdf", "b.txt": "text/plain", "c.jpeg": "image/jpeg",
		"d.docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document", "e.unknownext": "application/octet-stream",
	} {
		if got := mimeType(name); got != want {
			t.Errorf("mimeType(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	getenv := env(map[string]string{"QCHAT_CONFIG_DIR": t.TempDir()})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"frobnicate"}, strings.NewReader(""), &out, &out, getenv); !errors.Is(err, errUsage) {
		t.Errorf("unknown command: %v", err)
	}
	if err := run(context.Background(), []string{"send", "lab", "hi"}, strings.NewReader(""), &out, &out, getenv); err == nil || !strings.Contains(err.Error(), "not logged in") {
		t.Errorf("send without a session: %v", err)
	}
}
