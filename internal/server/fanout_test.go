package server_test

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
)

// seedRoomMessages stores n messages from sender in a room, with a recipient
// key for each member, straight through the store: the test is about what
// happens when they are read, and sealing 500 envelopes would only slow it.
func seedRoomMessages(t *testing.T, store *db.Store, roomID string, sender *qchattest.User, n int, members ...*qchattest.User) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		id := uuid.NewString()
		m := &models.Message{
			ID: id, Conversation: roomID, RoomID: &roomID, SenderID: sender.ID,
			CipherBytes: []byte{1}, NonceBytes: make([]byte, 12), ContentHash: []byte{byte(i)}, CreatedAt: models.Now(),
		}
		keys := make([]*models.RecipientKey, len(members))
		for j, u := range members {
			keys[j] = &models.RecipientKey{MessageID: id, UserID: u.ID, KeyID: u.KeyID, KEMBytes: []byte{2}, WrappedBytes: []byte{3}}
		}
		if _, _, err := store.InsertMessage(t.Context(), m, keys); err != nil {
			t.Fatalf("seed message %d: %v", i, err)
		}
		ids[i] = id
	}
	return ids
}

type receiptEvent struct {
	ReadReceipts struct {
		MessageID string
		User      struct{ ID string }
		ReadAt    string
	}
}

// Issue 14, item 2: one member marking 500 messages read used to publish 500
// events to every member; past a subscriber's 256-event buffer the broker
// dropped it, and the other members' messageAdded, typing and readReceipts
// subscriptions all completed while their sockets stayed open. Now the other
// members receive every receipt and their subscriptions keep working.
func TestMarkReadKeepsOthersSubscribed(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice, bob, carol, dave := srv.Register(t, "alice"), srv.Register(t, "bob"), srv.Register(t, "carol"), srv.Register(t, "dave")
		room := createRoom(t, srv, alice, "busy", bob, carol, dave)
		const n = 500 // markRead's maximum
		ids := seedRoomMessages(t, store, room.ID, alice, n, alice, bob, carol, dave)

		type watcher struct {
			u                       *qchattest.User
			added, typing, receipts *qchattest.Sub
		}
		var watchers []watcher
		for i, u := range []*qchattest.User{bob, carol} {
			ws := srv.Connect(t, qchattest.Protocols[i], u.Token) // one socket of each protocol
			watchers = append(watchers, watcher{
				u:        u,
				added:    ws.Subscribe(messageAddedSub, nil),
				typing:   ws.Subscribe(`subscription { typing { user { id } roomId isTyping } }`, nil),
				receipts: ws.Subscribe(`subscription { readReceipts { messageId user { id } readAt } }`, nil),
			})
		}
		srv.WaitSubscribers(t, 3*len(watchers))

		markRead := func(ids []string) int {
			var out struct{ MarkRead int }
			srv.MustDo(t, dave.Token, `mutation($ids: [ID!]!) { markRead(messageIds: $ids) }`, map[string]any{"ids": ids}, &out)
			return out.MarkRead
		}
		if got := markRead(ids); got != n {
			t.Fatalf("markRead marked %d, want %d", got, n)
		}
		for _, w := range watchers {
			want := map[string]bool{}
			for _, id := range ids {
				want[id] = true
			}
			for range n {
				var ev receiptEvent
				w.receipts.Next(t, &ev) // fails on a completed subscription
				r := ev.ReadReceipts
				if !want[r.MessageID] || r.User.ID != dave.ID || r.ReadAt == "" {
					t.Fatalf("%s: unexpected or repeated receipt %+v", w.u.Name, r)
				}
				delete(want, r.MessageID)
			}
		}

		// Every subscription still works: a new message, a typing notice and
		// a receipt reach both members.
		sent := send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "still there?", alice, bob, carol, dave))
		srv.MustDo(t, alice.Token, `mutation($r: ID!) { setTyping(roomId: $r, isTyping: true) }`, map[string]any{"r": room.ID}, nil)
		if got := markRead([]string{sent.ID}); got != 1 {
			t.Fatalf("markRead of the new message marked %d", got)
		}
		for _, w := range watchers {
			var m struct{ MessageAdded qchattest.WireMessage }
			w.added.Next(t, &m)
			if m.MessageAdded.ID != sent.ID || qchattest.Open(t, w.u, m.MessageAdded) != "still there?" {
				t.Fatalf("%s: messageAdded %+v", w.u.Name, m.MessageAdded)
			}
			var ty struct {
				Typing struct {
					User     struct{ ID string }
					IsTyping bool
				}
			}
			w.typing.Next(t, &ty)
			if ty.Typing.User.ID != alice.ID || !ty.Typing.IsTyping {
				t.Fatalf("%s: typing %+v", w.u.Name, ty)
			}
			var rc receiptEvent
			w.receipts.Next(t, &rc)
			if rc.ReadReceipts.MessageID != sent.ID {
				t.Fatalf("%s: receipt %+v", w.u.Name, rc)
			}
		}
	})
}

// Issue 14, item 2, the other fan-out paths: no single action of one user
// may send another user's subscriber more events than its buffer holds. The
// buffer is cut to 8 and each action touches 12 users, rooms or messages:
// before, creating a room sent every member one event per member, and
// marking messages read in several rooms one event per room.
func TestOneActionOneEventPerSubscriber(t *testing.T) {
	const buffer, n = 8, 12
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store, qchattest.Options{BrokerBuffer: buffer})
		owner, bob := srv.Register(t, "owner"), srv.Register(t, "bob")
		others := []*qchattest.User{bob}
		for i := len(others); i < n; i++ {
			others = append(others, srv.Register(t, "member"+string(rune('a'+i))))
		}
		// watch subscribes bob to what a client listens to.
		type subs struct{ rooms, added, receipts *qchattest.Sub }
		watch := func(t *testing.T) subs {
			// The previous subtest's subscriptions end when the server
			// sees its socket close; they must not count here.
			for deadline := time.Now().Add(5 * time.Second); srv.Broker.Subscribers() > 1; time.Sleep(2 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("%d subscribers left from before", srv.Broker.Subscribers())
				}
			}
			ws := srv.Connect(t, qchattest.TransportWS, bob.Token)
			s := subs{
				rooms:    ws.Subscribe(`subscription { roomEvents { type room { id } user { id } } }`, nil),
				added:    ws.Subscribe(messageAddedSub, nil),
				receipts: ws.Subscribe(`subscription { readReceipts { messageId user { id } } }`, nil),
			}
			srv.WaitSubscribers(t, 3)
			t.Cleanup(ws.Shutdown)
			return s
		}
		// stats returns the broker's deliveries and drops so far.
		stats := func() [2]uint64 {
			d, x := srv.Broker.Stats()
			return [2]uint64{d, x}
		}
		// bounded fails if the action made the broker drop a subscriber or
		// sent more than max events in all: bob's three subscriptions, one
		// event each, and the invalidations it names.
		bounded := func(t *testing.T, before [2]uint64, max uint64) {
			t.Helper()
			now := stats()
			if now[1] != before[1] {
				t.Fatalf("the broker dropped %d subscribers", now[1]-before[1])
			}
			if got := now[0] - before[0]; got > max {
				t.Fatalf("%d events delivered, want at most %d (one per subscriber)", got, max)
			}
		}
		type roomEvent struct {
			RoomEvents struct {
				Type string
				Room struct{ ID string }
				User *struct{ ID string }
			}
		}

		t.Run("createRoom with every member at once", func(t *testing.T) {
			s := watch(t)
			before := stats()
			room := createRoom(t, srv, owner, "crowd", others...)
			var ev roomEvent
			s.rooms.Next(t, &ev)
			if ev.RoomEvents.Type != "MEMBER_JOINED" || ev.RoomEvents.Room.ID != room.ID || ev.RoomEvents.User == nil || ev.RoomEvents.User.ID != bob.ID {
				t.Fatalf("bob told %+v, want his own MEMBER_JOINED", ev)
			}
			bounded(t, before, 3+1) // and one invalidation of the memberships
		})

		t.Run("markRead across many rooms", func(t *testing.T) {
			reader := others[1]
			var ids []string
			for i := range n {
				room := createRoom(t, srv, reader, "pair"+string(rune('a'+i)), bob)
				ids = append(ids, seedRoomMessages(t, store, room.ID, bob, 1, bob, reader)...)
			}
			s := watch(t)
			before := stats()
			srv.MustDo(t, reader.Token, `mutation($ids: [ID!]!) { markRead(messageIds: $ids) }`, map[string]any{"ids": ids}, nil)
			for range n {
				var ev receiptEvent
				s.receipts.Next(t, &ev)
				if ev.ReadReceipts.User.ID != reader.ID {
					t.Fatalf("receipt %+v", ev)
				}
			}
			bounded(t, before, 3)
		})

		t.Run("deleteRoom of many members", func(t *testing.T) {
			room := createRoom(t, srv, owner, "doomed", others...)
			s := watch(t)
			before := stats()
			srv.MustDo(t, owner.Token, `mutation($r: ID!) { deleteRoom(roomId: $r) }`, map[string]any{"r": room.ID}, nil)
			var ev roomEvent
			s.rooms.Next(t, &ev)
			if ev.RoomEvents.Type != "DELETED" || ev.RoomEvents.Room.ID != room.ID {
				t.Fatalf("bob told %+v", ev)
			}
			bounded(t, before, 3+2) // and invalidations of the room and of its memberships
		})
	})
}
