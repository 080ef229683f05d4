package qchattest

import (
	"testing"

	"github.com/qchat/qchat/pqcrypto"
)

// User is a registered test user with its secret keys. IK is its identity
// key (version 2), nil for an account made without one.
type User struct {
	ID       string
	Name     string
	Token    string
	KeyID    string
	Key      *pqcrypto.KeyPair
	IK       *pqcrypto.IdentityKey
	Seq      int // the current KEM key's certificate seq (0 without IK)
	Password string
}

// RotateVars are the variables $k, $seq and $sig of a rotateKey mutation
// that makes kp u's next key, certified with the next seq; u's keys are
// updated as if the rotation succeeded, except KeyID (the server's answer).
func (u *User) RotateVars(t testing.TB, kp *pqcrypto.KeyPair) map[string]any {
	t.Helper()
	if u.IK == nil {
		t.Fatalf("%s has no identity key to certify a rotation with", u.Name)
	}
	cert, err := pqcrypto.CertifyKEMKey(u.IK, kp.Algorithm, u.Seq+1, kp.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	u.Seq++
	u.Key = kp
	return map[string]any{"k": pqcrypto.EncodeB64(kp.PublicKey), "seq": u.Seq, "sig": pqcrypto.EncodeB64(cert)}
}

// Register creates a version 2 user: a fresh identity key and a fresh
// ML-KEM-768 key it certifies.
func (s *Server) Register(t testing.TB, name string) *User {
	t.Helper()
	return s.RegisterWith(t, name, pqcrypto.MLKEM768)
}

// RegisterWith creates a version 2 user with a fresh key of alg.
func (s *Server) RegisterWith(t testing.TB, name string, alg pqcrypto.Algorithm) *User {
	t.Helper()
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return s.register(t, name, alg, ik)
}

// RegisterV1 makes an account as clients before version 2 did (no identity
// key, an uncertified KEM key), which the API no longer registers: straight
// in the store, then signed in through the API.
func (s *Server) RegisterV1(t testing.TB, name string) *User {
	t.Helper()
	u, kp := CreateLegacyUser(t, s.Store, name)
	var out struct{ Login struct{ Token string } }
	s.MustDo(t, "", `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }`,
		map[string]any{"u": name, "p": "password-" + name}, &out)
	return &User{ID: u.ID, Name: name, Token: out.Login.Token, KeyID: u.CurrentKeyID, Key: kp, Password: "password-" + name}
}

func (s *Server) register(t testing.TB, name string, alg pqcrypto.Algorithm, ik *pqcrypto.IdentityKey) *User {
	t.Helper()
	kp, err := pqcrypto.GenerateKeyPair(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := pqcrypto.CertifyKEMKey(ik, alg, 1, kp.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	in := map[string]any{"username": name, "password": "password-" + name, "publicKey": pqcrypto.EncodeB64(kp.PublicKey), "keyAlgorithm": string(alg),
		"identityKey": pqcrypto.EncodeB64(ik.PublicKey()), "publicKeySignature": pqcrypto.EncodeB64(cert)}
	const seq = 1
	var out struct {
		Register struct {
			Token string
			User  struct {
				ID        string
				PublicKey struct{ ID string }
			}
		}
	}
	s.MustDo(t, "", `mutation($in: RegisterInput!) { register(input: $in) { token user { id publicKey { id } } } }`,
		map[string]any{"in": in}, &out)
	return &User{ID: out.Register.User.ID, Name: name, Token: out.Register.Token, KeyID: out.Register.User.PublicKey.ID, Key: kp, IK: ik, Seq: seq, Password: "password-" + name}
}

// Recipients converts users to envelope recipients with their current keys.
func Recipients(users ...*User) []pqcrypto.Recipient {
	rs := make([]pqcrypto.Recipient, len(users))
	for i, u := range users {
		rs[i] = pqcrypto.Recipient{UserID: u.ID, KeyID: u.KeyID, Algorithm: u.Key.Algorithm, PublicKey: u.Key.PublicKey}
	}
	return rs
}

// Seal builds a sendMessage input: roomID or (for a direct message) recipientID
// names the conversation; the envelope is sealed for recipients, and signed
// (version 2) when the sender has an identity key.
func Seal(t testing.TB, id string, sender *User, roomID, recipientID string, text string, recipients ...*User) map[string]any {
	t.Helper()
	return SealAttached(t, id, sender, roomID, recipientID, "", text, recipients...)
}

// SealAttached is Seal for a message with an attachment (attachmentID, or
// "" for none), which a version 2 signature covers.
func SealAttached(t testing.TB, id string, sender *User, roomID, recipientID, attachmentID, text string, recipients ...*User) map[string]any {
	t.Helper()
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: sender.ID, ConversationID: roomID + recipientID, AttachmentID: attachmentID}
	w, sig := seal(t, sender, h, []byte(text), recipients)
	in := map[string]any{"id": id, "ciphertext": w.Ciphertext, "nonce": w.Nonce, "keys": wireKeys(w)}
	if sig != "" {
		in["signature"] = sig
	}
	if attachmentID != "" {
		in["attachmentId"] = attachmentID
	}
	if roomID != "" {
		in["roomId"] = roomID
	} else {
		in["recipientId"] = recipientID
	}
	return in
}

// seal seals as version 2 when sender has an identity key (returning the
// signature), as version 1 otherwise.
func seal(t testing.TB, sender *User, h pqcrypto.SignedHeader, data []byte, recipients []*User) (pqcrypto.WireEnvelope, string) {
	t.Helper()
	if sender.IK != nil {
		env, err := pqcrypto.SealSigned(nil, sender.IK, h, data, Recipients(recipients...))
		if err != nil {
			t.Fatalf("seal: %v", err)
		}
		w := env.Wire()
		return w.WireEnvelope, w.Signature
	}
	env, err := pqcrypto.Seal(nil, pqcrypto.Header{Kind: h.Kind, ObjectID: h.ObjectID, SenderID: h.SenderID, ConversationID: h.ConversationID},
		data, Recipients(recipients...))
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	return env.Wire(), ""
}

func wireKeys(w pqcrypto.WireEnvelope) []map[string]any {
	keys := make([]map[string]any, len(w.Keys))
	for i, k := range w.Keys {
		keys[i] = map[string]any{"userId": k.UserID, "keyId": k.KeyID, "kemCiphertext": k.KEMCiphertext, "wrappedKey": k.WrappedKey}
	}
	return keys
}

// WireMessage is a message as the API returns it with its caller's key.
type WireMessage struct {
	ID           string
	Ciphertext   string
	Nonce        string
	Deleted      bool
	CreatedAt    string
	Version      int
	Signature    *string
	KeyDigests   []string
	AttachmentID *string
	Sender       struct {
		ID          string
		IdentityKey *struct{ Key string }
	}
	Room      *struct{ ID string }
	Recipient *struct{ ID string }
	MyKey     *struct {
		UserID        string
		KeyID         string
		KemCiphertext string
		WrappedKey    string
		ReadAt        *string
	}
}

// MessageFields selects what Open needs.
const MessageFields = `id ciphertext nonce deleted createdAt version signature keyDigests attachmentId sender { id identityKey { key } } room { id } recipient { id } myKey { userId keyId kemCiphertext wrappedKey readAt }`

// Open decrypts a message for u.
func Open(t testing.TB, u *User, m WireMessage) string {
	t.Helper()
	if m.MyKey == nil {
		t.Fatalf("message %s has no key for %s", m.ID, u.Name)
	}
	conv := ""
	if m.Room != nil {
		conv = m.Room.ID
	} else if m.Recipient != nil {
		conv = m.Recipient.ID
	}
	dec := func(s string) []byte {
		b, err := pqcrypto.DecodeB64(s)
		if err != nil {
			t.Fatalf("base64: %v", err)
		}
		return b
	}
	myKey := pqcrypto.RecipientKey{UserID: m.MyKey.UserID, KeyID: m.MyKey.KeyID, KEMCiphertext: dec(m.MyKey.KemCiphertext), WrappedKey: dec(m.MyKey.WrappedKey)}
	var pt []byte
	var err error
	if m.Signature == nil {
		if m.Version > 1 {
			t.Fatalf("message %s: version %d without a signature (select version and signature, see MessageFields)", m.ID, m.Version)
		}
		pt, err = pqcrypto.OpenWith(pqcrypto.Header{Kind: pqcrypto.KindMessage, ObjectID: m.ID, SenderID: m.Sender.ID, ConversationID: conv},
			dec(m.Ciphertext), dec(m.Nonce), myKey, u.Key)
	} else {
		if m.Sender.IdentityKey == nil {
			t.Fatalf("message %s: select sender { identityKey { key } } to verify it", m.ID)
		}
		sender, perr := pqcrypto.ParseIdentityKey(dec(m.Sender.IdentityKey.Key))
		if perr != nil {
			t.Fatalf("message %s: sender identity key: %v", m.ID, perr)
		}
		r := &pqcrypto.ReceivedEnvelope{Ciphertext: dec(m.Ciphertext), Nonce: dec(m.Nonce), MyKey: myKey, Signature: dec(*m.Signature)}
		for _, d := range m.KeyDigests {
			r.KeyDigests = append(r.KeyDigests, dec(d))
		}
		h := pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: m.ID, SenderID: m.Sender.ID, ConversationID: conv}
		if m.AttachmentID != nil {
			h.AttachmentID = *m.AttachmentID
		}
		pt, err = pqcrypto.OpenSigned(h, r, sender, u.Key)
	}
	if err != nil {
		t.Fatalf("open message %s as %s: %v", m.ID, u.Name, err)
	}
	return string(pt)
}
