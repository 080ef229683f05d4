package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
)

func TestWebsocketAuth(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice := srv.Register(t, "alice")
	for _, proto := range qchattest.Protocols {
		t.Run(proto, func(t *testing.T) {
			for name, payload := range map[string]map[string]any{
				"no token":      {},
				"bad token":     {"authToken": "not-a-token"},
				"bad bearer":    {"Authorization": "Bearer nope"},
				"revoked token": {"authToken": srv.Register(t, "gone-"+proto[:9]).Token},
			} {
				t.Run(name, func(t *testing.T) {
					if tok, ok := payload["authToken"].(string); ok && name == "revoked token" {
						srv.MustDo(t, tok, `mutation { logout }`, nil, nil)
					}
					ws, err := srv.Dial(t, proto, nil)
					if err != nil {
						t.Fatal(err)
					}
					err = ws.Init(payload)
					if err == nil {
						t.Fatal("connection_init accepted")
					}
					var ie *qchattest.InitError
					if proto == qchattest.TransportWS && !errors.As(err, &ie) && websocket.CloseStatus(err) != 4403 {
						t.Fatalf("refusal = %v, want close 4403", err)
					}
				})
			}
			t.Run("Authorization key accepted", func(t *testing.T) {
				ws, err := srv.Dial(t, proto, nil)
				if err != nil {
					t.Fatal(err)
				}
				if err := ws.Init(map[string]any{"Authorization": "Bearer " + alice.Token}); err != nil {
					t.Fatal(err)
				}
			})
		})
	}
	// A browser page from a foreign origin may not open a socket.
	if _, err := srv.Dial(t, qchattest.TransportWS, http.Header{"Origin": {"https://evil.example"}}); err == nil {
		t.Fatal("cross-origin websocket accepted")
	}
}

const messageAddedSub = `subscription($r: ID) { messageAdded(roomId: $r) { ` + qchattest.MessageFields + ` } }`

func TestSubscriptions(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		for _, proto := range qchattest.Protocols {
			t.Run(proto, func(t *testing.T) { testSubscriptions(t, store, proto) })
		}
	})
}

func testSubscriptions(t *testing.T, store *db.Store, proto string) {
	srv := qchattest.NewServer(t, store)
	suffix := "_l" // distinct usernames per protocol on the shared store
	if proto == qchattest.TransportWS {
		suffix = "_t"
	}
	alice := srv.Register(t, "alice"+suffix)
	bob := srv.Register(t, "bob"+suffix)
	carol := srv.Register(t, "carol"+suffix)
	eve := srv.Register(t, "eve"+suffix)
	room := createRoom(t, srv, alice, "live", bob, carol)

	bobWS := srv.Connect(t, proto, bob.Token)
	carolWS := srv.Connect(t, proto, carol.Token)
	eveWS := srv.Connect(t, proto, eve.Token)
	aliceWS := srv.Connect(t, proto, alice.Token)

	bobAll := bobWS.Subscribe(messageAddedSub, nil)
	carolRoom := carolWS.Subscribe(messageAddedSub, map[string]any{"r": room.ID})
	eveAll := eveWS.Subscribe(messageAddedSub, nil)
	carolEvents := carolWS.Subscribe(`subscription { roomEvents { type room { id name } user { id } } }`, nil)
	bobTyping := bobWS.Subscribe(`subscription($r: ID) { typing(roomId: $r) { user { id } roomId isTyping } }`, map[string]any{"r": room.ID})
	aliceReceipts := aliceWS.Subscribe(`subscription { readReceipts { messageId user { id } readAt } }`, nil)
	bobDeleted := bobWS.Subscribe(`subscription { messageDeleted }`, nil)
	bobNamed := bobWS.Subscribe(`subscription { messageAdded { id room { name } recipient { username } } }`, nil)
	srv.WaitSubscribers(t, 8)
	type named struct {
		MessageAdded struct {
			ID        string
			Room      *struct{ Name string }
			Recipient *struct{ Username string }
		}
	}

	t.Run("non-member room filter is refused", func(t *testing.T) {
		s := eveWS.Subscribe(messageAddedSub, map[string]any{"r": room.ID})
		m, ok := s.Raw(t, 5*time.Second)
		if !ok || !strings.Contains(string(m.Payload), `"NOT_FOUND"`) {
			t.Fatalf("got %s %s", m.Type, m.Payload)
		}
	})

	var sent qchattest.WireMessage
	t.Run("messageAdded carries the subscriber's own key", func(t *testing.T) {
		sent = send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "live hello", alice, bob, carol))
		for _, c := range []struct {
			u   *qchattest.User
			sub *qchattest.Sub
		}{{bob, bobAll}, {carol, carolRoom}} {
			var ev struct{ MessageAdded qchattest.WireMessage }
			c.sub.Next(t, &ev)
			if ev.MessageAdded.ID != sent.ID || ev.MessageAdded.MyKey == nil || ev.MessageAdded.MyKey.UserID != c.u.ID {
				t.Fatalf("%s got %+v", c.u.Name, ev.MessageAdded)
			}
			if got := qchattest.Open(t, c.u, ev.MessageAdded); got != "live hello" {
				t.Fatalf("%s decrypts %q", c.u.Name, got)
			}
		}
		// A direct message reaches the recipient's unfiltered subscription only.
		dm := send(t, srv, eve, qchattest.Seal(t, uuid.NewString(), eve, "", bob.ID, "psst", eve, bob))
		var ev struct{ MessageAdded qchattest.WireMessage }
		bobAll.Next(t, &ev)
		if ev.MessageAdded.ID != dm.ID || qchattest.Open(t, bob, ev.MessageAdded) != "psst" {
			t.Fatalf("dm event %+v", ev)
		}
		// Events name the room and the recipient as they are now.
		var a, b named
		bobNamed.Next(t, &a)
		bobNamed.Next(t, &b)
		if a.MessageAdded.ID != sent.ID || a.MessageAdded.Room == nil || a.MessageAdded.Room.Name != "live" ||
			b.MessageAdded.ID != dm.ID || b.MessageAdded.Recipient == nil || b.MessageAdded.Recipient.Username != bob.Name {
			t.Fatalf("named events %+v %+v", a, b)
		}
		// Eve, outside the room, hears only her own direct message.
		var eves struct{ MessageAdded qchattest.WireMessage }
		eveAll.Next(t, &eves)
		if eves.MessageAdded.ID != dm.ID {
			t.Fatalf("eve received %s, want only her DM %s", eves.MessageAdded.ID, dm.ID)
		}
	})

	t.Run("typing", func(t *testing.T) {
		srv.MustDo(t, alice.Token, `mutation($r: ID!) { setTyping(roomId: $r, isTyping: true) }`, map[string]any{"r": room.ID}, nil)
		var ev struct {
			Typing struct {
				User     struct{ ID string }
				RoomID   string
				IsTyping bool
			}
		}
		bobTyping.Next(t, &ev)
		if ev.Typing.User.ID != alice.ID || ev.Typing.RoomID != room.ID || !ev.Typing.IsTyping {
			t.Fatalf("typing %+v", ev)
		}
	})

	t.Run("read receipts", func(t *testing.T) {
		srv.MustDo(t, bob.Token, `mutation($ids: [ID!]!) { markRead(messageIds: $ids) }`, map[string]any{"ids": []string{sent.ID}}, nil)
		var ev struct {
			ReadReceipts struct {
				MessageID string
				User      struct{ ID string }
				ReadAt    string
			}
		}
		aliceReceipts.Next(t, &ev)
		if ev.ReadReceipts.MessageID != sent.ID || ev.ReadReceipts.User.ID != bob.ID || ev.ReadReceipts.ReadAt == "" {
			t.Fatalf("receipt %+v", ev)
		}
	})

	t.Run("messageDeleted", func(t *testing.T) {
		srv.MustDo(t, alice.Token, `mutation($id: ID!) { deleteMessage(id: $id) }`, map[string]any{"id": sent.ID}, nil)
		var ev struct{ MessageDeleted string }
		bobDeleted.Next(t, &ev)
		if ev.MessageDeleted != sent.ID {
			t.Fatalf("deleted %+v", ev)
		}
	})

	t.Run("room events", func(t *testing.T) {
		srv.MustDo(t, alice.Token, `mutation($r: ID!) { updateRoom(roomId: $r, name: "renamed") { id } }`, map[string]any{"r": room.ID}, nil)
		var ev struct {
			RoomEvents struct {
				Type string
				Room struct{ ID, Name string }
				User *struct{ ID string }
			}
		}
		carolEvents.Next(t, &ev)
		if ev.RoomEvents.Type != "RENAMED" || ev.RoomEvents.Room.Name != "renamed" {
			t.Fatalf("event %+v", ev)
		}
		// The rename reached the cached room that message events name.
		send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "after the rename", alice, bob, carol))
		var n named
		bobNamed.Next(t, &n)
		if n.MessageAdded.Room == nil || n.MessageAdded.Room.Name != "renamed" {
			t.Fatalf("event after the rename names the room %+v", n.MessageAdded.Room)
		}
		var drain struct{ MessageAdded qchattest.WireMessage }
		bobAll.Next(t, &drain)
		carolRoom.Next(t, &drain)
	})

	t.Run("a removed member stops receiving", func(t *testing.T) {
		srv.MustDo(t, alice.Token, `mutation($r: ID!, $u: ID!) { removeRoomMember(roomId: $r, userId: $u) { id } }`,
			map[string]any{"r": room.ID, "u": carol.ID}, nil)
		var ev struct {
			RoomEvents struct {
				Type string
				User *struct{ ID string }
			}
		}
		carolEvents.Next(t, &ev)
		if ev.RoomEvents.Type != "MEMBER_LEFT" || ev.RoomEvents.User == nil || ev.RoomEvents.User.ID != carol.ID {
			t.Fatalf("carol told %+v", ev)
		}
		send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "after carol", alice, bob))
		var got struct{ MessageAdded qchattest.WireMessage }
		bobAll.Next(t, &got)
		carolRoom.ExpectNone(t, 150*time.Millisecond)
	})

	t.Run("presence", func(t *testing.T) {
		pres := bobWS.Subscribe(`subscription { presence { user { id online } online } }`, nil)
		srv.WaitSubscribers(t, 9)
		var online struct{ User struct{ Online bool } }
		srv.MustDo(t, bob.Token, `query($u: ID!) { user(id: $u) { online } }`, map[string]any{"u": alice.ID}, &online)
		if !online.User.Online {
			t.Fatal("alice not online while her socket is open")
		}
		aliceWS.Shutdown()
		var ev struct {
			Presence struct {
				User   struct{ ID string }
				Online bool
			}
		}
		pres.Next(t, &ev)
		if ev.Presence.User.ID != alice.ID || ev.Presence.Online {
			t.Fatalf("presence %+v", ev)
		}
		again := srv.Connect(t, proto, alice.Token)
		pres.Next(t, &ev)
		if ev.Presence.User.ID != alice.ID || !ev.Presence.Online {
			t.Fatalf("presence %+v", ev)
		}
		again.Shutdown()
	})
}

// A logout ends the session's open sockets at once, with 4403.
func TestLogoutClosesSockets(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	alice := srv.Register(t, "alice")
	for _, proto := range qchattest.Protocols {
		t.Run(proto, func(t *testing.T) {
			var login struct{ Login struct{ Token string } }
			srv.MustDo(t, "", `mutation($p: String!) { login(username: "alice", password: $p) { token } }`, map[string]any{"p": alice.Password}, &login)
			ws := srv.Connect(t, proto, login.Login.Token)
			other := srv.Connect(t, proto, alice.Token) // another session stays open
			srv.MustDo(t, login.Login.Token, `mutation { logout }`, nil, nil)
			select {
			case <-ws.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("socket of the revoked session still open")
			}
			if ws.Close != 4403 {
				t.Fatalf("close status %d, want 4403", ws.Close)
			}
			select {
			case <-other.Done():
				t.Fatal("another session's socket was closed")
			case <-time.After(100 * time.Millisecond):
			}
		})
	}
}

// A session that expires closes its open sockets with 4403, as a logout does.
func TestSessionExpiryClosesSockets(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.SessionTTL = 1500 * time.Millisecond
	}})
	alice := srv.Register(t, "alice")
	ws := srv.Connect(t, qchattest.TransportWS, alice.Token)
	select {
	case <-ws.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("socket still open after its session expired")
	}
	if ws.Close != 4403 {
		t.Fatalf("close status %d, want 4403", ws.Close)
	}
}
