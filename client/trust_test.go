package client_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// signedPerson is a person whose identity key the test keeps, to play a
// server that forges keys in that person's name.
type signedPerson struct {
	*person
	IK *pqcrypto.IdentityKey
}

func registerSigned(t *testing.T, srv *qchattest.Server, name string) *signedPerson {
	t.Helper()
	c, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		t.Fatal(err)
	}
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := c.Register(context.Background(), name, "password-"+name, ik, kp)
	if err != nil {
		t.Fatalf("register %s: %v", name, err)
	}
	if s.User.IdentityKey == nil || s.User.PublicKey.Seq == nil || *s.User.PublicKey.Seq != 1 || s.User.PublicKey.Signature == nil {
		t.Fatalf("register %s: identity %+v, key %+v", name, s.User.IdentityKey, s.User.PublicKey)
	}
	return &signedPerson{person: &person{Client: c, Self: &s.User, Keyring: client.Keyring{s.User.PublicKey.Id: kp}}, IK: ik}
}

// serverKey makes the server present pub as userID's current KEM key, with
// cert and seq, as a dishonest server (or anyone who can write to its
// database) would.
func serverKey(t *testing.T, srv *qchattest.Server, userID string, alg pqcrypto.Algorithm, pub, cert []byte, seq int) {
	t.Helper()
	k := &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithm(alg), KeyBytes: pub, Fingerprint: pqcrypto.Fingerprint(pub),
		CreatedAt: models.Now(), SignatureBytes: cert, Seq: &seq}
	if err := srv.Store.RotateKey(t.Context(), userID, k); err != nil {
		t.Fatal(err)
	}
}

// serverIdentity makes the server present ik as userID's identity key.
func serverIdentity(t *testing.T, srv *qchattest.Server, userID string, ik *pqcrypto.IdentityKey) {
	t.Helper()
	db := srv.Store.DB()
	if _, err := db.NewUpdate().Model((*models.IdentityKey)(nil)).Set("current = ?", false).Where("user_id = ?", userID).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
	k := &models.IdentityKey{ID: uuid.NewString(), UserID: userID, KeyBytes: ik.PublicKey(), Fingerprint: pqcrypto.Fingerprint(ik.PublicKey()),
		Current: true, CreatedAt: models.Now()}
	if _, err := db.NewInsert().Model(k).Exec(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func certify(t *testing.T, ik *pqcrypto.IdentityKey, kp *pqcrypto.KeyPair, seq int) []byte {
	t.Helper()
	cert, err := pqcrypto.CertifyKEMKey(ik, kp.Algorithm, seq, kp.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func newKeyPair(t *testing.T) *pqcrypto.KeyPair {
	t.Helper()
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		t.Fatal(err)
	}
	return kp
}

// The client checks every recipient's key against its pins before sealing:
// each way a server can present a key it should not is refused, naming the
// user, and nothing is sent.
func TestSealingChecksPinnedKeys(t *testing.T) {
	ctx := context.Background()
	bobKP := func(p *signedPerson) *pqcrypto.KeyPair { return p.Keyring[p.Self.PublicKey.Id] }
	for _, tc := range []struct {
		name string
		// forge makes the server present a bad key for bob, after alice
		// has seen his first (seq 1) key and, after rotate, his seq 2 one.
		forge  func(t *testing.T, srv *qchattest.Server, bob *signedPerson, first *pqcrypto.KeyPair)
		rotate bool
		want   string // in the *KeyRejectedError's reason; "" for *IdentityChangedError
	}{
		{"another identity key", func(t *testing.T, srv *qchattest.Server, bob *signedPerson, _ *pqcrypto.KeyPair) {
			ik, _ := pqcrypto.GenerateIdentityKey(nil)
			serverIdentity(t, srv, bob.Self.Id, ik)
		}, false, ""},
		{"a key certified by another identity key", func(t *testing.T, srv *qchattest.Server, bob *signedPerson, _ *pqcrypto.KeyPair) {
			ik, _ := pqcrypto.GenerateIdentityKey(nil)
			kp := newKeyPair(t)
			serverKey(t, srv, bob.Self.Id, kp.Algorithm, kp.PublicKey, certify(t, ik, kp, 2), 2)
		}, false, client.ReasonBadCertificate},
		{"a key without a certificate", func(t *testing.T, srv *qchattest.Server, bob *signedPerson, _ *pqcrypto.KeyPair) {
			kp := newKeyPair(t)
			k := &models.PublicKey{ID: uuid.NewString(), Algorithm: models.KeyAlgorithmMlKem768, KeyBytes: kp.PublicKey, Fingerprint: pqcrypto.Fingerprint(kp.PublicKey), CreatedAt: models.Now()}
			if err := srv.Store.RotateKey(t.Context(), bob.Self.Id, k); err != nil {
				t.Fatal(err)
			}
		}, false, client.ReasonNoCertificate},
		{"a certificate for another seq", func(t *testing.T, srv *qchattest.Server, bob *signedPerson, _ *pqcrypto.KeyPair) {
			kp := newKeyPair(t)
			serverKey(t, srv, bob.Self.Id, kp.Algorithm, kp.PublicKey, certify(t, bob.IK, kp, 3), 2)
		}, false, client.ReasonBadCertificate},
		{"an old key presented again", func(t *testing.T, srv *qchattest.Server, bob *signedPerson, first *pqcrypto.KeyPair) {
			serverKey(t, srv, bob.Self.Id, first.Algorithm, first.PublicKey, certify(t, bob.IK, first, 1), 1)
		}, true, "older key"},
		{"another key with a seq already seen", func(t *testing.T, srv *qchattest.Server, bob *signedPerson, _ *pqcrypto.KeyPair) {
			kp := newKeyPair(t)
			serverKey(t, srv, bob.Self.Id, kp.Algorithm, kp.PublicKey, certify(t, bob.IK, kp, 2), 2)
		}, true, "same seq"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t)
			alice, bob := registerSigned(t, srv, "alice"), registerSigned(t, srv, "bob")
			first := bobKP(bob)
			if _, err := alice.SendText(ctx, client.WithUser(bob.Self.Id), "first"); err != nil {
				t.Fatalf("first send: %v", err)
			}
			if tc.rotate {
				if _, err := bob.RotateKey(ctx, newKeyPair(t)); err != nil {
					t.Fatalf("rotate: %v", err)
				}
				if _, err := alice.SendText(ctx, client.WithUser(bob.Self.Id), "after the rotation"); err != nil {
					t.Fatalf("send after a genuine rotation: %v", err)
				}
			}
			tc.forge(t, srv, bob, first)
			_, err := alice.SendText(ctx, client.WithUser(bob.Self.Id), "must not be sent")
			var changed *client.IdentityChangedError
			var rejected *client.KeyRejectedError
			switch {
			case tc.want == "":
				if !errors.As(err, &changed) || changed.UserID != bob.Self.Id || changed.Username != "bob" {
					t.Fatalf("send: %v, want an *IdentityChangedError naming bob", err)
				}
			case !errors.As(err, &rejected) || rejected.UserID != bob.Self.Id || !strings.Contains(rejected.Reason, tc.want):
				t.Fatalf("send: %v, want a *KeyRejectedError naming bob with %q", err, tc.want)
			}
			p, err := bob.MessagePage(ctx, client.WithUser(alice.Self.Id), 0, "")
			if err != nil {
				t.Fatal(err)
			}
			want := 1
			if tc.rotate {
				want = 2
			}
			if len(p.Edges) != want {
				t.Errorf("%d messages stored, want %d: the refused one must not be sent", len(p.Edges), want)
			}
		})
	}
}

// A changed identity key blocks sending until it is accepted; accepting
// clears the verified mark, and both users compute the same safety number.
func TestAcceptIdentityAndSafetyNumbers(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	alice, bob := registerSigned(t, srv, "alice"), registerSigned(t, srv, "bob")
	aliceSees, _ := alice.User(ctx, bob.Self.Id)
	bobSees, _ := bob.User(ctx, alice.Self.Id)
	n1, err := alice.SafetyNumber(ctx, aliceSees)
	if err != nil {
		t.Fatal(err)
	}
	n2, err := bob.SafetyNumber(ctx, bobSees)
	if err != nil {
		t.Fatal(err)
	}
	if n1 != n2 || len(n1) != 60 {
		t.Fatalf("safety numbers %q and %q, want the same 60 digits", n1, n2)
	}
	if err := alice.MarkVerified(aliceSees); err != nil {
		t.Fatal(err)
	}
	if pin, _ := alice.Pins().Pin(bob.Self.Id); pin == nil || !pin.Verified {
		t.Fatalf("pin after MarkVerified: %+v", pin)
	}

	// Bob loses everything and resets his identity: alice is refused until
	// she accepts, and then seals to his new key.
	reset, err := client.New(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reset.Login(ctx, "bob", "password-bob"); err != nil {
		t.Fatal(err)
	}
	ik2, _ := pqcrypto.GenerateIdentityKey(nil)
	kp2 := newKeyPair(t)
	if _, err := reset.SetIdentityKey(ctx, ik2, kp2, ""); !client.HasCode(err, client.CodeBadUserInput) {
		t.Fatalf("replace an identity key without the password: %v", err)
	}
	u, err := reset.SetIdentityKey(ctx, ik2, kp2, "password-bob")
	if err != nil {
		t.Fatal(err)
	}
	if *u.PublicKey.Seq != 2 {
		t.Errorf("seq after setIdentityKey: %d, want 2", *u.PublicKey.Seq)
	}
	_, err = alice.SendText(ctx, client.WithUser(bob.Self.Id), "to the new bob")
	var changed *client.IdentityChangedError
	if !errors.As(err, &changed) {
		t.Fatalf("send after bob's reset: %v", err)
	}
	if _, err := alice.SafetyNumber(ctx, u); !errors.As(err, &changed) {
		t.Errorf("safety number with a changed identity: %v", err)
	}
	if err := alice.AcceptIdentity(u); err != nil {
		t.Fatal(err)
	}
	if pin, _ := alice.Pins().Pin(bob.Self.Id); pin == nil || pin.Verified || len(pin.Previous) != 1 {
		t.Errorf("pin after accepting: %+v", pin)
	}
	if _, err := alice.SendText(ctx, client.WithUser(bob.Self.Id), "to the new bob"); err != nil {
		t.Fatalf("send after accepting: %v", err)
	}
}

// A room with a member who has no identity key (an account from before
// version 2) cannot be sealed to, and the error names the member.
func TestMemberWithoutIdentityIsRefused(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	alice := registerSigned(t, srv, "alice")
	old := srv.RegisterV1(t, "oldtimer") // version 1: no identity key
	r, err := alice.CreateRoom(ctx, "mixed", true, old.ID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = alice.SendText(ctx, client.InRoom(r.Id), "hello")
	var rejected *client.KeyRejectedError
	if !errors.As(err, &rejected) || rejected.Username != "oldtimer" || rejected.Reason != client.ReasonNoIdentity {
		t.Fatalf("send to a room with a version 1 member: %v", err)
	}
}

// The key backup goes to the server sealed and comes back with the right
// secret only; the recovery key works the same way.
func TestKeyBackup(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	alice := registerSigned(t, srv, "alice")
	if _, err := alice.KeyBackup(ctx); !client.HasCode(err, client.CodeNotFound) {
		t.Fatalf("backup before any: %v, want NOT_FOUND", err)
	}
	kp := alice.Keyring[alice.Self.PublicKey.Id]
	b := &pqcrypto.Backup{IdentitySeed: alice.IK.Seed(), KEMKeys: []pqcrypto.BackupKEMKey{{KeyID: alice.Self.PublicKey.Id, Algorithm: kp.Algorithm, Seed: kp.Seed}}}
	recovery, err := pqcrypto.GenerateRecoveryKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"a passphrase of twelve or more", recovery} {
		if err := alice.StoreKeyBackup(ctx, secret, b); err != nil {
			t.Fatal(err)
		}
		sealed, err := alice.KeyBackup(ctx)
		if err != nil || strings.Contains(sealed, pqcrypto.EncodeB64(kp.Seed)) {
			t.Fatalf("stored backup: %v (or it holds the seed in the clear)", err)
		}
		if _, err := alice.OpenKeyBackup(ctx, "not the secret at all"); !errors.Is(err, pqcrypto.ErrCannotOpenBackup) {
			t.Errorf("open with a wrong secret: %v", err)
		}
		got, err := alice.OpenKeyBackup(ctx, secret)
		if err != nil || string(got.IdentitySeed) != string(b.IdentitySeed) || len(got.KEMKeys) != 1 || string(got.KEMKeys[0].Seed) != string(kp.Seed) {
			t.Fatalf("open: %+v, %v", got, err)
		}
	}
	if err := alice.StoreKeyBackup(ctx, "too short", b); err == nil {
		t.Error("a passphrase under 12 characters was accepted")
	}
	if err := alice.DeleteKeyBackup(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.KeyBackup(ctx); !client.HasCode(err, client.CodeNotFound) {
		t.Errorf("backup after delete: %v, want NOT_FOUND", err)
	}
}

// keyChanged delivers a contact's rotation and identity change.
func TestKeyChanges(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	alice, bob := registerSigned(t, srv, "alice"), registerSigned(t, srv, "bob")
	if _, err := alice.SendText(ctx, client.WithUser(bob.Self.Id), "we share a conversation"); err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events, err := alice.Subscribe(sctx, client.KeyChanges())
	if err != nil {
		t.Fatal(err)
	}
	srv.WaitSubscribers(t, 1)
	if _, err := bob.RotateKey(ctx, newKeyPair(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case ev := <-events:
		if ev.Kind != client.EventKeyChange || ev.KeyChange.User.Id != bob.Self.Id || ev.KeyChange.Kind != client.KeyChangeKindKemRotated {
			t.Fatalf("event %+v (%v), want bob's KEM_ROTATED", ev, ev.Err)
		}
	case <-time.After(time.Minute):
		t.Fatal("no key change event")
	}
}

// A message opens only if its signature verifies against the sender's
// pinned identity key: the server refuses a bad signature sent through the
// API, and of rows written straight into its database, a genuine envelope
// copied under a new id, and one signed by an identity key the server now
// presents for the sender, neither opens; nothing of their plaintext comes
// back. A version 1 row opens, marked unsigned.
func TestOpeningVerifiesAgainstPins(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	alice, bob := registerSigned(t, srv, "alice"), registerSigned(t, srv, "bob")
	conv := client.WithUser(bob.Self.Id)
	genuine, err := alice.SendText(ctx, conv, "genuine")
	if err != nil {
		t.Fatal(err)
	}
	// bob has read alice once: her identity key is pinned.
	if p, err := bob.History(ctx, client.WithUser(alice.Self.Id), 0, "", bob.Keyring); err != nil || len(p.Messages) != 1 || !p.Messages[0].Signed || p.Messages[0].Text() != "genuine" {
		t.Fatalf("the genuine message: %+v, %v", p, err)
	}

	// Through the API, a signature by another key is refused.
	stranger, _ := pqcrypto.GenerateIdentityKey(nil)
	rs, err := alice.Recipients(ctx, conv)
	if err != nil {
		t.Fatal(err)
	}
	id := uuid.NewString()
	env, err := pqcrypto.SealSigned(nil, stranger, pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: alice.Self.Id, ConversationID: bob.Self.Id}, []byte("forged"), rs)
	if err != nil {
		t.Fatal(err)
	}
	w := env.Wire()
	var keys []client.RecipientKeyInput
	for _, k := range w.Keys {
		keys = append(keys, client.RecipientKeyInput{UserId: k.UserID, KeyId: k.KeyID, KemCiphertext: k.KEMCiphertext, WrappedKey: k.WrappedKey})
	}
	in := client.SendMessageInput{Id: id, RecipientId: &bob.Self.Id, Ciphertext: w.Ciphertext, Nonce: w.Nonce, Keys: keys}
	in.SetSignature(w.Signature)
	_, err = alice.SendMessageRaw(ctx, in)
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != client.CodeBadUserInput || ce.Extensions["field"] != "signature" {
		t.Fatalf("a forged signature through the API: %v, want BAD_USER_INPUT naming signature", err)
	}

	// Straight into the database.
	orig, err := srv.Store.MessageByID(ctx, genuine.Id)
	if err != nil {
		t.Fatal(err)
	}
	var origKeys []*models.RecipientKey
	if err := srv.Store.DB().NewSelect().Model(&origKeys).Where("message_id = ?", genuine.Id).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	// insert stores m under id as alice's, in her conversation with bob.
	insert := func(id string, m *models.Message, ks []*models.RecipientKey) {
		t.Helper()
		m.ID, m.Conversation, m.RecipientID, m.SenderID, m.CreatedAt, m.ContentHash = id, orig.Conversation, orig.RecipientID, orig.SenderID, models.Now(), []byte(id)
		for _, k := range ks {
			k.MessageID = id
		}
		if _, _, err := srv.Store.InsertMessage(ctx, m, ks); err != nil {
			t.Fatal(err)
		}
	}
	rows := func(env *pqcrypto.Envelope) []*models.RecipientKey {
		var out []*models.RecipientKey
		for _, k := range env.Keys {
			out = append(out, &models.RecipientKey{UserID: k.UserID, KeyID: k.KeyID, KEMBytes: k.KEMCiphertext, WrappedBytes: k.WrappedKey})
		}
		return out
	}
	seal := func(id string, ik *pqcrypto.IdentityKey, text string) *models.Message {
		t.Helper()
		h := pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: alice.Self.Id, ConversationID: bob.Self.Id}
		env, err := pqcrypto.SealSigned(nil, ik, h, []byte(text), rs)
		if err != nil {
			t.Fatal(err)
		}
		m := &models.Message{CipherBytes: env.Ciphertext, NonceBytes: env.Nonce, Version: 2, SignatureBytes: env.Signature,
			KeyDigestBytes: bytes.Join(pqcrypto.KeyDigests(env.Keys), nil), Keys: rows(&env.Envelope)}
		return m
	}

	// 1. The genuine envelope and signature under a new id.
	copied := uuid.NewString()
	cp := *orig
	var cpKeys []*models.RecipientKey
	for _, k := range origKeys {
		c := *k
		cpKeys = append(cpKeys, &c)
	}
	insert(copied, &cp, cpKeys)
	// 2. The server swaps alice's identity key and signs with the new one.
	serverIdentity(t, srv, alice.Self.Id, stranger)
	swapped := uuid.NewString()
	m := seal(swapped, stranger, "forged")
	insert(swapped, m, m.Keys)
	// 3. Version 1: no signature to check.
	v1ID := uuid.NewString()
	v1, err := pqcrypto.Seal(nil, pqcrypto.Header{Kind: pqcrypto.KindMessage, ObjectID: v1ID, SenderID: alice.Self.Id, ConversationID: bob.Self.Id}, []byte("unsigned"), rs)
	if err != nil {
		t.Fatal(err)
	}
	insert(v1ID, &models.Message{CipherBytes: v1.Ciphertext, NonceBytes: v1.Nonce, Version: 1}, rows(v1))

	p, err := bob.History(ctx, client.WithUser(alice.Self.Id), 0, "", bob.Keyring)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]client.Received{}
	for _, r := range p.Messages {
		got[r.Id] = r
	}
	for name, id := range map[string]string{"copied": copied, "signed by the swapped identity": swapped} {
		if r := got[id]; !errors.Is(r.Err, pqcrypto.ErrCannotOpen) || r.Plaintext != nil || r.Signed {
			t.Errorf("%s: err %v, plaintext %q, signed %v; want cannot open envelope and nothing else", name, r.Err, r.Plaintext, r.Signed)
		}
	}
	if r := got[genuine.Id]; r.Err != nil || !r.Signed || r.Text() != "genuine" {
		t.Errorf("genuine after the swap: %v, %q, signed %v", r.Err, r.Text(), r.Signed)
	}
	if r := got[v1ID]; r.Err != nil || r.Signed || r.Text() != "unsigned" {
		t.Errorf("version 1: %v, %q, signed %v; want its text, unsigned", r.Err, r.Text(), r.Signed)
	}
}

// A page of history from several people new to the reader pins them all
// with one request, not one per sender.
func TestHistoryPinsSendersInOneRequest(t *testing.T) {
	ctx := context.Background()
	srv := newServer(t)
	alice := registerSigned(t, srv, "alice")
	var ids []string
	var senders []*signedPerson
	for _, name := range []string{"bob", "carol", "dave"} {
		p := registerSigned(t, srv, name)
		senders = append(senders, p)
		ids = append(ids, p.Self.Id)
	}
	r, err := alice.CreateRoom(ctx, "many", true, ids...)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range senders {
		if _, err := p.SendText(ctx, client.InRoom(r.Id), "from "+p.Self.Username); err != nil {
			t.Fatal(err)
		}
	}
	ct := &countingTransport{}
	fresh, err := client.New(srv.URL, client.WithSession(alice.Token(), alice.Self.Id), client.WithHTTPClient(&http.Client{Transport: ct}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := fresh.History(ctx, client.InRoom(r.Id), 0, "", alice.Keyring)
	if err != nil || len(p.Messages) != 3 {
		t.Fatalf("history: %+v, %v", p, err)
	}
	for _, m := range p.Messages {
		if m.Err != nil || !m.Signed {
			t.Errorf("%s: %v, signed %v", m.Sender.Username, m.Err, m.Signed)
		}
	}
	if n := ct.n.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (the page, then the three senders at once)", n)
	}
}
