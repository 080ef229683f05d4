package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/qchat/qchat/client"
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
			if err != nil || len(seeds) != 2 { // the identity key's and the KEM key's
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

// TestParseArgs is item 8: flags before or after the arguments behave the
// same, "--" ends the flags, text is never eaten, unknown flags are errors.
func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		pos  []string
		json bool
		err  bool
	}{
		{[]string{"lab", "hello", "world"}, []string{"lab", "hello", "world"}, false, false},
		{[]string{"--json", "lab", "hi"}, []string{"lab", "hi"}, true, false},
		{[]string{"lab", "hi", "--json"}, []string{"lab", "hi"}, true, false},
		{[]string{"Plans", "hello", "world", "--json"}, []string{"Plans", "hello", "world"}, true, false},
		{[]string{"--json=true", "lab", "hi"}, []string{"lab", "hi"}, true, false},
		{[]string{"Plans", "-5 degrees outside"}, []string{"Plans", "-5 degrees outside"}, false, false},
		{[]string{"Plans", "-5"}, []string{"Plans", "-5"}, false, false},
		{[]string{"Plans", "-", "item"}, []string{"Plans", "-", "item"}, false, false},
		{[]string{"Plans", "-x marks the spot"}, []string{"Plans", "-x marks the spot"}, false, false},
		{[]string{"lab", "--", "-not-a-flag", "--json"}, []string{"lab", "-not-a-flag", "--json"}, false, false},
		{[]string{"--server", "http://x", "lab", "hi"}, []string{"lab", "hi"}, false, false},
		{[]string{"lab", "--not-a-flag"}, nil, false, true},
		{[]string{"lab", "-hello"}, nil, false, true},
		{[]string{"lab", "hi", "--server"}, nil, false, true},
	} {
		a := &app{stderr: &bytes.Buffer{}}
		pos, err := parseArgs(a.flags("send"), tc.args, false)
		if tc.err {
			if !errors.Is(err, errUsage) {
				t.Errorf("parseArgs(%q) = %q, %v; want a usage error", tc.args, pos, err)
			}
			continue
		}
		if err != nil || !slices.Equal(pos, tc.pos) || a.json != tc.json {
			t.Errorf("parseArgs(%q) = %q json=%v, %v; want %q json=%v", tc.args, pos, a.json, err, tc.pos, tc.json)
		}
	}
	// Global flags before the command stop at the command, untouched after.
	a := &app{stderr: &bytes.Buffer{}}
	rest, err := parseArgs(a.flags(""), []string{"--server", "http://x", "send", "lab", "--", "-hi"}, true)
	if err != nil || !slices.Equal(rest, []string{"send", "lab", "--", "-hi"}) || a.serverFlag != "http://x" {
		t.Errorf("global prefix: %q server=%q, %v", rest, a.serverFlag, err)
	}
	if _, err := parseArgs(a.flags("send"), []string{"--help"}, false); !errors.Is(err, errHelp) {
		t.Errorf("--help: %v", err)
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

// TestReasons: what a person reads for the errors that end a command or a
// listen, one line each, without the layers of operations.
func TestReasons(t *testing.T) {
	wrapped := func(e *client.Error) error { return fmt.Errorf("sendMessage: send to room 1b2c: %w", e) }
	for _, tc := range []struct {
		err  error
		want string
	}{
		{wrapped(&client.Error{Code: client.CodeRateLimited, Message: "too many", Extensions: map[string]any{"retryAfter": 42.0}}), "the server asks you to slow down: try again in 42 seconds"},
		{wrapped(&client.Error{Code: client.CodeUnauthenticated, Message: "bad token"}), "your session has ended: log in again"},
		{wrapped(&client.Error{Code: client.CodeForbidden, Message: "only the owner may rename the room"}), "only the owner may rename the room"},
		{wrapped(&client.Error{Code: client.CodeInternalServerError, Message: "internal"}), "the server failed; try again, and tell its operator if it persists"},
		{wrapped(&client.Error{Message: "HTTP 502 Bad Gateway", Status: 502}), "the server answered 502 Bad Gateway"},
		{fmt.Errorf("myRooms: %w", &net.OpError{Op: "dial", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}), "cannot reach the server: is qchat-server running there? (--server picks another)"},
	} {
		if got := reason(tc.err); got != tc.want {
			t.Errorf("reason(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("socket: %w", client.ErrGoingAway), "the server is restarting or shutting down: reconnecting…"},
		{fmt.Errorf("messageAdded: %w", client.ErrCompleted), "the server dropped this listener (it fell behind): reconnecting…"},
		{&client.Error{Code: client.CodeSlowConsumer}, "the server dropped this listener (it fell behind): reconnecting…"},
		{io.ErrUnexpectedEOF, "lost the connection to the server: reconnecting…"},
	} {
		if got := lostLine(tc.err); got != tc.want {
			t.Errorf("lostLine(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}
