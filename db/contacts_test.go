package db_test

import (
	"maps"
	"slices"
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
