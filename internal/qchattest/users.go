package qchattest

import (
	"testing"

	"github.com/qchat/qchat/pqcrypto"
)

// User is a registered test user with its secret key.
type User struct {
	ID       string
	Name     string
	Token    string
	KeyID    string
	Key      *pqcrypto.KeyPair
	Password string
}

// Register creates a user with a fresh ML-KEM-768 key.
func (s *Server) Register(t testing.TB, name string) *User {
	t.Helper()
	return s.RegisterWith(t, name, pqcrypto.MLKEM768)
}

// RegisterWith creates a user with a fresh key of alg.
func (s *Server) RegisterWith(t testing.TB, name string, alg pqcrypto.Algorithm) *User {
	t.Helper()
	kp, err := pqcrypto.GenerateKeyPair(alg, nil)
	if err != nil {
		t.Fatal(err)
	}
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
		map[string]any{"in": map[string]any{
			"username": name, "password": "password-" + name, "publicKey": pqcrypto.EncodeB64(kp.PublicKey), "keyAlgorithm": string(alg),
		}}, &out)
	return &User{ID: out.Register.User.ID, Name: name, Token: out.Register.Token, KeyID: out.Register.User.PublicKey.ID, Key: kp, Password: "password-" + name}
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
// names the conversation; the envelope is sealed for recipients.
func Seal(t testing.TB, id string, sender *User, roomID, recipientID string, text string, recipients ...*User) map[string]any {
	t.Helper()
	conv := roomID
	if conv == "" {
		conv = recipientID
	}
	env, err := pqcrypto.Seal(nil, pqcrypto.Header{Kind: pqcrypto.KindMessage, ObjectID: id, SenderID: sender.ID, ConversationID: conv},
		[]byte(text), Recipients(recipients...))
	if err != nil {
		t.Fatalf("seal: %v", err)
	}
	w := env.Wire()
	keys := make([]map[string]any, len(w.Keys))
	for i, k := range w.Keys {
		keys[i] = map[string]any{"userId": k.UserID, "keyId": k.KeyID, "kemCiphertext": k.KEMCiphertext, "wrappedKey": k.WrappedKey}
	}
	in := map[string]any{"id": id, "ciphertext": w.Ciphertext, "nonce": w.Nonce, "keys": keys}
	if roomID != "" {
		in["roomId"] = roomID
	} else {
		in["recipientId"] = recipientID
	}
	return in
}

// WireMessage is a message as the API returns it with its caller's key.
type WireMessage struct {
	ID         string
	Ciphertext string
	Nonce      string
	Deleted    bool
	CreatedAt  string
	Sender     struct{ ID string }
	Room       *struct{ ID string }
	Recipient  *struct{ ID string }
	MyKey      *struct {
		UserID        string
		KeyID         string
		KemCiphertext string
		WrappedKey    string
		ReadAt        *string
	}
}

// MessageFields selects what Open needs.
const MessageFields = `id ciphertext nonce deleted createdAt sender { id } room { id } recipient { id } myKey { userId keyId kemCiphertext wrappedKey readAt }`

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
	pt, err := pqcrypto.OpenWith(pqcrypto.Header{Kind: pqcrypto.KindMessage, ObjectID: m.ID, SenderID: m.Sender.ID, ConversationID: conv},
		dec(m.Ciphertext), dec(m.Nonce),
		pqcrypto.RecipientKey{UserID: m.MyKey.UserID, KeyID: m.MyKey.KeyID, KEMCiphertext: dec(m.MyKey.KemCiphertext), WrappedKey: dec(m.MyKey.WrappedKey)}, u.Key)
	if err != nil {
		t.Fatalf("open message %s as %s: %v", m.ID, u.Name, err)
	}
	return string(pt)
}
