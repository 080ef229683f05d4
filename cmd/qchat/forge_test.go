package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// These helpers play a server that has been taken over, or anyone who can
// write to its database: they write rows straight into the SQLite files of
// a running qchat-server, past every check of the API.

func openData(t *testing.T, ctx context.Context, dataDir string) *db.Store {
	t.Helper()
	st, err := db.Open(ctx, "", dataDir, db.Options{})
	if err != nil {
		t.Fatalf("open the server's database: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return st
}

// forgedIDs are the ids of the messages forgeMessages wrote.
type forgedIDs struct{ copied, resigned, v1 string }

// forgeMessages writes three messages under the sender of the message
// genuineID, to the same conversation and recipients: a copy of it under a
// new id (its signature copied), text sealed to the recipients' keys and
// signed by an identity key that is not the sender's, and text sealed as
// version 1 (no signature at all).
func forgeMessages(t *testing.T, ctx context.Context, dataDir, genuineID, text string) forgedIDs {
	t.Helper()
	st := openData(t, ctx, dataDir)
	orig, err := st.MessageByID(ctx, genuineID)
	if err != nil {
		t.Fatal(err)
	}
	if orig.Version != 2 || orig.SignatureBytes == nil {
		t.Fatalf("the genuine message is version %d: the client did not sign it", orig.Version)
	}
	var keys []*models.RecipientKey
	if err := st.DB().NewSelect().Model(&keys).Where("message_id = ?", genuineID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	insert := func(m *models.Message, ks []*models.RecipientKey) {
		t.Helper()
		m.Conversation, m.RoomID, m.RecipientID, m.SenderID, m.CreatedAt = orig.Conversation, orig.RoomID, orig.RecipientID, orig.SenderID, models.Now()
		if m.ContentHash == nil {
			h := sha256.Sum256(m.CipherBytes)
			m.ContentHash = h[:]
		}
		for _, k := range ks {
			k.MessageID = m.ID
		}
		if _, _, err := st.InsertMessage(ctx, m, ks); err != nil {
			t.Fatalf("insert a forged message: %v", err)
		}
	}
	var ids forgedIDs

	// 1. A replay: the genuine envelope and signature under a new id.
	cp := *orig
	cp.ID = uuid.NewString()
	var cpKeys []*models.RecipientKey
	for _, k := range keys {
		c := *k
		c.ReadAt = nil
		cpKeys = append(cpKeys, &c)
	}
	insert(&cp, cpKeys)
	ids.copied = cp.ID

	// The recipients' keys, as the genuine message names them.
	var rs []pqcrypto.Recipient
	for _, k := range keys {
		pk := new(models.PublicKey)
		if err := st.DB().NewSelect().Model(pk).Where("id = ?", k.KeyID).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, pqcrypto.Recipient{UserID: k.UserID, KeyID: k.KeyID, Algorithm: pqcrypto.Algorithm(pk.Algorithm), PublicKey: pk.KeyBytes})
	}
	conv := orig.Conversation
	if orig.RoomID != nil {
		conv = *orig.RoomID
	}
	toRows := func(env *pqcrypto.Envelope) []*models.RecipientKey {
		var out []*models.RecipientKey
		for _, k := range env.Keys {
			out = append(out, &models.RecipientKey{UserID: k.UserID, KeyID: k.KeyID, KEMBytes: k.KEMCiphertext, WrappedBytes: k.WrappedKey})
		}
		return out
	}

	// 2. New text, signed by an identity key that is not the sender's.
	stranger, err := pqcrypto.GenerateIdentityKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ids.resigned = uuid.NewString()
	env, err := pqcrypto.SealSigned(nil, stranger, pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: ids.resigned, SenderID: orig.SenderID, ConversationID: conv},
		[]byte(text), rs)
	if err != nil {
		t.Fatal(err)
	}
	insert(&models.Message{ID: ids.resigned, CipherBytes: env.Ciphertext, NonceBytes: env.Nonce, Version: 2, SignatureBytes: env.Signature,
		KeyDigestBytes: bytes.Join(pqcrypto.KeyDigests(env.Keys), nil)}, toRows(&env.Envelope))

	// 3. New text labelled version 1, which has no signature to check.
	ids.v1 = uuid.NewString()
	v1, err := pqcrypto.Seal(nil, pqcrypto.Header{Kind: pqcrypto.KindMessage, ObjectID: ids.v1, SenderID: orig.SenderID, ConversationID: conv}, []byte(text), rs)
	if err != nil {
		t.Fatal(err)
	}
	insert(&models.Message{ID: ids.v1, CipherBytes: v1.Ciphertext, NonceBytes: v1.Nonce, Version: 1}, toRows(v1))
	return ids
}

// swapIdentity makes the server present a new identity key for username,
// with a new current KEM key certified by it (the next seq), as a server
// would that wants to read what others send to that user.
func swapIdentity(t *testing.T, ctx context.Context, dataDir, username string) {
	t.Helper()
	st := openData(t, ctx, dataDir)
	u, err := st.UserByUsername(ctx, username)
	if err != nil {
		t.Fatal(err)
	}
	cur := new(models.PublicKey)
	if err := st.DB().NewSelect().Model(cur).Where("id = ?", u.CurrentKeyID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	seq := 1
	if cur.Seq != nil {
		seq = *cur.Seq + 1
	}
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pqcrypto.CertifyKEMKey(ik, kp.Algorithm, seq, kp.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().NewUpdate().Model((*models.IdentityKey)(nil)).Set("current = ?", false).Where("user_id = ?", u.ID).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.DB().NewInsert().Model(&models.IdentityKey{ID: uuid.NewString(), UserID: u.ID, KeyBytes: ik.PublicKey(),
		Fingerprint: pqcrypto.Fingerprint(ik.PublicKey()), Current: true, CreatedAt: models.Now()}).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if err := st.RotateKey(ctx, u.ID, &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: kp.PublicKey,
		Fingerprint: pqcrypto.Fingerprint(kp.PublicKey), CreatedAt: models.Now(), SignatureBytes: cert, Seq: &seq}); err != nil {
		t.Fatal(err)
	}
}
