package server_test

import (
	"bytes"
	"slices"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

// Version 2 content through the API: the server verifies every signature
// against the sender's current identity key before storing anything, and
// returns the signature and the signed leaves byte for byte.
func TestSignedMessages(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice, bob, carol := srv.Register(t, "alice"), srv.Register(t, "bob"), srv.Register(t, "carol")
		room := createRoom(t, srv, alice, "signed", bob, carol)

		t.Run("a signed message reads as version 2 with its leaves in order", func(t *testing.T) {
			in := qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "signed hello", alice, bob, carol)
			m := send(t, srv, alice, in)
			if m.Version != 2 || m.Signature == nil || *m.Signature != in["signature"] {
				t.Fatalf("sent %+v", m)
			}
			var keys []pqcrypto.RecipientKey
			for _, k := range in["keys"].([]map[string]any) {
				dec := func(f string) []byte { b, _ := pqcrypto.DecodeB64(k[f].(string)); return b }
				keys = append(keys, pqcrypto.RecipientKey{UserID: k["userId"].(string), KeyID: k["keyId"].(string), KEMCiphertext: dec("kemCiphertext"), WrappedKey: dec("wrappedKey")})
			}
			var want []string
			for _, d := range pqcrypto.KeyDigests(keys) {
				want = append(want, pqcrypto.EncodeB64(d))
			}
			if !slices.Equal(m.KeyDigests, want) {
				t.Fatalf("keyDigests %v, want %v", m.KeyDigests, want)
			}
			var got struct{ Message qchattest.WireMessage }
			srv.MustDo(t, carol.Token, `query($id: ID!) { message(id: $id) { `+qchattest.MessageFields+` } }`, map[string]any{"id": m.ID}, &got)
			if text := qchattest.Open(t, carol, got.Message); text != "signed hello" {
				t.Fatalf("carol reads %q", text)
			}
		})

		t.Run("signatures that do not verify are refused", func(t *testing.T) {
			other := qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "another", alice, bob, carol)
			byBob := qchattest.Seal(t, uuid.NewString(), bob, room.ID, "", "bob's", alice, bob, carol)
			cases := []struct {
				name string
				mod  func(in map[string]any)
			}{
				{"copied from another message", func(in map[string]any) { in["signature"] = other["signature"] }},
				{"made by another user", func(in map[string]any) { in["signature"] = byBob["signature"] }},
				{"a flipped bit", func(in map[string]any) {
					sig, _ := pqcrypto.DecodeB64(in["signature"].(string))
					sig[100] ^= 1
					in["signature"] = pqcrypto.EncodeB64(sig)
				}},
				{"over another conversation", func(in map[string]any) {
					moved := qchattest.Seal(t, in["id"].(string), alice, "", bob.ID, "signed hello", alice, bob)
					in["signature"] = moved["signature"]
				}},
				{"short", func(in map[string]any) { in["signature"] = pqcrypto.EncodeB64(make([]byte, 100)) }},
				{"not base64", func(in map[string]any) { in["signature"] = "!!" }},
				{"claiming an attachment it does not sign", func(in map[string]any) { in["attachmentId"] = uuid.NewString() }},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					in := qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "signed hello", alice, bob, carol)
					tc.mod(in)
					r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": in})
					if tc.name == "claiming an attachment it does not sign" {
						// The attachment check comes first: no such document.
						if r.Code() != "BAD_USER_INPUT" {
							t.Fatalf("answered %+v", r.Errors)
						}
						return
					}
					wantFieldError(t, r, "signature")
					if n := countMessages(t, srv, bob, room.ID); n != 1 {
						t.Fatalf("the room holds %d messages after a refused send", n)
					}
				})
			}
		})

		t.Run("a retry must carry the same signature", func(t *testing.T) {
			id := uuid.NewString()
			in := qchattest.Seal(t, id, alice, "", bob.ID, "once", alice, bob)
			first := send(t, srv, alice, in)
			if again := send(t, srv, alice, in); again.ID != first.ID || *again.Signature != *first.Signature {
				t.Fatalf("retry answered %+v", again)
			}
			// ML-DSA signing is randomised: signing the same envelope again
			// gives another signature, which is not the same message.
			h := pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: alice.ID, ConversationID: bob.ID}
			env, err := pqcrypto.ValidateWire(pqcrypto.WireEnvelope{Ciphertext: in["ciphertext"].(string), Nonce: in["nonce"].(string), Keys: wireKeysOf(in)},
				func(string) (pqcrypto.Algorithm, bool) { return pqcrypto.MLKEM768, true })
			if err != nil {
				t.Fatal(err)
			}
			sig, err := pqcrypto.SignEnvelope(alice.IK, h, env)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(sig, mustB64(t, in["signature"].(string))) {
				t.Skip("the signer was deterministic")
			}
			in["signature"] = pqcrypto.EncodeB64(sig)
			if r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": in}); r.Code() != "CONFLICT" {
				t.Fatalf("a resend with another signature answered %+v", r.Errors)
			}
		})

		t.Run("an account without an identity key cannot sign", func(t *testing.T) {
			old := srv.RegisterV1(t, "oldie")
			in := qchattest.Seal(t, uuid.NewString(), old, "", alice.ID, "hi", old, alice)
			in["signature"] = qchattest.Seal(t, in["id"].(string), alice, "", bob.ID, "x", alice, bob)["signature"]
			r := srv.Do(t, old.Token, sendMutation, map[string]any{"in": in})
			wantFieldError(t, r, "signature")
		})

		t.Run("after an identity change only the new key signs", func(t *testing.T) {
			dan := srv.Register(t, "dan")
			oldIK := dan.IK
			k := qchattest.NewV2Keys(t)
			var out struct {
				SetIdentityKey struct{ PublicKey struct{ ID string } }
			}
			srv.MustDo(t, dan.Token, `mutation($ik: String!, $pk: String!, $sig: String!, $pw: String) { setIdentityKey(identityKey: $ik, publicKey: $pk, seq: 2, signature: $sig, password: $pw) { publicKey { id } } }`,
				map[string]any{"ik": k.Identity(), "pk": k.Pub(), "sig": k.Cert(t, 2), "pw": dan.Password}, &out)
			dan.IK, dan.Key, dan.KeyID, dan.Seq = k.IK, k.KP, out.SetIdentityKey.PublicKey.ID, 2
			// Sealed to the current keys, signed with dan's replaced identity.
			stale := *dan
			stale.IK = oldIK
			in := qchattest.Seal(t, uuid.NewString(), &stale, "", alice.ID, "old me", &stale, alice)
			wantFieldError(t, srv.Do(t, dan.Token, sendMutation, map[string]any{"in": in}), "signature")
			send(t, srv, dan, qchattest.Seal(t, uuid.NewString(), dan, "", alice.ID, "new me", dan, alice))
		})

		t.Run("a deleted message keeps its version, not its signature", func(t *testing.T) {
			m := send(t, srv, alice, qchattest.Seal(t, uuid.NewString(), alice, room.ID, "", "bye", alice, bob, carol))
			srv.MustDo(t, alice.Token, `mutation($id: ID!) { deleteMessage(id: $id) }`, map[string]any{"id": m.ID}, nil)
			var got struct{ Message qchattest.WireMessage }
			srv.MustDo(t, bob.Token, `query($id: ID!) { message(id: $id) { `+qchattest.MessageFields+` } }`, map[string]any{"id": m.ID}, &got)
			if !got.Message.Deleted || got.Message.Version != 2 || got.Message.Signature != nil || got.Message.KeyDigests != nil {
				t.Fatalf("tombstone %+v", got.Message)
			}
		})
	})
}

// A signed document keeps its name and MIME type exactly as uploaded (the
// signature covers them) and its attachment id on the messages that carry it.
func TestSignedDocuments(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
		id := uuid.NewString()
		in, ct := qchattest.SealDocument(t, id, alice, "", bob.ID, " Scan 1.PDF", "Application/PDF", []byte("%PDF-1.7 ..."), alice, bob)
		var up struct{ UploadDocument docOut }
		srv.Upload(t, alice.Token, `mutation($in: UploadDocumentInput!) { uploadDocument(input: $in) { id name mimeType version signature keyDigests } }`, in, ct).Decode(t, &up)
		if d := up.UploadDocument; d.Name != " Scan 1.PDF" || d.MimeType != "Application/PDF" || d.Version != 2 || d.Signature == nil || len(d.KeyDigests) != 2 {
			t.Fatalf("uploaded %+v", d)
		}
		var got struct{ Document docOut }
		srv.MustDo(t, bob.Token, `query($id: ID!) { document(id: $id) { id name nonce size mimeType downloadUrl version signature keyDigests myKey { userId keyId kemCiphertext wrappedKey } } }`,
			map[string]any{"id": id}, &got)
		_, body, _ := srv.Download(t, bob.Token, got.Document.DownloadURL)
		if pt := openDocument(t, bob, got.Document, alice, bob.ID, body); string(pt) != "%PDF-1.7 ..." {
			t.Fatalf("bob opens %q", pt)
		}

		bad, ct2 := qchattest.SealDocument(t, uuid.NewString(), alice, "", bob.ID, "a.txt", "text/plain", []byte("x"), alice, bob)
		bad["name"] = "b.txt" // not what was signed
		wantFieldError(t, srv.Upload(t, alice.Token, uploadMutation, bad, ct2), "signature")

		// The attachment id is signed, and kept when the document goes.
		msg := send(t, srv, alice, qchattest.SealAttached(t, uuid.NewString(), alice, "", bob.ID, id, "see attached", alice, bob))
		srv.MustDo(t, alice.Token, `mutation($id: ID!) { deleteDocument(id: $id) }`, map[string]any{"id": id}, nil)
		var after struct{ Message qchattest.WireMessage }
		srv.MustDo(t, bob.Token, `query($id: ID!) { message(id: $id) { `+qchattest.MessageFields+` } }`, map[string]any{"id": msg.ID}, &after)
		if after.Message.AttachmentID == nil || *after.Message.AttachmentID != id {
			t.Fatalf("attachmentId after the document's deletion: %v", after.Message.AttachmentID)
		}
		if text := qchattest.Open(t, bob, after.Message); text != "see attached" {
			t.Fatalf("bob reads %q", text)
		}
	})
}

func wireKeysOf(in map[string]any) []pqcrypto.WireRecipientKey {
	var out []pqcrypto.WireRecipientKey
	for _, k := range in["keys"].([]map[string]any) {
		out = append(out, pqcrypto.WireRecipientKey{UserID: k["userId"].(string), KeyID: k["keyId"].(string), KEMCiphertext: k["kemCiphertext"].(string), WrappedKey: k["wrappedKey"].(string)})
	}
	return out
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := pqcrypto.DecodeB64(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countMessages(t *testing.T, srv *qchattest.Server, u *qchattest.User, roomID string) int {
	t.Helper()
	return len(roomPage(t, srv, u, roomID, 20, nil).Edges)
}
