package server_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

const sendMutation = `mutation($in: SendMessageInput!) { sendMessage(input: $in) { ` + qchattest.MessageFields + ` } }`

func send(t *testing.T, srv *qchattest.Server, from *qchattest.User, in map[string]any) qchattest.WireMessage {
	t.Helper()
	var out struct{ SendMessage qchattest.WireMessage }
	srv.MustDo(t, from.Token, sendMutation, map[string]any{"in": in}, &out)
	return out.SendMessage
}

type page struct {
	Edges []struct {
		Cursor string
		Node   qchattest.WireMessage
	}
	PageInfo struct {
		HasNextPage bool
		EndCursor   *string
	}
}

func roomPage(t *testing.T, srv *qchattest.Server, u *qchattest.User, roomID string, first int, after *string) page {
	t.Helper()
	var out struct{ Room struct{ Messages page } }
	srv.MustDo(t, u.Token, `query($r: ID!, $n: Int, $a: String) { room(id: $r) { messages(first: $n, after: $a) {
		edges { cursor node { `+qchattest.MessageFields+` } } pageInfo { hasNextPage endCursor } } } }`,
		map[string]any{"r": roomID, "n": first, "a": after}, &out)
	return out.Room.Messages
}

func messageCount(t *testing.T, store *db.Store) int {
	t.Helper()
	n, err := store.DB().NewSelect().Table("messages").Count(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return int(n)
}

func TestMessages(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		bob := srv.Register(t, "bob")
		carol := srv.RegisterWith(t, "carol", pqcrypto.XWing)
		eve := srv.Register(t, "eve")
		room := createRoom(t, srv, alice, "trio", bob, carol)

		t.Run("room message reaches every member", func(t *testing.T) {
			id := uuid.NewString()
			m := send(t, srv, alice, qchattest.Seal(t, id, alice, room.ID, "", "hello room", alice, bob, carol))
			if m.ID != id || m.Sender.ID != alice.ID || m.MyKey == nil || m.MyKey.UserID != alice.ID {
				t.Fatalf("sent %+v", m)
			}
			if got := qchattest.Open(t, alice, m); got != "hello room" {
				t.Fatalf("alice reads %q", got)
			}
			for _, u := range []*qchattest.User{bob, carol} {
				p := roomPage(t, srv, u, room.ID, 10, nil)
				if len(p.Edges) != 1 || p.Edges[0].Node.MyKey.UserID != u.ID {
					t.Fatalf("%s sees %+v", u.Name, p)
				}
				if got := qchattest.Open(t, u, p.Edges[0].Node); got != "hello room" {
					t.Fatalf("%s reads %q", u.Name, got)
				}
			}
			if r := srv.Do(t, eve.Token, `query($id: ID!) { message(id: $id) { id } }`, map[string]any{"id": id}); r.Code() != "NOT_FOUND" {
				t.Fatalf("outsider reading a message: %q", r.Code())
			}
		})

		t.Run("retry is idempotent, other content conflicts", func(t *testing.T) {
			id := uuid.NewString()
			in := qchattest.Seal(t, id, alice, room.ID, "", "once", alice, bob, carol)
			first := send(t, srv, alice, in)
			again := send(t, srv, alice, in)
			if again.ID != first.ID || again.CreatedAt != first.CreatedAt || again.Ciphertext != first.Ciphertext {
				t.Fatalf("retry returned %+v, first %+v", again, first)
			}
			other := qchattest.Seal(t, id, alice, room.ID, "", "twice", alice, bob, carol)
			if r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": other}); r.Code() != "CONFLICT" {
				t.Fatalf("same id, other content: %q", r.Code())
			}
			if r := srv.Do(t, bob.Token, sendMutation, map[string]any{"in": qchattest.Seal(t, id, bob, room.ID, "", "once", alice, bob, carol)}); r.Code() != "CONFLICT" {
				t.Fatalf("same id from another sender: %q", r.Code())
			}
		})

		t.Run("malformed envelopes are rejected and nothing is stored", func(t *testing.T) {
			before := messageCount(t, store)
			mk := func(mut func(in map[string]any)) map[string]any {
				in := qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "x", alice, bob, carol)
				mut(in)
				return in
			}
			key := func(in map[string]any, i int) map[string]any { return in["keys"].([]map[string]any)[i] }
			cases := []struct {
				name  string
				in    map[string]any
				field string
			}{
				{"id not a uuid", mk(func(in map[string]any) { in["id"] = "message-1" }), ""},
				{"upper-case id", mk(func(in map[string]any) { in["id"] = "ABCDEF00-0000-4000-8000-000000000000" }), ""},
				{"ciphertext not base64", mk(func(in map[string]any) { in["ciphertext"] = "***" }), "ciphertext"},
				{"short nonce", mk(func(in map[string]any) { in["nonce"] = pqcrypto.EncodeB64(make([]byte, 11)) }), "nonce"},
				{"long nonce", mk(func(in map[string]any) { in["nonce"] = pqcrypto.EncodeB64(make([]byte, 13)) }), "nonce"},
				{"wrapped key 47 bytes", mk(func(in map[string]any) { key(in, 1)["wrappedKey"] = pqcrypto.EncodeB64(make([]byte, 47)) }), "keys[1].wrappedKey"},
				{"KEM ciphertext wrong length", mk(func(in map[string]any) { key(in, 0)["kemCiphertext"] = pqcrypto.EncodeB64(make([]byte, 1120)) }), "keys[0].kemCiphertext"},
				{"X-Wing ciphertext wrong length", mk(func(in map[string]any) { key(in, 2)["kemCiphertext"] = pqcrypto.EncodeB64(make([]byte, 1088)) }), "keys[2].kemCiphertext"},
				{"duplicate recipient", mk(func(in map[string]any) { in["keys"] = append(in["keys"].([]map[string]any), key(in, 0)) }), "keys[3].userId"},
				{"both room and recipient", mk(func(in map[string]any) { in["recipientId"] = bob.ID }), ""},
				{"neither room nor recipient", mk(func(in map[string]any) { delete(in, "roomId") }), ""},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": tc.in})
					if r.Code() != "BAD_USER_INPUT" {
						t.Fatalf("code %q (%+v)", r.Code(), r.Errors)
					}
					if tc.field != "" && r.Errors[0].Extensions["field"] != tc.field {
						t.Fatalf("field %v, want %s (%s)", r.Errors[0].Extensions["field"], tc.field, r.Errors[0].Message)
					}
				})
			}
			if n := messageCount(t, store); n != before {
				t.Fatalf("%d messages stored by rejected sends", n-before)
			}
		})

		t.Run("recipient set must match the members", func(t *testing.T) {
			strs := func(v any) []string {
				var out []string
				for _, x := range v.([]any) {
					out = append(out, x.(string))
				}
				sort.Strings(out)
				return out
			}
			missing := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "x", alice, bob)})
			if missing.Code() != "BAD_USER_INPUT" || fmt.Sprint(strs(missing.Errors[0].Extensions["missingUserIds"])) != fmt.Sprint([]string{carol.ID}) {
				t.Fatalf("missing: %+v", missing.Errors)
			}
			extra := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "x", alice, bob, carol, eve)})
			if extra.Code() != "BAD_USER_INPUT" || fmt.Sprint(strs(extra.Errors[0].Extensions["unexpectedUserIds"])) != fmt.Sprint([]string{eve.ID}) {
				t.Fatalf("unexpected: %+v", extra.Errors)
			}
			stale := *bob
			stale.KeyID = uuid.NewString()
			old := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "x", alice, &stale, carol)})
			if old.Code() != "BAD_USER_INPUT" || fmt.Sprint(strs(old.Errors[0].Extensions["staleKeyIds"])) != fmt.Sprint([]string{stale.KeyID}) {
				t.Fatalf("stale: %+v", old.Errors)
			}
			if r := srv.Do(t, eve.Token, sendMutation, map[string]any{"in": qchattest.Seal(t, uuid.NewString(), eve, room.ID, "", "x", alice, bob, carol, eve)}); r.Code() != "NOT_FOUND" {
				t.Fatalf("non-member sending: %q", r.Code())
			}
		})

		t.Run("direct messages", func(t *testing.T) {
			m1 := send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, "", eve.ID, "hi eve", alice, eve))
			m2 := send(t, srv, eve, qchattest.Seal(t, uuid.NewString(), eve, "", alice.ID, "hi alice", eve, alice))
			if m1.Recipient == nil || m1.Recipient.ID != eve.ID || m1.Room != nil {
				t.Fatalf("dm %+v", m1)
			}
			for _, side := range []struct{ me, other *qchattest.User }{{alice, eve}, {eve, alice}} {
				var out struct{ DirectMessages page }
				srv.MustDo(t, side.me.Token, `query($u: ID!) { directMessages(withUserId: $u) { edges { node { `+qchattest.MessageFields+` } } pageInfo { hasNextPage } } }`,
					map[string]any{"u": side.other.ID}, &out)
				e := out.DirectMessages.Edges
				if len(e) != 2 || e[0].Node.ID != m2.ID || e[1].Node.ID != m1.ID {
					t.Fatalf("%s's conversation %+v", side.me.Name, e)
				}
				if qchattest.Open(t, side.me, e[0].Node) != "hi alice" || qchattest.Open(t, side.me, e[1].Node) != "hi eve" {
					t.Fatal("decryption mismatch")
				}
			}
			var bobs struct{ DirectMessages page }
			srv.MustDo(t, bob.Token, `query($u: ID!) { directMessages(withUserId: $u) { edges { node { id } } } }`, map[string]any{"u": alice.ID}, &bobs)
			if len(bobs.DirectMessages.Edges) != 0 {
				t.Fatal("bob sees alice's conversation with eve")
			}
			if r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": qchattest.Seal(t, uuid.NewString(), alice, "", alice.ID, "me", alice)}); r.Code() != "BAD_USER_INPUT" {
				t.Fatalf("dm to self: %q", r.Code())
			}
			if r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": qchattest.Seal(t, uuid.NewString(), alice, "", eve.ID, "x", alice, eve, bob)}); r.Code() != "BAD_USER_INPUT" {
				t.Fatalf("dm sealed for a third user: %q", r.Code())
			}
			ghost := uuid.NewString()
			in := qchattest.Seal(t, uuid.NewString(), alice, "", eve.ID, "x", alice, eve)
			in["recipientId"] = ghost
			if r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": in}); r.Code() != "NOT_FOUND" {
				t.Fatalf("dm to nobody: %q", r.Code())
			}
		})

		t.Run("delete leaves a tombstone", func(t *testing.T) {
			m := send(t, srv, bob, qchattest.Seal(t, uuid.NewString(), bob, room.ID, "", "regret", alice, bob, carol))
			del := `mutation($id: ID!) { deleteMessage(id: $id) }`
			if r := srv.Do(t, alice.Token, del, map[string]any{"id": m.ID}); r.Code() != "FORBIDDEN" {
				t.Fatalf("deleting another's message: %q", r.Code())
			}
			if r := srv.Do(t, eve.Token, del, map[string]any{"id": m.ID}); r.Code() != "NOT_FOUND" {
				t.Fatalf("outsider deleting: %q", r.Code())
			}
			srv.MustDo(t, bob.Token, del, map[string]any{"id": m.ID}, nil)
			var out struct{ Message qchattest.WireMessage }
			srv.MustDo(t, alice.Token, `query($id: ID!) { message(id: $id) { `+qchattest.MessageFields+` } }`, map[string]any{"id": m.ID}, &out)
			if !out.Message.Deleted || out.Message.Ciphertext != "" || out.Message.MyKey != nil {
				t.Fatalf("tombstone %+v", out.Message)
			}
		})

		t.Run("markRead counts newly read only", func(t *testing.T) {
			a := send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "r1", alice, bob, carol))
			b := send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "r2", alice, bob, carol))
			mark := `mutation($ids: [ID!]!) { markRead(messageIds: $ids) }`
			var n struct{ MarkRead int }
			srv.MustDo(t, bob.Token, mark, map[string]any{"ids": []string{a.ID, b.ID}}, &n)
			if n.MarkRead != 2 {
				t.Fatalf("first markRead = %d", n.MarkRead)
			}
			srv.MustDo(t, bob.Token, mark, map[string]any{"ids": []string{a.ID, b.ID}}, &n)
			if n.MarkRead != 0 {
				t.Fatalf("second markRead = %d", n.MarkRead)
			}
			srv.MustDo(t, eve.Token, mark, map[string]any{"ids": []string{a.ID}}, &n)
			if n.MarkRead != 0 {
				t.Fatalf("outsider marked %d", n.MarkRead)
			}
			p := roomPage(t, srv, bob, room.ID, 1, nil)
			if p.Edges[0].Node.MyKey.ReadAt == nil {
				t.Fatal("readAt not set")
			}
		})
	})
}

func TestPagination(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		bob := srv.Register(t, "bob")
		room := createRoom(t, srv, alice, "pages", bob)
		const total = 60
		for range total {
			send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "m", alice, bob))
		}
		// Page through while other messages keep arriving: every message that
		// existed when paging started appears exactly once, in order.
		var wg sync.WaitGroup
		stop := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
					send(t, srv, bob, qchattest.Seal(t, uuid.NewString(), bob, room.ID, "", "late", alice, bob))
				}
			}
		}()
		first := roomPage(t, srv, bob, room.ID, 7, nil)
		seen := map[string]bool{}
		// (time, id) of each message as listed. Times compare as times: as
		// text, RFC 3339 drops trailing zeros (".1Z" sorts after ".12Z").
		type at struct {
			t  time.Time
			id string
		}
		var order []at
		p := first
		for {
			for _, e := range p.Edges {
				if seen[e.Node.ID] {
					t.Fatalf("duplicate %s", e.Node.ID)
				}
				seen[e.Node.ID] = true
				ts, err := time.Parse(time.RFC3339Nano, e.Node.CreatedAt)
				if err != nil {
					t.Fatalf("createdAt %q: %v", e.Node.CreatedAt, err)
				}
				order = append(order, at{ts, e.Node.ID})
			}
			if !p.PageInfo.HasNextPage {
				break
			}
			p = roomPage(t, srv, bob, room.ID, 7, p.PageInfo.EndCursor)
		}
		close(stop)
		wg.Wait()
		if len(seen) < total {
			t.Fatalf("saw %d messages, want at least %d", len(seen), total)
		}
		if !sort.SliceIsSorted(order, func(i, j int) bool {
			if !order[i].t.Equal(order[j].t) {
				return order[i].t.After(order[j].t)
			}
			return order[i].id > order[j].id
		}) {
			t.Fatal("history is not newest first")
		}
		bad := []struct {
			vars map[string]any
		}{
			{map[string]any{"r": room.ID, "n": 0}},
			{map[string]any{"r": room.ID, "n": 101}},
			{map[string]any{"r": room.ID, "n": 5, "a": "garbage!"}},
		}
		for _, b := range bad {
			r := srv.Do(t, bob.Token, `query($r: ID!, $n: Int, $a: String) { room(id: $r) { messages(first: $n, after: $a) { edges { cursor } } } }`, b.vars)
			if r.Code() != "BAD_USER_INPUT" {
				t.Errorf("%v: code %q", b.vars, r.Code())
			}
		}
	})
}

// The SQLite file must hold ciphertext only.
func TestNoPlaintextInDatabase(t *testing.T) {
	dir := t.TempDir()
	store, err := db.Open(t.Context(), "", dir, db.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv := qchattest.NewServer(t, store)
	alice := srv.Register(t, "alice")
	bob := srv.Register(t, "bob")
	room := createRoom(t, srv, alice, "secret", bob)
	secrets := []string{"the eagle lands at midnight", "launch code 0000", "dm: meet me by the old oak"}
	send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", secrets[0], alice, bob))
	send(t, srv, bob, qchattest.Seal(t, uuid.NewString(), bob, room.ID, "", secrets[1], alice, bob))
	send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, "", bob.ID, secrets[2], alice, bob))
	// Flush the WAL into the main file so that both are searched as they will sit on disk.
	if _, err := store.DB().ExecContext(t.Context(), "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "qchat.db*"))
	if len(files) == 0 {
		t.Fatal("no database file")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range append(secrets, alice.Password, bob.Password) {
			if bytes.Contains(b, []byte(s)) {
				t.Fatalf("%s contains %q", filepath.Base(f), s)
			}
		}
	}
	_ = store.Close()
}
