package server_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/graph"
	"github.com/qchat/qchat/internal/qchattest"
)

// TestHistoryPages compares, byte for byte, the responses of history
// queries answered by the fast path (graph/history.go) with those of the
// normal path: each query is sent as is and with an @include(if: true) on its
// root field, which always takes the normal path and changes nothing in the
// response. The selections are the clients' own (web/lib's, as sent plainly
// and as Apollo sends them, and the SDK's), the benchmark's and odd ones;
// errors, refused arguments and other readers must come out the same too.
func TestHistoryPages(t *testing.T) {
	qchattest.ForEachDatabase(t, testHistoryPages)
}

func testHistoryPages(t *testing.T, store *db.Store) {
	srv := qchattest.NewServer(t, store)
	suffix := uuid.NewString()[:8]
	alice := srv.Register(t, "ha_"+suffix)
	bob := srv.Register(t, "hb_"+suffix)
	carol := srv.Register(t, "hc_"+suffix)
	// A name the string marshaler must escape.
	room := createRoom(t, srv, alice, "history \"quoted\" \\ backslash é ☃ <&>", bob)

	// The room: signed messages from both, one with an attachment, one
	// deleted, one that bob has read; then a direct conversation.
	var ids []string
	for i := range 5 {
		from := []*qchattest.User{alice, bob}[i%2]
		ids = append(ids, send(t, srv, from, qchattest.Seal(t, uuid.NewString(), from, room.ID, "", fmt.Sprint("m", i), alice, bob)).ID)
	}
	docID := uuid.NewString()
	in, file := qchattest.SealDocument(t, docID, alice, room.ID, "", "a \"file\".txt", "text/plain", []byte("attached"), alice, bob)
	if r := srv.Upload(t, alice.Token, uploadMutation, in, file); len(r.Errors) != 0 {
		t.Fatalf("upload: %+v", r.Errors)
	}
	send(t, srv, alice, qchattest.SealAttached(t, uuid.NewString(), alice, room.ID, "", docID, "see attached", alice, bob))
	srv.MustDo(t, alice.Token, `mutation($id: ID!) { deleteMessage(id: $id) }`, map[string]any{"id": ids[2]}, nil)
	srv.MustDo(t, bob.Token, `mutation($ids: [ID!]!) { markRead(messageIds: $ids) }`, map[string]any{"ids": ids[1:2]}, nil)
	for i := range 3 {
		from, to := alice, bob
		if i == 1 {
			from, to = bob, alice
		}
		send(t, srv, from, qchattest.Seal(t, uuid.NewString(), from, "", to.ID, fmt.Sprint("d", i), alice, bob))
	}
	var cursor struct {
		Room struct {
			Messages struct{ PageInfo struct{ EndCursor string } }
		}
	}
	srv.MustDo(t, alice.Token, `query($r: ID!) { room(id: $r) { messages(first: 2) { pageInfo { endCursor } } } }`,
		map[string]any{"r": room.ID}, &cursor)

	webRoom, webDirect := webHistoryQueries(t)
	sdkRoom, sdkDirect := sdkHistoryQueries(t)
	roomVars := map[string]any{"roomId": room.ID, "id": room.ID, "r": room.ID, "first": 50}
	directVars := map[string]any{"withUserId": bob.ID, "first": 50}

	// %s is where the root field's directive goes.
	cases := []struct {
		name  string
		query string
		vars  map[string]any
		fast  bool // for alice and bob; carol's direct messages with bob are an empty page
	}{
		{"the benchmark's", `query($r: ID!) { room(id: $r) %s { messages(first: 50) { edges { cursor node { id ciphertext nonce createdAt sender { id } myKey { keyId kemCiphertext wrappedKey } } } pageInfo { hasNextPage endCursor } } } }`, roomVars, true},
		{"web/lib's RoomMessages", webRoom, roomVars, true},
		{"web/lib's RoomMessages from Apollo", apolloStyle(t, webRoom), roomVars, true},
		{"web/lib's DirectMessages", webDirect, directVars, true},
		{"web/lib's DirectMessages from Apollo", apolloStyle(t, webDirect), directVars, true},
		{"the SDK's roomMessages", sdkRoom, roomVars, true},
		{"the SDK's directMessages", sdkDirect, directVars, true},
		{"aliases, typenames, fragments, repeats", `query Named($r: ID!) { __typename q: __typename r: room(id: $r) %s {
  __typename id name code isGroup createdAt
  older: messages(first: 3, after: "` + cursor.Room.Messages.PageInfo.EndCursor + `") { __typename pageInfo { __typename hasNextPage } edges { node { id } } }
  messages(first: 10) { __typename ... on MessageConnection { edges { __typename c: cursor node { ...M } } }
    pageInfo { ...P endCursor } edges { node { ... { createdAt id } sender { __typename createdAt } } } } }
  }
fragment M on Message { __typename id deleted version signature keyDigests attachmentId recipient { id }
  room { __typename id name isGroup code createdAt } sender { id username } k: myKey { readAt __typename } myKey { userId keyId }
  attachment { __typename id name mimeType size nonce createdAt version signature keyDigests } }
fragment P on PageInfo { hasNextPage __typename ...P2 }
fragment P2 on PageInfo { endCursor }`, roomVars, true},
		{"paging from a cursor", `query($r: ID!, $after: String) { room(id: $r) %s { messages(first: 2, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } } }`,
			map[string]any{"r": room.ID, "after": cursor.Room.Messages.PageInfo.EndCursor}, true},
		{"a page past the end", `query($r: ID!) { room(id: $r) %s { messages(first: 100) { edges { node { id } } pageInfo { hasNextPage endCursor } } } }`, roomVars, true},
		{"two root fields", `query($r: ID!, $u: ID!) { room(id: $r) %s { id } directMessages(withUserId: $u, first: 1) { pageInfo { endCursor } } }`,
			map[string]any{"r": room.ID, "u": bob.ID}, true},

		{"a resolver the fast path leaves alone", `query($r: ID!) { room(id: $r) %s { messages { edges { node { id sender { online } } } } } }`, roomVars, false},
		{"a room's role", `query($r: ID!) { room(id: $r) %s { myRole messages { edges { node { id } } } } }`, roomVars, false},
		{"a field's directive", `query($r: ID!) { room(id: $r) %s { messages { edges { node { id @skip(if: false) } } } } }`, roomVars, false},
		{"messages of a message's room", `query($r: ID!) { room(id: $r) %s { messages(first: 1) { edges { node { room { messages(first: 1) { edges { cursor } } } } } } } }`, roomVars, false},
	}
	// Each case as alice and bob (own keys, bob's readAt), and as carol,
	// who is no member: the room is null with NOT_FOUND, which the fast
	// path leaves to the normal one, and carol has no direct messages with
	// bob.
	readers := []*qchattest.User{alice, bob, carol}
	refused := []struct {
		name  string
		query string
		vars  map[string]any
	}{
		{"a bad cursor", `query($r: ID!) { room(id: $r) %s { messages(after: "nope") { edges { node { id } } } } }`, roomVars},
		{"a page too large", `query($r: ID!) { room(id: $r) %s { messages(first: 5000) { edges { node { id } } } } }`, roomVars},
		{"a negative page", `query($r: ID!) { room(id: $r) %s { messages(first: -1) { edges { node { id } } } } }`, roomVars},
		{"no such room", `query($r: ID!) { room(id: $r) %s { messages { edges { node { id } } } } }`, map[string]any{"r": uuid.NewString()}},
		{"no such user", `query($u: ID!) { directMessages(withUserId: $u) %s { edges { node { id } } } }`, map[string]any{"u": uuid.NewString()}},
		{"a malformed id", `query($r: ID!) { room(id: $r) %s { id } }`, map[string]any{"r": "not an id"}},
		{"over the complexity limit", `query($r: ID!) { room(id: $r) %s { messages(first: 1000) { edges { node { id sender { id } room { id } } } } } }`, roomVars},
	}
	post := func(token, query string, vars map[string]any) (int, string) {
		h := http.Header{"Content-Type": {"application/json"}}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		resp, body := srv.Raw(t, http.MethodPost, "/graphql", h, qchattest.GraphQLBody(query, vars))
		return resp.StatusCode, string(body)
	}
	compare := func(name string, token, query string, vars map[string]any) (int, string) {
		// The same length as the directive, so that errors' locations
		// are the same.
		before := graph.HistoryPages()
		fastCode, fast := post(token, fmt.Sprintf(query, "                  "), vars)
		fastTaken := graph.HistoryPages() - before
		slowCode, slow := post(token, fmt.Sprintf(query, "@include(if: true)"), vars)
		if graph.HistoryPages() != before+fastTaken {
			t.Errorf("%s: the query with a directive took the fast path", name)
		}
		if fastCode != slowCode || fast != slow {
			t.Errorf("%s:\n fast   %d %s\n normal %d %s", name, fastCode, fast, slowCode, slow)
		}
		return int(fastTaken), fast
	}
	var pages strings.Builder
	for _, c := range cases {
		for _, u := range readers {
			taken, body := compare(c.name+", as "+u.Name, u.Token, c.query, c.vars)
			pages.WriteString(body)
			member := u != carol
			direct := !strings.Contains(c.query, "room(")
			if want := c.fast && (member || direct); (taken == 1) != want {
				t.Errorf("%s, as %s: fast path taken %d times, want %v", c.name, u.Name, taken, want)
			}
			if member && (strings.Contains(body, `"errors"`) || !strings.Contains(body, `"data":{`)) {
				t.Errorf("%s, as %s: %s", c.name, u.Name, body)
			}
		}
	}
	// What the pages hold, so that the comparisons above cover it.
	for _, want := range []string{`"deleted":true`, `"readAt":"`, `"attachment":{"id":"` + docID, `"attachment":null`, `"myKey":null`, `\"quoted\"`, `"signature":"`} {
		if !strings.Contains(pages.String(), want) {
			t.Errorf("no %s in the pages", want)
		}
	}
	// Over websockets too: a query's data, then its completion.
	for _, proto := range qchattest.Protocols {
		ws := srv.Connect(t, proto, bob.Token)
		before := graph.HistoryPages()
		fast := ws.Subscribe(fmt.Sprintf(sdkRoom, ""), roomVars)
		slow := ws.Subscribe(fmt.Sprintf(sdkRoom, "@include(if: true)"), roomVars)
		for range 2 {
			f, ok1 := fast.Raw(t, 10*time.Second)
			s, ok2 := slow.Raw(t, 10*time.Second)
			if !ok1 || !ok2 || f.Type != s.Type || string(f.Payload) != string(s.Payload) {
				t.Errorf("%s:\n fast   %s %s\n normal %s %s", proto, f.Type, f.Payload, s.Type, s.Payload)
			}
		}
		if got := graph.HistoryPages() - before; got != 1 {
			t.Errorf("%s: fast path taken %d times, want 1", proto, got)
		}
	}
	for _, c := range refused {
		for _, u := range []*qchattest.User{alice, nil} {
			token, who := "", "anonymous"
			if u != nil {
				token, who = u.Token, u.Name
			}
			taken, body := compare(c.name+", as "+who, token, c.query, c.vars)
			if taken != 0 || !strings.Contains(body, `"errors"`) {
				t.Errorf("%s, as %s: fast path taken %d times: %s", c.name, who, taken, body)
			}
		}
	}
}

// webHistoryQueries are web/lib's RoomMessages and DirectMessages with the
// fragments they spread, from its operation files.
func webHistoryQueries(t *testing.T) (room, direct string) {
	ops := readFile(t, "../../web/lib/src/api/operations/messages.graphql")
	frags := readFile(t, "../../web/lib/src/api/operations/fragments.graphql")
	fragments := ""
	for _, f := range []string{"MessageFields", "MessagePreviewFields", "RecipientKeyFields", "PageInfoFields"} {
		fragments += "\n" + block(t, frags, "fragment "+f+" ")
	}
	return rootDirectiveSlot(t, block(t, ops, "query RoomMessages(")+fragments, "room(id: $roomId)"),
		rootDirectiveSlot(t, block(t, ops, "query DirectMessages(")+fragments, "directMessages(withUserId: $withUserId, first: $first, after: $after)")
}

// sdkHistoryQueries are the SDK's roomMessages and directMessages, as
// genqlient generated them.
func sdkHistoryQueries(t *testing.T) (room, direct string) {
	gen := readFile(t, "../../client/generated.go")
	op := func(name string) string {
		_, rest, ok := strings.Cut(gen, "const "+name+"_Operation = `")
		text, _, ok2 := strings.Cut(rest, "`")
		if !ok || !ok2 {
			t.Fatalf("no %s in client/generated.go", name)
		}
		return text
	}
	return rootDirectiveSlot(t, op("roomMessages"), "room(id: $id)"),
		rootDirectiveSlot(t, op("directMessages"), "directMessages(withUserId: $withUserId, first: $first, after: $after)")
}

func readFile(t *testing.T, path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// block is the definition of text starting at head, to its closing brace
// at the start of a line.
func block(t *testing.T, text, head string) string {
	i := strings.Index(text, head)
	if i < 0 {
		t.Fatalf("no %q", head)
	}
	j := strings.Index(text[i:], "\n}")
	if j < 0 {
		t.Fatalf("%q does not end", head)
	}
	return text[i : i+j+2]
}

// rootDirectiveSlot puts %s after the root field (escaping any % already there).
func rootDirectiveSlot(t *testing.T, query, field string) string {
	if strings.Count(query, field) != 1 {
		t.Fatalf("%q not once in %s", field, query)
	}
	query = strings.ReplaceAll(query, "%", "%%")
	return strings.Replace(query, field, field+" %s", 1)
}

// apolloStyle adds __typename at the end of every selection set but the
// operation's, as Apollo Client does to the documents it sends.
func apolloStyle(t *testing.T, query string) string {
	doc, err := parser.ParseQuery(&ast.Source{Input: fmt.Sprintf(query, "")})
	if err != nil {
		t.Fatal(err)
	}
	var add func(set ast.SelectionSet, root bool) ast.SelectionSet
	add = func(set ast.SelectionSet, root bool) ast.SelectionSet {
		for _, s := range set {
			switch s := s.(type) {
			case *ast.Field:
				if len(s.SelectionSet) != 0 {
					s.SelectionSet = add(s.SelectionSet, false)
				}
			case *ast.InlineFragment:
				s.SelectionSet = add(s.SelectionSet, false)
			}
		}
		if root {
			return set
		}
		return append(set, &ast.Field{Name: "__typename", Alias: "__typename"})
	}
	for _, op := range doc.Operations {
		op.SelectionSet = add(op.SelectionSet, true)
	}
	for _, f := range doc.Fragments {
		f.SelectionSet = add(f.SelectionSet, false)
	}
	var b bytes.Buffer
	formatter.NewFormatter(&b).FormatQueryDocument(doc)
	out := b.String()
	if !strings.Contains(out, "__typename") {
		t.Fatalf("no __typename added: %s", out)
	}
	// The root field's directive slot again, as the query had it.
	field := "room(id: $roomId)"
	if strings.Contains(out, "directMessages(") {
		field = "directMessages(withUserId: $withUserId, first: $first, after: $after)"
	}
	return rootDirectiveSlot(t, out, field)
}
