package models

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Events travel between instances as JSON (the Redis broker); a user they name
// must not carry the password hash along.
func TestUserJSONLeavesOutPasswordHash(t *testing.T) {
	hash := []byte("$2a$10$abcdefghijklmnopqrstuv")
	m := Message{ID: "m", Sender: &User{ID: "u", Username: "alice", PasswordHash: hash}}
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte("PasswordHash")) || bytes.Contains(b, []byte("JDJhJDEw")) || !bytes.Contains(b, []byte("alice")) {
		t.Fatalf("encoded event: %s", b)
	}
}
