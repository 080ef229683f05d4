package server_test

import (
	"bytes"
	"crypto/rand"
	"net/http"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

const uploadMutation = `mutation($in: UploadDocumentInput!) { uploadDocument(input: $in) {
	id name mimeType size nonce downloadUrl uploader { id } room { id } myKey { userId keyId kemCiphertext wrappedKey } } }`

type docOut struct {
	ID, Name, MimeType, Nonce, DownloadURL string
	Size                                   int
	Uploader                               struct{ ID string }
	Room                                   *struct{ ID string }
	MyKey                                  *struct{ UserID, KeyID, KemCiphertext, WrappedKey string }
	Version                                int
	Signature                              *string
	KeyDigests                             []string
}

// openDocument verifies (against the uploader's own identity key) and opens
// a version 2 document as u.
func openDocument(t *testing.T, u *qchattest.User, d docOut, uploader *qchattest.User, conv string, ct []byte) []byte {
	t.Helper()
	dec := func(s string) []byte { b, _ := pqcrypto.DecodeB64(s); return b }
	if d.Version != 2 || d.Signature == nil || len(d.KeyDigests) == 0 {
		t.Fatalf("document %s: version %d, signature %v, %d key digests", d.ID, d.Version, d.Signature != nil, len(d.KeyDigests))
	}
	r := &pqcrypto.ReceivedEnvelope{Ciphertext: ct, Nonce: dec(d.Nonce), Signature: dec(*d.Signature),
		MyKey: pqcrypto.RecipientKey{UserID: d.MyKey.UserID, KeyID: d.MyKey.KeyID, KEMCiphertext: dec(d.MyKey.KemCiphertext), WrappedKey: dec(d.MyKey.WrappedKey)}}
	for _, k := range d.KeyDigests {
		r.KeyDigests = append(r.KeyDigests, dec(k))
	}
	pt, err := pqcrypto.OpenSigned(pqcrypto.SignedHeader{Kind: pqcrypto.KindDocument, ObjectID: d.ID, SenderID: uploader.ID, ConversationID: conv, Name: d.Name, MimeType: d.MimeType},
		r, uploader.IK.Public(), u.Key)
	if err != nil {
		t.Fatalf("open document as %s: %v", u.Name, err)
	}
	return pt
}

func TestDocuments(t *testing.T) {
	qchattest.ForEachDatabase(t, func(t *testing.T, store *db.Store) {
		srv := qchattest.NewServer(t, store)
		alice := srv.Register(t, "alice")
		bob := srv.Register(t, "bob")
		eve := srv.Register(t, "eve")
		room := createRoom(t, srv, alice, "files", bob)
		pdf := append([]byte("%PDF-1.7\n"), make([]byte, 300<<10)...)
		_, _ = rand.Read(pdf[9:])

		id := uuid.NewString()
		in, ct := qchattest.SealDocument(t, id, alice, room.ID, "", "report.pdf", "application/pdf", pdf, alice, bob)
		var up struct{ UploadDocument docOut }
		srv.Upload(t, alice.Token, uploadMutation, in, ct).Decode(t, &up)
		d := up.UploadDocument
		if d.ID != id || d.Size != len(ct) || d.MimeType != "application/pdf" || d.DownloadURL != "/documents/"+id || d.MyKey.UserID != alice.ID {
			t.Fatalf("uploaded %+v", d)
		}

		t.Run("members download the identical file", func(t *testing.T) {
			var got struct{ Document docOut }
			srv.MustDo(t, bob.Token, `query($id: ID!) { document(id: $id) { id name nonce size mimeType downloadUrl version signature keyDigests myKey { userId keyId kemCiphertext wrappedKey } } }`,
				map[string]any{"id": id}, &got)
			status, body, h := srv.Download(t, bob.Token, got.Document.DownloadURL)
			if status != http.StatusOK || h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Encoding") != "" {
				t.Fatalf("download status %d headers %v", status, h)
			}
			if !bytes.Equal(openDocument(t, bob, got.Document, alice, room.ID, body), pdf) {
				t.Fatal("bob's copy differs")
			}
			var docs struct {
				Room struct{ Documents []struct{ ID string } }
			}
			srv.MustDo(t, bob.Token, `query($r: ID!) { room(id: $r) { documents { id } } }`, map[string]any{"r": room.ID}, &docs)
			if len(docs.Room.Documents) != 1 || docs.Room.Documents[0].ID != id {
				t.Fatalf("room documents %+v", docs)
			}
		})

		t.Run("outsiders get nothing", func(t *testing.T) {
			if status, _, _ := srv.Download(t, eve.Token, "/documents/"+id); status != http.StatusNotFound {
				t.Fatalf("outsider download status %d", status)
			}
			if status, _, _ := srv.Download(t, "", "/documents/"+id); status != http.StatusUnauthorized {
				t.Fatalf("anonymous download status %d", status)
			}
			if r := srv.Do(t, eve.Token, `query($id: ID!) { document(id: $id) { id } }`, map[string]any{"id": id}); r.Code() != "NOT_FOUND" {
				t.Fatalf("outsider query %q", r.Code())
			}
		})

		t.Run("a message carries the attachment", func(t *testing.T) {
			msg := qchattest.SealAttached(t, uuid.NewString(), alice, room.ID, "", id, "see attached", alice, bob)
			var out struct {
				SendMessage struct{ Attachment struct{ ID, Name string } }
			}
			srv.MustDo(t, alice.Token, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { attachment { id name } } }`, map[string]any{"in": msg}, &out)
			if out.SendMessage.Attachment.ID != id || out.SendMessage.Attachment.Name != "report.pdf" {
				t.Fatalf("attachment %+v", out)
			}
			other := qchattest.Seal(t, uuid.NewString(), alice, "", eve.ID, "x", alice, eve)
			other["attachmentId"] = id
			if r := srv.Do(t, alice.Token, sendMutation, map[string]any{"in": other}); r.Code() != "BAD_USER_INPUT" {
				t.Fatalf("attaching another conversation's document: %q", r.Code())
			}
		})

		t.Run("rejected uploads store nothing", func(t *testing.T) {
			mk := func(mime string, data []byte, mut func(map[string]any)) (map[string]any, []byte) {
				in, ct := qchattest.SealDocument(t, uuid.NewString(), alice, room.ID, "", "f.bin", mime, data, alice, bob)
				if mut != nil {
					mut(in)
				}
				return in, ct
			}
			cases := []struct {
				name string
				in   map[string]any
				ct   []byte
			}{}
			add := func(name string, in map[string]any, ct []byte) {
				cases = append(cases, struct {
					name string
					in   map[string]any
					ct   []byte
				}{name, in, ct})
			}
			in1, ct1 := mk("application/x-msdownload", []byte("MZ"), nil)
			add("executable type", in1, ct1)
			in2, ct2 := mk("text/plain", []byte("hi"), func(in map[string]any) { in["nonce"] = "AAAA" })
			add("bad nonce", in2, ct2)
			in3, ct3 := mk("text/plain", []byte("hi"), func(in map[string]any) { in["keys"] = in["keys"].([]map[string]any)[:1] })
			add("missing recipient", in3, ct3)
			in4, ct4 := mk("text/plain", []byte("hi"), func(in map[string]any) { in["name"] = "../../etc/passwd" })
			add("path in name", in4, ct4)
			in5, _ := mk("text/plain", []byte("hi"), nil)
			add("oversize file", in5, make([]byte, 10<<20+1))
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					r := srv.Upload(t, alice.Token, uploadMutation, tc.in, tc.ct)
					if r.Code() != "BAD_USER_INPUT" && r.Status != http.StatusRequestEntityTooLarge {
						t.Fatalf("status %d code %q errors %+v", r.Status, r.Code(), r.Errors)
					}
				})
			}
			n, err := store.DB().NewSelect().Table("documents").Count(t.Context())
			if err != nil || n != 1 {
				t.Fatalf("%d documents stored (err %v), want 1", n, err)
			}
		})

		t.Run("only the uploader deletes", func(t *testing.T) {
			del := `mutation($id: ID!) { deleteDocument(id: $id) }`
			if r := srv.Do(t, bob.Token, del, map[string]any{"id": id}); r.Code() != "FORBIDDEN" {
				t.Fatalf("bob deleting: %q", r.Code())
			}
			srv.MustDo(t, alice.Token, del, map[string]any{"id": id}, nil)
			if status, _, _ := srv.Download(t, bob.Token, "/documents/"+id); status != http.StatusNotFound {
				t.Fatalf("deleted document download status %d", status)
			}
		})
	})
}
