package db_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
)

func seedRoom(t *testing.T, s *db.Store, owner *models.User, at models.Time) *models.Room {
	t.Helper()
	r := &models.Room{ID: uuid.NewString(), Name: "r", IsGroup: true, Code: uuid.NewString()[:8], OwnerID: owner.ID, CreatedAt: at}
	if err := s.CreateRoom(t.Context(), r, []*models.RoomMember{{RoomID: r.ID, UserID: owner.ID, Role: models.RoomRoleOwner, JoinedAt: at}}); err != nil {
		t.Fatal(err)
	}
	return r
}

func seedMessage(t *testing.T, s *db.Store, conv string, room *string, from *models.User, to *models.User, at models.Time, readers ...*models.User) *models.Message {
	t.Helper()
	m := &models.Message{ID: uuid.NewString(), Conversation: conv, RoomID: room, SenderID: from.ID, CipherBytes: []byte("ct"),
		NonceBytes: make([]byte, 12), ContentHash: []byte{1}, CreatedAt: at}
	if to != nil {
		m.RecipientID = &to.ID
	}
	var keys []*models.RecipientKey
	for _, u := range append([]*models.User{from}, readers...) {
		keys = append(keys, &models.RecipientKey{MessageID: m.ID, UserID: u.ID, KeyID: u.CurrentKeyID, KEMBytes: []byte{1}, WrappedBytes: []byte{2}})
	}
	if _, _, err := s.InsertMessage(t.Context(), m, keys); err != nil {
		t.Fatal(err)
	}
	return m
}

// pageAll follows a paged list from the start with pages of n and returns
// the ids in order, failing if a page is longer than n or hasNextPage lies.
func pageAll[T any](t *testing.T, n int, page func(after *db.Cursor, n int) ([]T, bool, error), cursor func(T) db.Cursor, id func(T) string) []string {
	t.Helper()
	var ids []string
	var after *db.Cursor
	for range 1000 {
		items, more, err := page(after, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) > n || (more && len(items) != n) {
			t.Fatalf("page of %d (more %v) for first %d", len(items), more, n)
		}
		for _, it := range items {
			ids = append(ids, id(it))
		}
		if !more {
			return ids
		}
		// The cursor goes through its string form, as a client's does.
		c, err := db.DecodeCursor(cursor(items[len(items)-1]).String())
		if err != nil {
			t.Fatal(err)
		}
		after = &c
	}
	t.Fatal("paging does not end")
	return nil
}

func TestListPages(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		alice := seedUser(t, s, "alice")
		base := models.Now()
		at := func(i int) models.Time { return models.TimeFromMicros(base.Micros() + int64(i)) }

		// Seven rooms joined at distinct times, two of them at the same
		// instant so that the id breaks the tie.
		var wantRooms []string
		for i := range 7 {
			r := seedRoom(t, s, alice, at(min(i, 5)))
			wantRooms = append([]string{r.ID}, wantRooms...)
		}
		// Same joined_at: newer-first order among them is by id descending.
		if wantRooms[0] < wantRooms[1] {
			wantRooms[0], wantRooms[1] = wantRooms[1], wantRooms[0]
		}
		got := pageAll(t, 3, func(after *db.Cursor, n int) ([]db.JoinedRoom, bool, error) {
			return s.RoomsPage(ctx, alice.ID, after, n)
		}, db.JoinedRoom.Cursor, func(r db.JoinedRoom) string { return r.ID })
		if strings.Join(got, ",") != strings.Join(wantRooms, ",") {
			t.Errorf("rooms pages\n got %v\nwant %v", got, wantRooms)
		}

		room := seedRoom(t, s, alice, at(0))
		wantMembers := []string{alice.ID}
		for i := range 5 {
			u := seedUser(t, s, "m"+string(rune('a'+i)))
			if err := s.AddMemberIfRoom(ctx, &models.RoomMember{RoomID: room.ID, UserID: u.ID, Role: models.RoomRoleMember, JoinedAt: at(i + 1)}, 0, "full"); err != nil {
				t.Fatal(err)
			}
			wantMembers = append(wantMembers, u.ID)
		}
		got = pageAll(t, 2, func(after *db.Cursor, n int) ([]*models.RoomMember, bool, error) {
			return s.MembersPage(ctx, room.ID, after, n)
		}, db.MemberCursor, func(m *models.RoomMember) string { return m.UserID })
		if strings.Join(got, ",") != strings.Join(wantMembers, ",") {
			t.Errorf("member pages\n got %v\nwant %v", got, wantMembers)
		}

		var wantDocs []string
		for i := range 5 {
			d := &models.Document{ID: uuid.NewString(), Conversation: room.ID, RoomID: &room.ID, UploaderID: alice.ID,
				Name: "f", MimeType: "text/plain", NonceBytes: make([]byte, 12), CreatedAt: at(i)}
			if err := s.InsertDocument(ctx, d, nil); err != nil {
				t.Fatal(err)
			}
			wantDocs = append([]string{d.ID}, wantDocs...)
		}
		got = pageAll(t, 2, func(after *db.Cursor, n int) ([]*models.Document, bool, error) {
			return s.DocumentsPage(ctx, room.ID, after, n)
		}, db.DocumentCursor, func(d *models.Document) string { return d.ID })
		if strings.Join(got, ",") != strings.Join(wantDocs, ",") {
			t.Errorf("document pages\n got %v\nwant %v", got, wantDocs)
		}

		wantKeys := []string{alice.CurrentKeyID}
		for range 4 {
			k := &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: []byte{1}, Fingerprint: "f", CreatedAt: models.Now()}
			time.Sleep(time.Microsecond) // distinct creation times, the list's order
			if err := s.RotateKey(ctx, alice.ID, k); err != nil {
				t.Fatal(err)
			}
			wantKeys = append([]string{k.ID}, wantKeys...)
		}
		got = pageAll(t, 3, func(after *db.Cursor, n int) ([]*models.PublicKey, bool, error) {
			return s.KeysPage(ctx, alice.ID, after, n)
		}, db.KeyCursor, func(k *models.PublicKey) string { return k.ID })
		if strings.Join(got, ",") != strings.Join(wantKeys, ",") {
			t.Errorf("key pages\n got %v\nwant %v", got, wantKeys)
		}
	})
}

// The conversations list holds the user's rooms and every user it
// exchanged a direct message with (whoever wrote first), most recent
// activity first, with unread counts that leave out its own messages and
// what it marked read.
func TestConversationsPage(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		alice, bob, carol, dave := seedUser(t, s, "alice"), seedUser(t, s, "bob"), seedUser(t, s, "carol"), seedUser(t, s, "dave")
		base := models.Now().Micros()
		at := func(i int) models.Time { return models.TimeFromMicros(base + int64(i)*1000) }

		quiet := seedRoom(t, s, alice, at(1)) // no messages: active when joined
		busy := seedRoom(t, s, carol, at(0))
		if err := s.AddMemberIfRoom(ctx, &models.RoomMember{RoomID: busy.ID, UserID: alice.ID, Role: models.RoomRoleMember, JoinedAt: at(2)}, 0, "full"); err != nil {
			t.Fatal(err)
		}
		seedMessage(t, s, busy.ID, &busy.ID, carol, nil, at(3), alice)
		seedMessage(t, s, busy.ID, &busy.ID, carol, nil, at(4), alice)
		seedMessage(t, s, busy.ID, &busy.ID, alice, nil, at(5), carol) // alice's own: not unread for her
		withBob := db.DirectConversation(alice.ID, bob.ID)
		fromBob := seedMessage(t, s, withBob, nil, bob, alice, at(6), alice) // bob wrote first
		withDave := db.DirectConversation(alice.ID, dave.ID)
		lastToDave := seedMessage(t, s, withDave, nil, alice, dave, at(7), dave) // alice wrote, dave never answered
		// Someone else's conversation stays out of alice's list.
		seedMessage(t, s, db.DirectConversation(bob.ID, carol.ID), nil, bob, carol, at(8), carol)
		if _, err := s.MarkRead(ctx, alice.ID, []string{fromBob.ID}); err != nil {
			t.Fatal(err)
		}
		seedMessage(t, s, withBob, nil, bob, alice, at(9), alice)

		var all []*models.Conversation
		got := pageAll(t, 2, func(after *db.Cursor, n int) ([]*models.Conversation, bool, error) {
			cs, more, err := s.ConversationsPage(ctx, alice.ID, after, n)
			all = append(all, cs...)
			return cs, more, err
		}, db.ConversationCursor, func(c *models.Conversation) string { return c.Key })
		want := []string{withBob, withDave, busy.ID, quiet.ID}
		if strings.Join(got, ",") != strings.Join(want, ",") {
			t.Fatalf("conversations\n got %v\nwant %v", got, want)
		}
		byKey := map[string]*models.Conversation{}
		for _, c := range all {
			byKey[c.Key] = c
		}
		if c := byKey[withDave]; c.PeerID == nil || *c.PeerID != dave.ID || c.RoomID != nil || *c.LastMessageID != lastToDave.ID || c.LastActivityAt != at(7) {
			t.Errorf("direct conversation with dave: %+v", c)
		}
		if c := byKey[quiet.ID]; c.RoomID == nil || *c.RoomID != quiet.ID || c.LastMessageID != nil || c.LastActivityAt != at(1) {
			t.Errorf("quiet room: %+v", c)
		}
		unread, err := s.UnreadCounts(ctx, alice.ID, want)
		if err != nil {
			t.Fatal(err)
		}
		if unread[withBob] != 1 || unread[busy.ID] != 2 || unread[withDave] != 0 || unread[quiet.ID] != 0 {
			t.Errorf("unread counts %v", unread)
		}
	})
}

// The conversations list and the unread counts read indexes: the user's
// rooms, its direct partners, each conversation's newest message and its
// unread keys, never a whole table.
func TestConversationQueriesUseIndexes(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		id := uuid.NewString()
		for _, tc := range []struct {
			name, query string
			args        []any
			indexes     []string
		}{
			{"rooms page", `SELECT room_id FROM room_members WHERE user_id = ? AND (joined_at, room_id) < (?, ?) ORDER BY joined_at DESC, room_id DESC LIMIT 11`,
				[]any{id, 1, id}, []string{"room_members_user_joined_idx"}},
			{"unread counts", `SELECT m.conversation, COUNT(*) FROM message_keys k JOIN messages m ON m.id = k.message_id
			 WHERE k.user_id = ? AND k.read_at IS NULL AND m.sender_id <> ? AND m.conversation IN (?, ?) GROUP BY m.conversation`,
				[]any{id, id, "a", "b"}, []string{"message_keys_user_read_idx"}},
			{"newest message", `SELECT m.created_at FROM messages m WHERE m.conversation = ? ORDER BY m.created_at DESC, m.id DESC LIMIT 1`,
				[]any{id}, []string{"messages_conversation_idx"}},
			{"direct partners", `SELECT user_b FROM direct_partners WHERE user_a = ? UNION SELECT user_a FROM direct_partners WHERE user_b = ?`,
				[]any{id, id}, []string{"direct_partners", "direct_partners_b_idx"}},
		} {
			plan := explain(t, s, tc.query, tc.args...)
			for _, ix := range tc.indexes {
				// PostgreSQL, with sequential scans off, falls back to one
				// only when no index serves; on a near-empty table it may
				// pick another index that does.
				if !strings.Contains(plan, ix) && s.Dialect() != db.Postgres {
					t.Errorf("%s does not use %s:\n%s", tc.name, ix, plan)
				}
			}
			if strings.Contains(plan, "Seq Scan") || strings.Contains(plan, "SCAN m\n") || strings.Contains(plan, "SCAN messages\n") {
				t.Errorf("%s scans a table:\n%s", tc.name, plan)
			}
		}
	})
}

// Joins of one room at the same time respect its limit on both dialects:
// a two-person room gets one more member, a room one short of its cap one.
func TestConcurrentJoinsRespectTheLimit(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		owner := seedUser(t, s, "owner")
		var joiners []*models.User
		for i := range 12 {
			joiners = append(joiners, seedUser(t, s, "j"+uuid.NewString()[:8]+string(rune('a'+i))))
		}
		for _, tc := range []struct {
			name          string
			limit, before int
		}{
			{"direct room", 2, 1},
			{"room one short of its cap", 5, 4},
		} {
			t.Run(tc.name, func(t *testing.T) {
				room := seedRoom(t, s, owner, models.Now())
				for _, u := range joiners[:tc.before-1] {
					if err := s.AddMemberIfRoom(ctx, &models.RoomMember{RoomID: room.ID, UserID: u.ID, Role: models.RoomRoleMember, JoinedAt: models.Now()}, 0, ""); err != nil {
						t.Fatal(err)
					}
				}
				var wg sync.WaitGroup
				errs := make([]error, len(joiners)-(tc.before-1))
				start := make(chan struct{})
				for i, u := range joiners[tc.before-1:] {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[i] = s.AddMemberIfRoom(ctx, &models.RoomMember{RoomID: room.ID, UserID: u.ID, Role: models.RoomRoleMember, JoinedAt: models.Now()}, tc.limit, "room is full")
					}()
				}
				close(start)
				wg.Wait()
				joined := 0
				for _, err := range errs {
					switch {
					case err == nil:
						joined++
					case errors.Is(err, models.ErrConflict) && err.Error() == "room is full":
					default:
						t.Errorf("join: %v", err)
					}
				}
				n, err := s.DB().NewSelect().Model((*models.RoomMember)(nil)).Where("room_id = ?", room.ID).Count(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if joined != tc.limit-tc.before || int(n) != tc.limit {
					t.Fatalf("%d joined and the room holds %d members, want %d and %d", joined, n, tc.limit-tc.before, tc.limit)
				}
			})
		}
	})
}
