// Package pqcrypto implements QChat's sealed envelope: version 1
// (docs/PROTOCOL.md), post-quantum key pairs, sealing a plaintext for a set
// of recipients, opening it again, and the structural checks the server
// applies to envelopes it can never open; and version 2
// (docs/PROTOCOL-V2.md), which adds ML-DSA-65 identity keys, certified KEM
// keys, signed envelopes, safety numbers and the sealed key backup.
//
// Everything here is a pure function; randomness comes from an injected
// io.Reader so that clients in any language can be checked against the
// fixed test vectors in testdata/ (ML-DSA-65 signatures take their
// randomness from crypto/rand unless IdentityKey.Deterministic is set).
package pqcrypto

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/kem/xwing"
)

// Algorithm names a KEM exactly as the API spells it.
type Algorithm string

// The KEMs an envelope may use. Both go through circl's kem.Scheme, so they
// share every code path below; only scheme() tells them apart.
const (
	MLKEM768 Algorithm = "ML_KEM_768"
	XWing    Algorithm = "X_WING"
)

// Sizes fixed by the envelope format.
const (
	NonceSize      = 12 // AES-GCM nonce of the content ciphertext
	KeySize        = 32 // content key (cek) and key-encryption key (kek)
	WrappedKeySize = 48 // cek sealed under kek: 32 bytes plus a 16-byte tag
	tagSize        = 16 // AES-GCM tag; the shortest valid content ciphertext
)

// ParseAlgorithm accepts only the exact API names. An empty string is an
// error, not the default: choosing the default is the caller's decision.
func ParseAlgorithm(s string) (Algorithm, error) {
	a := Algorithm(s)
	if !a.Valid() {
		return "", fmt.Errorf("pqcrypto: unknown algorithm %q", s)
	}
	return a, nil
}

// Valid reports whether a is one of the supported algorithms.
func (a Algorithm) Valid() bool { return a.scheme() != nil }

// PublicKeySize is the length of a raw public key, or 0 for an invalid algorithm.
func (a Algorithm) PublicKeySize() int { return a.size(kem.Scheme.PublicKeySize) }

// CiphertextSize is the length of a KEM ciphertext, or 0 for an invalid algorithm.
func (a Algorithm) CiphertextSize() int { return a.size(kem.Scheme.CiphertextSize) }

// SeedSize is the length of the seed a secret key is stored as
// (d || z for ML-KEM-768), or 0 for an invalid algorithm.
func (a Algorithm) SeedSize() int { return a.size(kem.Scheme.SeedSize) }

func (a Algorithm) size(f func(kem.Scheme) int) int {
	s := a.scheme()
	if s == nil {
		return 0
	}
	return f(s)
}

func (a Algorithm) scheme() kem.Scheme {
	switch a {
	case MLKEM768:
		return mlkem768.Scheme()
	case XWing:
		return xwing.Scheme()
	}
	return nil
}

// KeyPair is a user's key. The secret key is kept only as its seed because
// expanded private-key encodings differ between libraries, while every
// implementation derives the same key from the seed.
type KeyPair struct {
	Algorithm Algorithm
	PublicKey []byte
	Seed      []byte
}

// GenerateKeyPair draws a fresh seed from rand (crypto/rand when nil).
func GenerateKeyPair(alg Algorithm, rand io.Reader) (*KeyPair, error) {
	if !alg.Valid() {
		return nil, fmt.Errorf("pqcrypto: generate key pair: unknown algorithm %q", alg)
	}
	seed := make([]byte, alg.SeedSize())
	if _, err := io.ReadFull(randOrDefault(rand), seed); err != nil {
		return nil, fmt.Errorf("pqcrypto: generate key pair: read seed: %w", err)
	}
	return KeyPairFromSeed(alg, seed)
}

// KeyPairFromSeed rebuilds a key pair from a stored seed. The seed is copied.
func KeyPairFromSeed(alg Algorithm, seed []byte) (*KeyPair, error) {
	pk, _, err := deriveKeys(alg, seed)
	if err != nil {
		return nil, err
	}
	pub, err := pk.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("pqcrypto: marshal public key: %w", err)
	}
	return &KeyPair{Algorithm: alg, PublicKey: pub, Seed: append([]byte(nil), seed...)}, nil
}

// deriveKeys guards the scheme's DeriveKeyPair, which panics on a seed of
// the wrong length.
func deriveKeys(alg Algorithm, seed []byte) (kem.PublicKey, kem.PrivateKey, error) {
	s := alg.scheme()
	if s == nil {
		return nil, nil, fmt.Errorf("pqcrypto: unknown algorithm %q", alg)
	}
	if len(seed) != s.SeedSize() {
		return nil, nil, fmt.Errorf("pqcrypto: %s seed must be %d bytes, got %d", alg, s.SeedSize(), len(seed))
	}
	pk, sk := s.DeriveKeyPair(seed)
	return pk, sk, nil
}

// ValidatePublicKey checks the length and that the key decodes (for ML-KEM,
// the FIPS 203 modulus check), so a server can refuse a key no one could
// ever encapsulate to.
func ValidatePublicKey(alg Algorithm, pub []byte) error {
	_, err := parsePublicKey(alg, pub)
	return err
}

func parsePublicKey(alg Algorithm, pub []byte) (kem.PublicKey, error) {
	s := alg.scheme()
	if s == nil {
		return nil, fmt.Errorf("pqcrypto: unknown algorithm %q", alg)
	}
	if len(pub) != s.PublicKeySize() {
		return nil, fmt.Errorf("pqcrypto: %s public key must be %d bytes, got %d", alg, s.PublicKeySize(), len(pub))
	}
	pk, err := s.UnmarshalBinaryPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("pqcrypto: invalid %s public key: %w", alg, err)
	}
	return pk, nil
}

// Fingerprint is what users compare out of band: the first 16 bytes of
// SHA-256 over the raw key, as lower-case hex in eight groups of four.
func Fingerprint(pub []byte) string {
	sum := sha256.Sum256(pub)
	h := hex.EncodeToString(sum[:16])
	var b strings.Builder
	for i := 0; i < len(h); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(h[i : i+4])
	}
	return b.String()
}

func randOrDefault(r io.Reader) io.Reader {
	if r == nil {
		return rand.Reader
	}
	return r
}
