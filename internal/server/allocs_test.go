package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/internal/qchattest"
)

// Allocation budgets of the hot paths, measured in-process through the whole
// handler (middleware included). They hold allocation counts from growing
// unnoticed; time is left to the benchmarks. Raise a budget only with a reason
// in the commit.
func TestAllocationBudgets(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are only meaningful without -race")
	}
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice := srv.Register(t, "alice")
	bob := srv.Register(t, "bob")
	var room struct{ CreateRoom struct{ ID string } }
	srv.MustDo(t, alice.Token, `mutation($in: CreateRoomInput!) { createRoom(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"name": "budget", "memberIds": []string{bob.ID}}}, &room)
	// Every send needs its own id, which the signature covers: one sealed
	// body per run (AllocsPerRun(50) runs 51 times).
	bodies := make([][]byte, 51)
	for i := range bodies {
		in := qchattest.Seal(t, uuid.NewString(), alice, room.CreateRoom.ID, "", "m", alice, bob)
		bodies[i] = qchattest.GraphQLBody(`mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`, map[string]any{"in": in})
	}
	h := srv.HTTP.Config.Handler
	do := func(body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+alice.Token)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || bytes.Contains(rec.Body.Bytes(), []byte(`"errors"`)) {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	me := qchattest.GraphQLBody(`{ me { id } }`, nil)
	// A page of the 50 messages the sends leave, with the SDK's fields.
	page := qchattest.GraphQLBody(`query($r: ID!) { room(id: $r) { messages(first: 50) { edges { cursor node { id ciphertext nonce createdAt deleted version signature keyDigests attachmentId
  sender { id username } room { id } recipient { id username } myKey { userId keyId kemCiphertext wrappedKey readAt } attachment { id name mimeType size } } } pageInfo { hasNextPage endCursor } } } }`,
		map[string]any{"r": room.CreateRoom.ID})
	i := 0
	cases := []struct {
		name   string
		budget float64
		run    func()
	}{
		{"me", 185, func() { do(me) }},
		{"sendMessage into a room of 2", 490, func() { do(bodies[i%len(bodies)]); i++ }},
		// After the sends: 50 messages and more.
		{"history page of 50", 2650, func() { do(page) }},
	}
	for _, c := range cases {
		got := testing.AllocsPerRun(50, c.run)
		t.Logf("%s: %.0f allocs/op (budget %.0f)", c.name, got, c.budget)
		if got > c.budget {
			t.Errorf("%s: %.0f allocs/op, over the budget of %.0f", c.name, got, c.budget)
		}
	}
}
