package server_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
)

// contacts registers alice and the people around her: bob shares a room with
// her, dan wrote to her, penny was written to by her, eve shares nothing.
func contacts(t *testing.T, srv *qchattest.Server) (alice, bob, dan, penny, eve *qchattest.User, roomID string) {
	t.Helper()
	alice, bob, dan, penny, eve = srv.Register(t, "alice"), srv.Register(t, "bob"), srv.Register(t, "dan"), srv.Register(t, "penny"), srv.Register(t, "eve")
	roomID = createRoom(t, srv, alice, "ours", bob).ID
	send(t, srv, dan, qchattest.Seal(t, uuid.NewString(), dan, "", alice.ID, "hello alice", dan, alice))
	send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, "", penny.ID, "hello penny", alice, penny))
	return alice, bob, dan, penny, eve, roomID
}

// Issue 14, item 4: User.online told anyone whether anyone was online, so a
// stranger polling userByUsername(x) { online } saw x come and go. It is the
// truth for the user and whoever shares a conversation with it, false for
// anyone else, however the user is reached.
func TestOnlineOnlyForContacts(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice, bob, dan, penny, eve, roomID := contacts(t, srv)
		srv.Connect(t, qchattest.TransportWS, alice.Token) // alice is online

		queries := map[string]struct {
			query string
			vars  map[string]any
			get   func(map[string]any) any
		}{
			"userByUsername": {`query($n: String!) { userByUsername(username: $n) { online } }`, map[string]any{"n": "alice"},
				func(d map[string]any) any { return d["userByUsername"].(map[string]any)["online"] }},
			"user": {`query($id: ID!) { user(id: $id) { online } }`, map[string]any{"id": alice.ID},
				func(d map[string]any) any { return d["user"].(map[string]any)["online"] }},
			"users": {`query($id: ID!) { users(ids: [$id]) { online } }`, map[string]any{"id": alice.ID},
				func(d map[string]any) any { return d["users"].([]any)[0].(map[string]any)["online"] }},
		}
		for _, tc := range []struct {
			viewer *qchattest.User
			want   bool
		}{
			{alice, true}, // herself
			{bob, true},   // a room
			{dan, true},   // a direct conversation he started
			{penny, true}, // one she started
			{eve, false},  // nothing shared
		} {
			for name, q := range queries {
				t.Run(tc.viewer.Name+"/"+name, func(t *testing.T) {
					var d map[string]any
					srv.MustDo(t, tc.viewer.Token, q.query, q.vars, &d)
					if got := q.get(d); got != tc.want {
						t.Fatalf("%s sees alice online = %v, want %v", tc.viewer.Name, got, tc.want)
					}
				})
			}
		}
		t.Run("a member list tells each member's truth", func(t *testing.T) {
			var out struct {
				Room struct {
					Members []struct {
						User struct {
							Username string
							Online   bool
						}
					}
				}
			}
			srv.MustDo(t, bob.Token, `query($r: ID!) { room(id: $r) { members { user { username online } } } }`, map[string]any{"r": roomID}, &out)
			got := map[string]bool{}
			for _, m := range out.Room.Members {
				got[m.User.Username] = m.User.Online
			}
			if !got["alice"] || got["bob"] || len(got) != 2 {
				t.Fatalf("members seen online: %v, want alice only", got)
			}
		})
	})
}

// Issue 14, item 4: setTyping(recipientId) reaches only users who share a
// conversation with the sender. To anyone else it is a silent no-op (the
// same true), and an unknown id is NOT_FOUND as before.
func TestTypingOnlyToContacts(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice, _, dan, penny, eve, _ := contacts(t, srv)
		typing := srv.Connect(t, qchattest.TransportWS, alice.Token).Subscribe(`subscription { typing { user { id } recipientId isTyping } }`, nil)
		srv.WaitSubscribers(t, 1)
		setTyping := func(from *qchattest.User, to string) *qchattest.Response {
			return srv.Do(t, from.Token, `mutation($u: ID!) { setTyping(recipientId: $u, isTyping: true) }`, map[string]any{"u": to})
		}
		// next asserts the next notice alice gets is from want: notices of
		// one topic arrive in the order they were sent, so anything sent
		// before it and not delivered was not sent at all.
		next := func(t *testing.T, want *qchattest.User) {
			t.Helper()
			var ev struct {
				Typing struct {
					User        struct{ ID string }
					RecipientID string
				}
			}
			typing.Next(t, &ev)
			if ev.Typing.User.ID != want.ID || ev.Typing.RecipientID != alice.ID {
				t.Fatalf("alice got typing from %s, want %s", ev.Typing.User.ID, want.Name)
			}
		}

		if r := setTyping(eve, alice.ID); len(r.Errors) > 0 || string(r.Data) != `{"setTyping":true}` {
			t.Fatalf("stranger's setTyping answered %s %+v, want a silent true", r.Data, r.Errors)
		}
		if r := setTyping(eve, uuid.NewString()); r.Code() != "NOT_FOUND" {
			t.Fatalf("setTyping to an unknown user answered %+v", r.Errors)
		}
		for _, from := range []*qchattest.User{dan, penny} { // either way of a direct conversation
			if r := setTyping(from, alice.ID); len(r.Errors) > 0 {
				t.Fatalf("%s: %+v", from.Name, r.Errors)
			}
			next(t, from)
		}
		// Once eve writes to alice they share a conversation.
		send(t, srv, eve, qchattest.Seal(t, uuid.NewString(), eve, "", alice.ID, "hi, it's eve", eve, alice))
		setTyping(eve, alice.ID)
		next(t, eve)
	})
}
