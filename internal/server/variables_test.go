package server_test

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/qchattest"
)

// TestVariableStandIns sends sendMessage variables through the real handler
// twice: once with a query text the server has not seen (gqlparser checks
// the variables, as every first use of a document) and once with one it
// has (variables it can vouch for skip gqlparser, graph/variables.go). Bad
// variables get the same answer, byte for byte, either way; good ones are
// sent, and the second time without gqlparser.
func TestVariableStandIns(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "vars_a")
		bob := srv.Register(t, "vars_b")
		var room struct{ CreateRoom struct{ ID string } }
		srv.MustDo(t, alice.Token, `mutation($in: CreateRoomInput!) { createRoom(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"name": "vars", "memberIds": []string{bob.ID}}}, &room)
		const query = `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id version keyDigests } }`
		post := func(query string, in any) (int, []byte) {
			t.Helper()
			resp, body := srv.Raw(t, http.MethodPost, "/graphql", http.Header{
				"Content-Type":  {"application/json"},
				"Authorization": {"Bearer " + alice.Token},
			}, qchattest.GraphQLBody(query, map[string]any{"in": in}))
			return resp.StatusCode, body
		}
		// The document is in the server's cache from now on.
		if _, body := post(query, qchattest.Seal(t, uuid.NewString(), alice, room.CreateRoom.ID, "", "first", alice, bob)); strings.Contains(string(body), `"errors"`) {
			t.Fatalf("first send: %s", body)
		}

		sealed := func() map[string]any {
			return qchattest.Seal(t, uuid.NewString(), alice, room.CreateRoom.ID, "", "hello", alice, bob)
		}
		with := func(change func(in map[string]any)) map[string]any {
			in := sealed()
			// A deep copy through JSON: the changes below reach into keys.
			b, _ := json.Marshal(in)
			var out map[string]any
			_ = json.Unmarshal(b, &out)
			change(out)
			return out
		}
		key0 := func(in map[string]any) map[string]any { return in["keys"].([]any)[0].(map[string]any) }
		bad := map[string]any{
			"null input":           nil,
			"a string":             "x",
			"no keys":              with(func(in map[string]any) { delete(in, "keys") }),
			"keys null":            with(func(in map[string]any) { in["keys"] = nil }),
			"a null key":           with(func(in map[string]any) { in["keys"] = append(in["keys"].([]any), nil) }),
			"a key without userId": with(func(in map[string]any) { delete(key0(in), "userId") }),
			"a number as userId":   with(func(in map[string]any) { key0(in)["userId"] = 7 }),
			"a list as wrappedKey": with(func(in map[string]any) { key0(in)["wrappedKey"] = []any{"x"} }),
			"an unknown field":     with(func(in map[string]any) { in["extra"] = true }),
			"an unknown key field": with(func(in map[string]any) { key0(in)["extra"] = "x" }),
			"one key, not a list":  with(func(in map[string]any) { in["keys"] = key0(in) }),
			"a number as id":       with(func(in map[string]any) { in["id"] = 12 }),
			"a bad envelope":       with(func(in map[string]any) { key0(in)["wrappedKey"] = "not base64" }),
			"a bad id":             with(func(in map[string]any) { in["id"] = "NOT-A-UUID" }),
		}
		for _, name := range slices.Sorted(maps.Keys(bad)) {
			t.Run(name, func(t *testing.T) {
				fresh := query + " # " + uuid.NewString() // not in the cache yet
				wantStatus, want := post(fresh, bad[name])
				gotStatus, got := post(query, bad[name])
				if gotStatus != wantStatus || string(got) != string(want) {
					t.Fatalf("cached document: %d %s\nfirst use: %d %s", gotStatus, got, wantStatus, want)
				}
				if !strings.Contains(string(got), `"errors"`) {
					t.Fatalf("accepted: %s", got)
				}
			})
		}

		before := graph.VariableStandIns()
		in := with(func(in map[string]any) { in["__typename"] = "SendMessageInput"; in["recipientId"] = nil })
		_, body := post(query, in)
		var out struct {
			Data struct {
				SendMessage struct {
					ID         string
					Version    int
					KeyDigests []string
				}
			}
			Errors []any
		}
		if err := json.Unmarshal(body, &out); err != nil || len(out.Errors) > 0 || out.Data.SendMessage.ID != in["id"] || out.Data.SendMessage.Version != 2 || len(out.Data.SendMessage.KeyDigests) != 2 {
			t.Fatalf("send: %s", body)
		}
		if graph.VariableStandIns() == before {
			t.Fatal("the variables were checked by gqlparser")
		}
	})
}
