package db_test

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
)

// SharingConversation answers for a whole list what SharesConversation
// answers for one pair, on both dialects.
func TestSharingConversation(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		me, mate, pen, penTo, stranger := seedUser(t, s, "me"), seedUser(t, s, "mate"), seedUser(t, s, "pen"), seedUser(t, s, "pento"), seedUser(t, s, "stranger")
		room := &models.Room{ID: uuid.NewString(), Name: "r", IsGroup: true, Code: "ABCDEFGH", OwnerID: me.ID, CreatedAt: models.Now()}
		if err := s.CreateRoom(ctx, room, []*models.RoomMember{
			{RoomID: room.ID, UserID: me.ID, Role: models.RoomRoleOwner, JoinedAt: models.Now()},
			{RoomID: room.ID, UserID: mate.ID, Role: models.RoomRoleMember, JoinedAt: models.Now()},
		}); err != nil {
			t.Fatal(err)
		}
		// A direct conversation exists once a message went either way.
		dm := func(from, to *models.User) {
			id, to2 := uuid.NewString(), to.ID
			m := &models.Message{ID: id, Conversation: db.DirectConversation(from.ID, to.ID), SenderID: from.ID, RecipientID: &to2,
				CipherBytes: []byte("ct"), NonceBytes: make([]byte, 12), ContentHash: []byte(id), CreatedAt: models.Now()}
			if _, _, err := s.InsertMessage(ctx, m, []*models.RecipientKey{{MessageID: id, UserID: from.ID, KeyID: from.CurrentKeyID, KEMBytes: []byte{1}, WrappedBytes: []byte{2}}}); err != nil {
				t.Fatal(err)
			}
		}
		dm(pen, me)
		dm(me, penTo)
		missing := uuid.NewString()
		for _, tc := range []struct {
			name   string
			others []string
			want   []string
		}{
			{"nobody", nil, nil},
			{"self", []string{me.ID}, []string{me.ID}},
			{"room mate", []string{mate.ID}, []string{mate.ID}},
			{"wrote to me", []string{pen.ID}, []string{pen.ID}},
			{"I wrote to", []string{penTo.ID}, []string{penTo.ID}},
			{"stranger and unknown id", []string{stranger.ID, missing}, nil},
			{"a mixed list with repeats", []string{stranger.ID, mate.ID, pen.ID, me.ID, mate.ID, penTo.ID, missing}, []string{me.ID, mate.ID, pen.ID, penTo.ID}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := s.SharingConversation(ctx, me.ID, tc.others)
				if err != nil {
					t.Fatal(err)
				}
				var ids []string
				for id, ok := range got {
					if ok {
						ids = append(ids, id)
					}
				}
				slices.Sort(ids)
				want := slices.Sorted(slices.Values(tc.want))
				if !slices.Equal(ids, want) {
					t.Fatalf("shared %v, want %v (map %v)", ids, want, slices.Collect(maps.Keys(got)))
				}
				for _, o := range tc.others {
					one, err := s.SharesConversation(ctx, me.ID, o)
					if err != nil || one != got[o] {
						t.Fatalf("SharesConversation(%s) = %v, %v; the list says %v", o, one, err, got[o])
					}
				}
			})
		}
	})
}

// The direct-partners migration finds every pair that already exchanged a
// direct message, whoever wrote, once per pair; the contacts and the
// conversations list read it; new messages add their pair once; rolling
// back brings the message indexes back, and a user's deletion takes its
// pairs along.
func TestDirectPartnersMigration(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		migrateTo(t, s, "00006")
		alice, bob, carol, dave := seedUser(t, s, "alice"), seedUser(t, s, "bob"), seedUser(t, s, "carol"), seedUser(t, s, "dave")
		room := seedRoom(t, s, dave, models.Now())
		at := models.Now().Micros()
		rawDM := func(from, to *models.User, room *string) {
			t.Helper()
			at++
			conv, rcpt := db.DirectConversation(from.ID, to.ID), &to.ID
			if room != nil {
				conv, rcpt = *room, nil
			}
			if _, err := s.DB().NewRaw(`INSERT INTO messages (id, conversation, room_id, sender_id, recipient_id, ciphertext, nonce, content_hash, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				uuid.NewString(), conv, room, from.ID, rcpt, []byte("ct"), make([]byte, 12), []byte{1}, at).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		rawDM(alice, bob, nil)
		rawDM(bob, alice, nil)
		rawDM(alice, bob, nil)
		rawDM(carol, alice, nil)
		rawDM(dave, dave, &room.ID) // a room message has no pair
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}

		pairs := func() []string {
			t.Helper()
			var rows []struct {
				A string `bun:"user_a"`
				B string `bun:"user_b"`
			}
			if err := s.DB().NewRaw(`SELECT user_a, user_b FROM direct_partners ORDER BY user_a, user_b`).Scan(ctx, &rows); err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, r := range rows {
				out = append(out, db.DirectConversation(r.A, r.B))
				if r.B < r.A {
					t.Errorf("pair out of order: %s, %s", r.A, r.B)
				}
			}
			slices.Sort(out)
			return out
		}
		sorted := func(convs ...string) []string { slices.Sort(convs); return convs }
		aliceBob, aliceCarol, bobCarol := db.DirectConversation(alice.ID, bob.ID), db.DirectConversation(alice.ID, carol.ID), db.DirectConversation(bob.ID, carol.ID)
		if got, want := pairs(), sorted(aliceBob, aliceCarol); !slices.Equal(got, want) {
			t.Fatalf("after migrating: pairs %v, want %v", got, want)
		}
		contacts, err := s.Contacts(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := slices.Sorted(slices.Values(contacts)), slices.Sorted(slices.Values([]string{bob.ID, carol.ID})); !slices.Equal(got, want) {
			t.Errorf("alice's contacts %v, want %v", got, want)
		}
		convs, _, err := s.ConversationsPage(ctx, alice.ID, nil, 10)
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, c := range convs {
			keys = append(keys, c.Key)
		}
		if want := []string{aliceCarol, aliceBob}; !slices.Equal(keys, want) {
			t.Errorf("alice's conversations %v, want %v", keys, want)
		}

		// New messages add their pair once, whichever way and however often.
		dm := func(from, to *models.User) {
			t.Helper()
			id, to2 := uuid.NewString(), to.ID
			m := &models.Message{ID: id, Conversation: db.DirectConversation(from.ID, to.ID), SenderID: from.ID, RecipientID: &to2,
				CipherBytes: []byte("ct"), NonceBytes: make([]byte, 12), ContentHash: []byte(id), CreatedAt: models.Now()}
			if _, _, err := s.InsertMessage(ctx, m, []*models.RecipientKey{{MessageID: id, UserID: from.ID, KeyID: from.CurrentKeyID, KEMBytes: []byte{1}, WrappedBytes: []byte{2}}}); err != nil {
				t.Fatal(err)
			}
		}
		dm(carol, bob)
		dm(bob, carol)
		dm(alice, bob)
		if got, want := pairs(), sorted(aliceBob, aliceCarol, bobCarol); !slices.Equal(got, want) {
			t.Fatalf("after new messages: pairs %v, want %v", got, want)
		}

		// Rolled back, the message indexes are back and the table gone;
		// applied again, the pairs come back from the messages.
		if _, err := s.Migrator().Rollback(ctx); err != nil {
			t.Fatalf("rollback: %v", err)
		}
		plan := explain(t, s, `SELECT sender_id FROM messages WHERE recipient_id = ? UNION SELECT recipient_id FROM messages WHERE sender_id = ? AND recipient_id IS NOT NULL`, alice.ID, alice.ID)
		for _, ix := range []string{"messages_recipient_idx", "messages_sender_idx"} {
			if !strings.Contains(plan, ix) && (s.Dialect() == db.SQLite || strings.Contains(plan, "Seq Scan")) {
				t.Errorf("after rolling back, %s is not used:\n%s", ix, plan)
			}
		}
		if _, err := s.DB().NewRaw(`SELECT 1 FROM direct_partners`).Exec(ctx); err == nil {
			t.Error("after rolling back, direct_partners is still there")
		}
		if err := s.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := pairs(), sorted(aliceBob, aliceCarol, bobCarol); !slices.Equal(got, want) {
			t.Fatalf("after migrating again: pairs %v, want %v", got, want)
		}

		// A user's deletion takes its pairs with it.
		if _, err := s.DB().NewRaw(`DELETE FROM users WHERE id = ?`, carol.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		if got, want := pairs(), []string{aliceBob}; !slices.Equal(got, want) {
			t.Fatalf("after carol's deletion: pairs %v, want %v", got, want)
		}
	})
}
