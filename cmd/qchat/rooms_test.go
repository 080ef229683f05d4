package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/qchattest"
)

// `qchat rooms` lists every conversation, rooms and direct ones, newest
// activity first, with unread counts.
func TestRoomsListsConversations(t *testing.T) {
	ctx := context.Background()
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	qchat := func(dir string, args ...string) string {
		t.Helper()
		getenv := env(map[string]string{"QCHAT_CONFIG_DIR": dir, "QCHAT_SERVER": srv.URL, "QCHAT_PASSWORD": "password of " + dir})
		var stdout, stderr bytes.Buffer
		if err := run(ctx, args, strings.NewReader(""), &stdout, &stderr, getenv); err != nil {
			t.Fatalf("qchat %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String()
	}
	alice, bob := t.TempDir(), t.TempDir()
	for name, dir := range map[string]string{"alice": alice, "bob": bob} {
		qchat(dir, "keygen")
		qchat(dir, "register", name)
	}
	if out := qchat(alice, "rooms"); !strings.Contains(out, "no conversations yet") {
		t.Errorf("empty list:\n%s", out)
	}
	qchat(alice, "room", "create", "lab")
	qchat(bob, "send", "@alice", "hello alice")

	var got []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(qchat(alice, "rooms", "--json")), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		got = append(got, m)
	}
	if len(got) != 2 || got[0]["kind"] != "direct" || got[0]["username"] != "bob" || got[0]["unread"] != 1.0 ||
		got[1]["kind"] != "room" || got[1]["name"] != "lab" || got[1]["unread"] != 0.0 {
		t.Fatalf("rooms --json: %v", got)
	}
	table := qchat(alice, "rooms")
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[1], "@bob ") || !strings.HasPrefix(lines[2], "lab ") {
		t.Fatalf("rooms:\n%s", table)
	}
}
