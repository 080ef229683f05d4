package pqcrypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// KeyDigestSize is the length of a leaf of the signed transcript.
const KeyDigestSize = sha256.Size

// SignedHeader is what a version 2 envelope is sealed and signed under:
// version 1's header plus the metadata the signature also covers.
type SignedHeader struct {
	Kind           Kind
	ObjectID       string
	SenderID       string
	ConversationID string
	// AttachmentID is, for a message, its attached document's id or empty;
	// for a document, empty.
	AttachmentID string
	// Name and MimeType are a document's, exactly as uploaded; empty for a
	// message.
	Name     string
	MimeType string
}

// AAD is the additional authenticated data of the content ciphertext:
// "qchat/v2/{kind}|{oid}|{sid}|{cid}".
func (h SignedHeader) AAD() []byte {
	return []byte("qchat/v2/" + string(h.Kind) + "|" + h.ObjectID + "|" + h.SenderID + "|" + h.ConversationID)
}

func (h SignedHeader) validate() error {
	if err := (Header{h.Kind, h.ObjectID, h.SenderID, h.ConversationID}).validate(); err != nil {
		return err
	}
	switch h.Kind {
	case KindMessage:
		if h.AttachmentID != "" && !IsCanonicalUUID(h.AttachmentID) {
			return fmt.Errorf("attachment id %q is not a lower-case canonical UUID", h.AttachmentID)
		}
		if h.Name != "" || h.MimeType != "" {
			return errors.New("a message has no name or MIME type")
		}
	case KindDocument:
		if h.AttachmentID != "" {
			return errors.New("a document has no attachment id")
		}
		// Go strings may hold any bytes; a JavaScript client could not
		// rebuild a transcript over a name that is not UTF-8.
		if !utf8.ValidString(h.Name) || !utf8.ValidString(h.MimeType) {
			return errors.New("document name and MIME type must be UTF-8")
		}
	}
	return nil
}

// SignedEnvelope is a version 2 envelope: a version 1 envelope sealed with
// the v2 labels, plus the sender's signature over its transcript.
type SignedEnvelope struct {
	Envelope
	Signature []byte
}

// KeyDigest is the transcript's leaf of one recipient key:
// SHA-256(enc(userId) || enc(keyId) || enc(kemCiphertext) || enc(wrappedKey)).
func KeyDigest(rk RecipientKey) []byte {
	h := sha256.New()
	var n [4]byte
	for _, b := range [][]byte{[]byte(rk.UserID), []byte(rk.KeyID), rk.KEMCiphertext, rk.WrappedKey} {
		// enc(b), without copying a kilobyte of KEM ciphertext to prefix it.
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	return h.Sum(nil)
}

// KeyDigests returns the leaves of keys in the signed order, ascending by
// user id bytewise, whatever order keys are in: the keyDigests a server
// stores and hands to every reader.
func KeyDigests(keys []RecipientKey) [][]byte {
	sorted := slices.Clone(keys)
	// Go compares strings bytewise, which is the order the transcript wants.
	slices.SortStableFunc(sorted, func(a, b RecipientKey) int { return strings.Compare(a.UserID, b.UserID) })
	digests := make([][]byte, len(sorted))
	for i, k := range sorted {
		digests[i] = KeyDigest(k)
	}
	return digests
}

// Transcript is the byte string T whose SHA-256 the sender signs, built
// from the header, the content and the leaves in the order given. It checks
// nothing: the formula alone, for building and for checking other
// implementations against.
func Transcript(h SignedHeader, ciphertext, nonce []byte, keyDigests [][]byte) []byte {
	t := make([]byte, 0, 256+len(h.Name)+len(h.MimeType)+KeyDigestSize*len(keyDigests))
	for _, s := range []string{"qchat/v2/envelope", string(h.Kind), h.ObjectID, h.SenderID, h.ConversationID, h.AttachmentID, h.Name, h.MimeType} {
		t = enc(t, []byte(s))
	}
	t = enc(t, nonce)
	sum := sha256.Sum256(ciphertext)
	t = enc(t, sum[:])
	t = binary.BigEndian.AppendUint32(t, uint32(len(keyDigests)))
	for _, d := range keyDigests {
		t = append(t, d...)
	}
	return t
}

// enc appends uint32_be(len(b)) || b to dst.
func enc(dst, b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(dst, uint32(len(b))), b...)
}

// signedMessage is M = SHA-256(T), what the signature is made over.
func signedMessage(h SignedHeader, ciphertext, nonce []byte, keyDigests [][]byte) []byte {
	m := sha256.Sum256(Transcript(h, ciphertext, nonce, keyDigests))
	return m[:]
}

// checkDistinctUsers reports a user id that occurs twice among keys: two
// leaves for one user would let a reader be shown either of two keys.
func checkDistinctUsers(keys []RecipientKey) error {
	seen := make(map[string]struct{}, len(keys))
	for i, k := range keys {
		if _, dup := seen[k.UserID]; dup {
			return fmt.Errorf("keys[%d]: user %s occurs twice", i, k.UserID)
		}
		seen[k.UserID] = struct{}{}
	}
	return nil
}

// SealSigned seals plaintext as version 2 (Seal with the v2 labels; the
// randomness is read in Seal's order) and signs the result with the
// sender's identity key.
func SealSigned(rand io.Reader, sender *IdentityKey, h SignedHeader, plaintext []byte, recipients []Recipient) (*SignedEnvelope, error) {
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("pqcrypto: seal: %w", err)
	}
	if sender == nil {
		return nil, errors.New("pqcrypto: seal: no identity key")
	}
	env, err := seal(rand, v2, h.AAD(), h.ObjectID, plaintext, recipients)
	if err != nil {
		return nil, err
	}
	sig, err := SignEnvelope(sender, h, env)
	if err != nil {
		return nil, err
	}
	return &SignedEnvelope{Envelope: *env, Signature: sig}, nil
}

// SignEnvelope signs an envelope already sealed with the v2 labels.
// SealSigned is the usual way; this is for a caller that seals in steps.
func SignEnvelope(sender *IdentityKey, h SignedHeader, env *Envelope) ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, fmt.Errorf("pqcrypto: sign envelope: %w", err)
	}
	if env == nil {
		return nil, errors.New("pqcrypto: sign envelope: no envelope")
	}
	if err := checkDistinctUsers(env.Keys); err != nil {
		return nil, fmt.Errorf("pqcrypto: sign envelope: %w", err)
	}
	sig, err := sender.sign(signedMessage(h, env.Ciphertext, env.Nonce, KeyDigests(env.Keys)))
	if err != nil {
		return nil, fmt.Errorf("pqcrypto: sign envelope: %w", err)
	}
	return sig, nil
}

// VerifyEnvelope checks the signature of a whole envelope, every recipient
// key included: the server's check before it stores one. It returns
// ErrBadSignature if the signature does not verify, another error if the
// header or the key list is malformed. It opens nothing.
func VerifyEnvelope(sender *IdentityPublicKey, h SignedHeader, env *SignedEnvelope) error {
	if env == nil {
		return errors.New("pqcrypto: verify envelope: no envelope")
	}
	if err := checkDistinctUsers(env.Keys); err != nil {
		return fmt.Errorf("pqcrypto: verify envelope: %w", err)
	}
	return VerifyDigests(sender, h, env.Ciphertext, env.Nonce, KeyDigests(env.Keys), env.Signature)
}

// VerifyDigests is VerifyEnvelope for a caller that has already computed the
// leaves with KeyDigests from distinct recipients (and keeps them, as the
// server stores them): it checks the signature over the transcript of
// exactly the leaves given.
func VerifyDigests(sender *IdentityPublicKey, h SignedHeader, ciphertext, nonce []byte, keyDigests [][]byte, signature []byte) error {
	if err := h.validate(); err != nil {
		return fmt.Errorf("pqcrypto: verify envelope: %w", err)
	}
	if sender == nil {
		return errors.New("pqcrypto: verify envelope: no identity key")
	}
	if !sender.verify(signedMessage(h, ciphertext, nonce, keyDigests), signature) {
		return ErrBadSignature
	}
	return nil
}

// ReceivedEnvelope is a version 2 envelope as a reader receives it: its own
// recipient key in full, and only the leaves of everyone's.
type ReceivedEnvelope struct {
	Ciphertext []byte
	Nonce      []byte
	MyKey      RecipientKey
	KeyDigests [][]byte
	Signature  []byte
}

// Received is what the server hands the recipient userID: its own key and
// the leaves in the signed order. ok is false if userID is not a recipient.
func (e *SignedEnvelope) Received(userID string) (r *ReceivedEnvelope, ok bool) {
	for _, k := range e.Keys {
		if k.UserID == userID {
			return &ReceivedEnvelope{
				Ciphertext: e.Ciphertext,
				Nonce:      e.Nonce,
				MyKey:      k,
				KeyDigests: KeyDigests(e.Keys),
				Signature:  e.Signature,
			}, true
		}
	}
	return nil, false
}

// OpenSigned verifies and opens a version 2 envelope. sender must be the
// sender's identity key as the reader has pinned it, not as the server now
// presents it. The signature is verified before anything is decrypted, and
// every failure, a bad signature included, is ErrCannotOpen with no
// plaintext.
func OpenSigned(h SignedHeader, r *ReceivedEnvelope, sender *IdentityPublicKey, kp *KeyPair) ([]byte, error) {
	if r == nil || h.validate() != nil || !v2.validKeyID(r.MyKey.KeyID) {
		return nil, ErrCannotOpen
	}
	mine, found := KeyDigest(r.MyKey), 0
	for _, d := range r.KeyDigests {
		if len(d) != KeyDigestSize {
			return nil, ErrCannotOpen
		}
		if bytes.Equal(d, mine) {
			found++
		}
	}
	// Exactly once: a leaf listed twice would be a key list the sender
	// never signed for two different users.
	if found != 1 {
		return nil, ErrCannotOpen
	}
	if !sender.verify(signedMessage(h, r.Ciphertext, r.Nonce, r.KeyDigests), r.Signature) {
		return nil, ErrCannotOpen
	}
	return openWith(v2, h.AAD(), h.ObjectID, r.Ciphertext, r.Nonce, r.MyKey, kp)
}

// WireSignedEnvelope is a SignedEnvelope as the API carries it: the version
// 1 fields plus the signature, binary fields in base64.
type WireSignedEnvelope struct {
	WireEnvelope
	Signature string `json:"signature"`
}

// Wire encodes e for the API.
func (e *SignedEnvelope) Wire() WireSignedEnvelope {
	return WireSignedEnvelope{WireEnvelope: e.Envelope.Wire(), Signature: EncodeB64(e.Signature)}
}

// ValidateWireSigned is ValidateWire for a version 2 envelope: it also
// decodes the signature and checks its length. It does not verify the
// signature; VerifyEnvelope does, with the sender's identity key.
func ValidateWireSigned(w WireSignedEnvelope, algOf func(keyID string) (Algorithm, bool)) (*SignedEnvelope, error) {
	env, err := ValidateWire(w.WireEnvelope, algOf)
	if err != nil {
		return nil, err
	}
	sig, err := DecodeSignature(w.Signature)
	if err != nil {
		return nil, err
	}
	return &SignedEnvelope{Envelope: *env, Signature: sig}, nil
}

// DecodeSignature decodes a base64 signature or certificate and checks its
// length; its error is a *ValidationError naming "signature".
func DecodeSignature(s string) ([]byte, error) {
	sig, err := decodeField("signature", s)
	if err != nil {
		return nil, err
	}
	if len(sig) != SignatureSize {
		return nil, &ValidationError{"signature", fmt.Sprintf("must be %d bytes, got %d", SignatureSize, len(sig))}
	}
	return sig, nil
}

// WireReceivedEnvelope is what a reader receives from the API for a version
// 2 message. A document's ciphertext travels apart, as the file: leave
// Ciphertext empty and set ReceivedEnvelope.Ciphertext after decoding.
type WireReceivedEnvelope struct {
	Ciphertext string           `json:"ciphertext"`
	Nonce      string           `json:"nonce"`
	MyKey      WireRecipientKey `json:"myKey"`
	KeyDigests []string         `json:"keyDigests"`
	Signature  string           `json:"signature"`
}

// Decode decodes the base64 fields. Any malformed field is ErrCannotOpen,
// the reader's single error: lengths are left to OpenSigned, which fails
// the same way.
func (w WireReceivedEnvelope) Decode() (*ReceivedEnvelope, error) {
	r := &ReceivedEnvelope{MyKey: RecipientKey{UserID: w.MyKey.UserID, KeyID: w.MyKey.KeyID}}
	var err error
	for _, f := range []struct {
		dst *[]byte
		src string
	}{
		{&r.Ciphertext, w.Ciphertext}, {&r.Nonce, w.Nonce}, {&r.Signature, w.Signature},
		{&r.MyKey.KEMCiphertext, w.MyKey.KEMCiphertext}, {&r.MyKey.WrappedKey, w.MyKey.WrappedKey},
	} {
		if *f.dst, err = DecodeB64(f.src); err != nil {
			return nil, ErrCannotOpen
		}
	}
	r.KeyDigests = make([][]byte, len(w.KeyDigests))
	for i, d := range w.KeyDigests {
		if r.KeyDigests[i], err = DecodeB64(d); err != nil {
			return nil, ErrCannotOpen
		}
	}
	return r, nil
}
