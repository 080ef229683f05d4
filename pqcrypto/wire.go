package pqcrypto

import (
	"encoding/base64"
	"fmt"
	"strings"
)

// IsCanonicalUUID reports whether s is a UUID in the one form ids may take
// in the aad and HKDF info: 36 characters, lower-case hex, dashes at
// 8-4-4-4-12. Version and variant bits are not checked; the server stores a
// client-generated id unchanged, so only the spelling matters.
func IsCanonicalUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}

// EncodeB64 is standard base64 with padding, the encoding of every binary
// field on the wire.
func EncodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// DecodeB64 accepts only the canonical encoding EncodeB64 would produce, so
// that one value has one spelling (no line breaks, no missing padding, no
// stray bits in the last character).
func DecodeB64(s string) ([]byte, error) {
	// The standard decoder skips '\r' and '\n' even in strict mode. Two
	// IndexByte scans (vectorised) rather than ContainsAny's byte-by-byte
	// set lookup: a signed message's fields are ~10 KB of base64, decoded
	// on every send.
	if strings.IndexByte(s, '\r') >= 0 || strings.IndexByte(s, '\n') >= 0 {
		return nil, fmt.Errorf("pqcrypto: invalid base64: contains a line break")
	}
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("pqcrypto: invalid base64: %w", err)
	}
	return b, nil
}

// WireRecipientKey is a RecipientKey as the API carries it, binary fields in
// base64.
type WireRecipientKey struct {
	UserID        string `json:"userId"`
	KeyID         string `json:"keyId"`
	KEMCiphertext string `json:"kemCiphertext"`
	WrappedKey    string `json:"wrappedKey"`
}

// WireEnvelope is an Envelope as the API carries it, binary fields in base64.
type WireEnvelope struct {
	Ciphertext string             `json:"ciphertext"`
	Nonce      string             `json:"nonce"`
	Keys       []WireRecipientKey `json:"keys"`
}

// Wire encodes e for the API.
func (e *Envelope) Wire() WireEnvelope {
	w := WireEnvelope{
		Ciphertext: EncodeB64(e.Ciphertext),
		Nonce:      EncodeB64(e.Nonce),
		Keys:       make([]WireRecipientKey, len(e.Keys)),
	}
	for i, k := range e.Keys {
		w.Keys[i] = WireRecipientKey{
			UserID:        k.UserID,
			KeyID:         k.KeyID,
			KEMCiphertext: EncodeB64(k.KEMCiphertext),
			WrappedKey:    EncodeB64(k.WrappedKey),
		}
	}
	return w
}

// ValidationError says which field of a wire envelope is malformed, so the
// server can name it in its BAD_USER_INPUT message.
type ValidationError struct {
	Field  string // "ciphertext", "nonce", "keys[2].wrappedKey", ...
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

// ValidateWire decodes w and checks everything about it that can be checked
// without a secret key. algOf maps a key id to its algorithm; an id it does
// not know (ok false) skips the KEM ciphertext length check, because a
// stale or unknown key is the server's own error to report, with
// staleKeyIds; a nil algOf skips it for every key. An empty key list is not an error here either: the server's
// membership check reports it better, as missingUserIds.
//
// The first problem found is returned as a *ValidationError.
func ValidateWire(w WireEnvelope, algOf func(keyID string) (Algorithm, bool)) (*Envelope, error) {
	ct, err := decodeField("ciphertext", w.Ciphertext)
	if err != nil {
		return nil, err
	}
	return ValidateDetached(ct, w.Nonce, w.Keys, algOf)
}

// ValidateDetached is ValidateWire for an envelope whose ciphertext travels
// apart from the rest, raw: a document's file part.
func ValidateDetached(ct []byte, nonceB64 string, keys []WireRecipientKey, algOf func(keyID string) (Algorithm, bool)) (*Envelope, error) {
	if len(ct) < tagSize {
		return nil, &ValidationError{"ciphertext", fmt.Sprintf("must be at least %d bytes, got %d (shorter than the GCM tag)", tagSize, len(ct))}
	}
	nonce, err := decodeField("nonce", nonceB64)
	if err != nil {
		return nil, err
	}
	if len(nonce) != NonceSize {
		return nil, &ValidationError{"nonce", fmt.Sprintf("must be %d bytes, got %d", NonceSize, len(nonce))}
	}

	env := &Envelope{Ciphertext: ct, Nonce: nonce, Keys: make([]RecipientKey, len(keys))}
	seen := make(map[string]int, len(keys))
	for i, k := range keys {
		field := func(name string) string { return fmt.Sprintf("keys[%d].%s", i, name) }
		if !IsCanonicalUUID(k.UserID) {
			return nil, &ValidationError{field("userId"), fmt.Sprintf("%q is not a lower-case canonical UUID", k.UserID)}
		}
		if j, dup := seen[k.UserID]; dup {
			return nil, &ValidationError{field("userId"), fmt.Sprintf("user %s already has keys[%d]", k.UserID, j)}
		}
		seen[k.UserID] = i
		if !IsCanonicalUUID(k.KeyID) {
			return nil, &ValidationError{field("keyId"), fmt.Sprintf("%q is not a lower-case canonical UUID", k.KeyID)}
		}
		kemCT, err := decodeField(field("kemCiphertext"), k.KEMCiphertext)
		if err != nil {
			return nil, err
		}
		if alg, ok := lookup(algOf, k.KeyID); ok {
			if want := alg.CiphertextSize(); len(kemCT) != want {
				return nil, &ValidationError{field("kemCiphertext"), fmt.Sprintf("must be %d bytes for %s, got %d", want, alg, len(kemCT))}
			}
		}
		wrapped, err := decodeField(field("wrappedKey"), k.WrappedKey)
		if err != nil {
			return nil, err
		}
		if len(wrapped) != WrappedKeySize {
			return nil, &ValidationError{field("wrappedKey"), fmt.Sprintf("must be %d bytes, got %d", WrappedKeySize, len(wrapped))}
		}
		env.Keys[i] = RecipientKey{UserID: k.UserID, KeyID: k.KeyID, KEMCiphertext: kemCT, WrappedKey: wrapped}
	}
	return env, nil
}

func decodeField(field, s string) ([]byte, error) {
	b, err := DecodeB64(s)
	if err != nil {
		return nil, &ValidationError{field, "not canonical standard base64 with padding"}
	}
	return b, nil
}

func lookup(algOf func(string) (Algorithm, bool), keyID string) (Algorithm, bool) {
	if algOf == nil {
		return "", false
	}
	return algOf(keyID)
}
