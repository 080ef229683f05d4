package pqcrypto

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/cloudflare/circl/kem"
)

// ErrCannotOpen is the only error Open and OpenWith return. Reporting which
// step failed would tell an attacker which part of a forged envelope got
// through, and a client has nothing useful to do with the difference.
var ErrCannotOpen = errors.New("cannot open envelope")

// Kind says whether an envelope carries a message or a document; it is
// bound into the aad so one cannot be replayed as the other.
type Kind string

// The kinds of sealed object.
const (
	KindMessage  Kind = "msg"
	KindDocument Kind = "doc"
)

// Valid reports whether k is one of the defined kinds.
func (k Kind) Valid() bool { return k == KindMessage || k == KindDocument }

// Header is what the envelope is bound to: a ciphertext opens only under
// the same kind, object, sender and conversation it was sealed for.
type Header struct {
	Kind           Kind
	ObjectID       string
	SenderID       string
	ConversationID string
}

// AAD is the additional authenticated data of the content ciphertext:
// "qchat/v1/{kind}|{oid}|{sid}|{cid}". Seal requires canonical UUIDs, which
// contain no '|', so the encoding is unambiguous.
func (h Header) AAD() []byte {
	return []byte("qchat/v1/" + string(h.Kind) + "|" + h.ObjectID + "|" + h.SenderID + "|" + h.ConversationID)
}

func (h Header) validate() error {
	if !h.Kind.Valid() {
		return fmt.Errorf("kind must be %q or %q, got %q", KindMessage, KindDocument, h.Kind)
	}
	for _, f := range []struct{ name, v string }{
		{"object id", h.ObjectID}, {"sender id", h.SenderID}, {"conversation id", h.ConversationID},
	} {
		if !IsCanonicalUUID(f.v) {
			return fmt.Errorf("%s %q is not a lower-case canonical UUID", f.name, f.v)
		}
	}
	return nil
}

// Recipient is one member's current public key as the API returns it.
type Recipient struct {
	UserID    string
	KeyID     string
	Algorithm Algorithm
	PublicKey []byte
}

// RecipientKey is one member's share of an envelope: the KEM ciphertext that
// yields their kek, and the content key wrapped under it.
type RecipientKey struct {
	UserID        string
	KeyID         string
	KEMCiphertext []byte
	WrappedKey    []byte
}

// Envelope is a sealed plaintext in binary form; Wire gives the API form.
type Envelope struct {
	Ciphertext []byte
	Nonce      []byte
	Keys       []RecipientKey
}

// Seal encrypts plaintext for every recipient (the sender included, if they
// want to read it back). rand nil means crypto/rand.
//
// Randomness is read from rand in this exact order, which the test vectors in
// testdata/ depend on (and which other implementations replay to check
// themselves against them):
//
//  1. cek, 32 bytes;
//  2. nonce, 12 bytes;
//  3. for each recipient, in input order, the KEM encapsulation seed
//     (EncapsulationSeedSize of the recipient's scheme: 32 bytes for
//     ML_KEM_768, 64 for X_WING).
//
// Every public key is decoded on every call; decoding costs more than the
// encapsulation itself, so a caller sealing many messages to the same large
// room may want to cache, but a chat message's latency does not need it.
func Seal(rand io.Reader, h Header, plaintext []byte, recipients []Recipient) (*Envelope, error) {
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("pqcrypto: seal: %w", err)
	}
	return seal(rand, v1, h.AAD(), h.ObjectID, plaintext, recipients)
}

// version holds what differs between envelope versions below the
// signature: the label prefix of the aad and the wrap info, and the form a
// key id must take.
type version struct {
	label      string // "qchat/v1" or "qchat/v2"
	validKeyID func(string) bool
	keyIDRule  string // what validKeyID refused, for the error message
}

var (
	v1 = version{label: "qchat/v1", validKeyID: IsCanonicalUUID, keyIDRule: "is not a lower-case canonical UUID"}
	// Version 2 accepts any non-empty UTF-8 key id: the transcript
	// length-prefixes it and the wrap info ends with it, so its form cannot
	// make either ambiguous, and the specification's test vectors use
	// readable key ids that are not UUIDs.
	v2 = version{
		label:      "qchat/v2",
		validKeyID: func(s string) bool { return s != "" && utf8.ValidString(s) },
		keyIDRule:  "is empty or not UTF-8",
	}
)

// seal is Seal after the header has been checked, for either version.
func seal(rand io.Reader, ver version, aad []byte, objectID string, plaintext []byte, recipients []Recipient) (*Envelope, error) {
	if len(recipients) == 0 {
		return nil, errors.New("pqcrypto: seal: no recipients")
	}
	// Check every recipient before drawing any randomness, so a bad key
	// costs nothing and never leaves a half-built envelope.
	pks := make([]kem.PublicKey, len(recipients))
	seen := make(map[string]int, len(recipients))
	for i, r := range recipients {
		if !IsCanonicalUUID(r.UserID) {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d: user id %q is not a lower-case canonical UUID", i, r.UserID)
		}
		if !ver.validKeyID(r.KeyID) {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d: key id %q %s", i, r.KeyID, ver.keyIDRule)
		}
		if j, dup := seen[r.UserID]; dup {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d: user %s already is recipient %d", i, r.UserID, j)
		}
		seen[r.UserID] = i
		pk, err := parsePublicKey(r.Algorithm, r.PublicKey)
		if err != nil {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d (user %s): %w", i, r.UserID, err)
		}
		pks[i] = pk
	}

	rand = randOrDefault(rand)
	cek := make([]byte, KeySize)
	nonce := make([]byte, NonceSize)
	if _, err := io.ReadFull(rand, cek); err != nil {
		return nil, fmt.Errorf("pqcrypto: seal: read content key: %w", err)
	}
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return nil, fmt.Errorf("pqcrypto: seal: read nonce: %w", err)
	}
	aead, err := newGCM(cek)
	if err != nil {
		return nil, fmt.Errorf("pqcrypto: seal: %w", err)
	}
	env := &Envelope{
		Ciphertext: aead.Seal(nil, nonce, plaintext, aad),
		Nonce:      nonce,
		Keys:       make([]RecipientKey, len(recipients)),
	}

	for i, r := range recipients {
		s := r.Algorithm.scheme()
		seed := make([]byte, s.EncapsulationSeedSize())
		if _, err := io.ReadFull(rand, seed); err != nil {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d: read encapsulation seed: %w", i, err)
		}
		ct, ss, err := s.EncapsulateDeterministically(pks[i], seed)
		if err != nil {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d: encapsulate: %w", i, err)
		}
		kek, err := deriveVersionKEK(ver, ss, objectID, r.UserID, r.KeyID)
		if err != nil {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d: %w", i, err)
		}
		wrap, err := newGCM(kek)
		if err != nil {
			return nil, fmt.Errorf("pqcrypto: seal: recipient %d: %w", i, err)
		}
		env.Keys[i] = RecipientKey{
			UserID:        r.UserID,
			KeyID:         r.KeyID,
			KEMCiphertext: ct,
			WrappedKey:    wrap.Seal(nil, zeroNonce[:], cek, nil),
		}
	}
	return env, nil
}

// zeroNonce wraps every cek. Safe because each kek comes from a fresh
// encapsulation and seals exactly one message.
var zeroNonce [NonceSize]byte

// deriveKEK binds the kek to the object, user and key so that a wrapped key
// cannot be moved to another envelope or another recipient's slot.
func deriveKEK(ss []byte, objectID, userID, keyID string) ([]byte, error) {
	return deriveVersionKEK(v1, ss, objectID, userID, keyID)
}

// deriveVersionKEK is deriveKEK with the version's label.
func deriveVersionKEK(ver version, ss []byte, objectID, userID, keyID string) ([]byte, error) {
	kek, err := hkdf.Key(sha256.New, ss, nil, ver.label+"/wrap|"+objectID+"|"+userID+"|"+keyID, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive kek: %w", err)
	}
	return kek, nil
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("gcm: %w", err)
	}
	return aead, nil
}

// Open finds the recipient key for userID and keyID in env and decrypts the
// content with kp. Every failure, including "you are not a recipient",
// returns ErrCannotOpen.
func Open(h Header, env *Envelope, userID string, kp *KeyPair, keyID string) ([]byte, error) {
	if env == nil {
		return nil, ErrCannotOpen
	}
	for _, rk := range env.Keys {
		if rk.UserID == userID && rk.KeyID == keyID {
			return OpenWith(h, env.Ciphertext, env.Nonce, rk, kp)
		}
	}
	return nil, ErrCannotOpen
}

// OpenWith decrypts with an explicit recipient key, which is what a client
// receives from the API as `myKey` instead of the whole key list. Every
// failure returns ErrCannotOpen.
func OpenWith(h Header, ciphertext, nonce []byte, rk RecipientKey, kp *KeyPair) ([]byte, error) {
	return openWith(v1, h.AAD(), h.ObjectID, ciphertext, nonce, rk, kp)
}

// openWith is OpenWith for either version.
func openWith(ver version, aad []byte, objectID string, ciphertext, nonce []byte, rk RecipientKey, kp *KeyPair) ([]byte, error) {
	if kp == nil || len(nonce) != NonceSize || len(rk.WrappedKey) != WrappedKeySize ||
		len(rk.KEMCiphertext) != kp.Algorithm.CiphertextSize() {
		// Checked up front because cipher.AEAD.Open panics on a nonce of
		// the wrong length.
		return nil, ErrCannotOpen
	}
	_, sk, err := deriveKeys(kp.Algorithm, kp.Seed)
	if err != nil {
		return nil, ErrCannotOpen
	}
	// ML-KEM decapsulation never fails on a well-sized ciphertext (implicit
	// rejection returns a pseudo-random secret); a forged one is caught by
	// the wrapped key's tag below.
	ss, err := kp.Algorithm.scheme().Decapsulate(sk, rk.KEMCiphertext)
	if err != nil {
		return nil, ErrCannotOpen
	}
	kek, err := deriveVersionKEK(ver, ss, objectID, rk.UserID, rk.KeyID)
	if err != nil {
		return nil, ErrCannotOpen
	}
	wrap, err := newGCM(kek)
	if err != nil {
		return nil, ErrCannotOpen
	}
	cek, err := wrap.Open(nil, zeroNonce[:], rk.WrappedKey, nil)
	if err != nil {
		return nil, ErrCannotOpen
	}
	aead, err := newGCM(cek)
	if err != nil {
		return nil, ErrCannotOpen
	}
	plaintext, err := aead.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrCannotOpen
	}
	return plaintext, nil
}
