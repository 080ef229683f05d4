package db_test

import (
	"reflect"
	"testing"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
)

// History and RecipientKeys scan their rows column by column; what they
// return must be what bun's scan of the same rows into the models returns,
// NULLs included (direct messages signed and not, deleted, with an
// attachment id, a key read and one not), and the reader's keys that History
// joins must be those RecipientKeys finds.
func TestHistoryScansAsBunDoes(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, s *db.Store) {
		ctx := t.Context()
		a, b := seedUser(t, s, "scan_a"), seedUser(t, s, "scan_b")
		conv := db.DirectConversation(a.ID, b.ID)
		att := uuid.NewString()
		var ids []string
		for i := range 4 {
			m := &models.Message{ID: uuid.NewString(), Conversation: conv, SenderID: a.ID, RecipientID: &b.ID,
				CipherBytes: []byte{byte(i), 1, 2}, NonceBytes: make([]byte, 12), ContentHash: []byte{byte(i)}, CreatedAt: models.Now()}
			switch i {
			case 1:
				m.Version, m.SignatureBytes, m.KeyDigestBytes = 2, []byte("signature"), make([]byte, 64)
			case 2:
				m.AttachmentID = &att
			}
			keys := []*models.RecipientKey{
				{MessageID: m.ID, UserID: a.ID, KeyID: a.CurrentKeyID, KEMBytes: []byte{1, byte(i)}, WrappedBytes: []byte{2}},
				{MessageID: m.ID, UserID: b.ID, KeyID: b.CurrentKeyID, KEMBytes: []byte{3, byte(i)}, WrappedBytes: []byte{4}},
			}
			if _, _, err := s.InsertMessage(ctx, m, keys); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, m.ID)
		}
		if _, err := s.DeleteMessage(ctx, ids[3]); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DB().NewUpdate().Model((*models.RecipientKey)(nil)).Set("read_at = ?", models.Now()).
			Where("message_id = ? AND user_id = ?", ids[0], b.ID).Exec(ctx); err != nil {
			t.Fatal(err)
		}

		got, more, err := s.History(ctx, conv, "", nil, 10)
		if err != nil || more || len(got) != 4 {
			t.Fatalf("history: %d messages, more %v, err %v", len(got), more, err)
		}
		var want []*models.Message
		if err := s.DB().NewSelect().Model(&want).Where("conversation = ?", conv).OrderExpr("created_at DESC, id DESC").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			for i := range want {
				t.Errorf("message %d:\n got  %+v\n want %+v", i, got[i], want[i])
			}
		}

		pairs := []db.MessageUser{}
		for _, id := range ids {
			pairs = append(pairs, db.MessageUser{MessageID: id, UserID: b.ID})
		}
		keys, err := s.RecipientKeys(ctx, pairs)
		if err != nil {
			t.Fatal(err)
		}
		var wantKeys []*models.RecipientKey
		if err := s.DB().NewSelect().Model(&wantKeys).Where("message_id IN (?) AND user_id = ?", bun.List(ids), b.ID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		byID := map[string]*models.RecipientKey{}
		for _, k := range keys {
			byID[k.MessageID] = k
		}
		if len(keys) != len(wantKeys) {
			t.Fatalf("%d keys, want %d", len(keys), len(wantKeys))
		}
		read := 0
		for _, w := range wantKeys {
			if !reflect.DeepEqual(byID[w.MessageID], w) {
				t.Errorf("key of %s:\n got  %+v\n want %+v", w.MessageID, byID[w.MessageID], w)
			}
			if w.ReadAt != nil {
				read++
			}
		}
		if read != 1 {
			t.Errorf("%d keys read, want 1", read)
		}
		// With a reader: the same messages, each with that reader's key, or
		// none (an outsider).
		for _, reader := range []string{b.ID, uuid.NewString()} {
			withKeys, more, err := s.History(ctx, conv, reader, nil, 10)
			if err != nil || more || len(withKeys) != len(want) {
				t.Fatalf("history for %s: %d messages, more %v, err %v", reader, len(withKeys), more, err)
			}
			for i, m := range withKeys {
				var wantKeys []*models.RecipientKey
				if k := byID[m.ID]; k != nil && reader == b.ID {
					wantKeys = []*models.RecipientKey{k}
				}
				if len(m.Keys) != len(wantKeys) || (len(wantKeys) == 1 && !reflect.DeepEqual(m.Keys[0], wantKeys[0])) {
					t.Errorf("message %d, reader %s: keys %+v, want %+v", i, reader, m.Keys, wantKeys)
				}
				if m.Keys == nil {
					t.Errorf("message %d: nil Keys, want empty", i)
				}
				c := *m
				c.Keys = nil
				if !reflect.DeepEqual(&c, want[i]) {
					t.Errorf("message %d, reader %s:\n got  %+v\n want %+v", i, reader, &c, want[i])
				}
			}
		}
		if ks, err := s.RecipientKeys(ctx, nil); ks != nil || err != nil {
			t.Errorf("no pairs: %v, %v", ks, err)
		}
	})
}
