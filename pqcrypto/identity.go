package pqcrypto

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
)

// Sizes of envelope v2's identity keys (ML-DSA-65, FIPS 204).
const (
	IdentityPublicKeySize = mldsa65.PublicKeySize // 1952
	IdentitySeedSize      = mldsa65.SeedSize      // 32
	SignatureSize         = mldsa65.SignatureSize // 3309
)

// MaxSeq is the highest certificate sequence number, 2^31−1, so that it fits
// a GraphQL Int.
const MaxSeq = 1<<31 - 1

// signatureContext is the FIPS 204 context string of every QChat v2
// signature; it keeps a QChat signature from being valid in any other
// protocol that uses the same key type.
var signatureContext = []byte("qchat/v2")

// ErrBadSignature is what the verify functions return for a signature that
// does not verify, so that the server can tell it from a malformed input
// and name the field.
var ErrBadSignature = errors.New("pqcrypto: signature does not verify")

// IdentityKey is a user's ML-DSA-65 signing key. Like a KEM key it is stored
// only as its seed, which every FIPS 204 implementation expands the same
// way; the expanded key is kept in memory because expanding it costs more
// than a signature.
type IdentityKey struct {
	// Deterministic makes signatures FIPS 204's deterministic variant
	// (rnd = 32 zero bytes): the same key and message always give the same
	// signature, as the test vectors need. Clients should leave it false:
	// hedged signing (fresh randomness from crypto/rand) resists fault and
	// side-channel attacks better, and verifiers cannot tell the difference.
	Deterministic bool

	seed [IdentitySeedSize]byte
	pub  []byte
	pk   *mldsa65.PublicKey
	sk   *mldsa65.PrivateKey
}

// GenerateIdentityKey draws a fresh seed from rand (crypto/rand when nil).
func GenerateIdentityKey(rand io.Reader) (*IdentityKey, error) {
	seed := make([]byte, IdentitySeedSize)
	if _, err := io.ReadFull(randOrDefault(rand), seed); err != nil {
		return nil, fmt.Errorf("pqcrypto: generate identity key: read seed: %w", err)
	}
	return IdentityKeyFromSeed(seed)
}

// IdentityKeyFromSeed rebuilds an identity key from its stored 32-byte seed.
func IdentityKeyFromSeed(seed []byte) (*IdentityKey, error) {
	if len(seed) != IdentitySeedSize {
		return nil, fmt.Errorf("pqcrypto: identity seed must be %d bytes, got %d", IdentitySeedSize, len(seed))
	}
	ik := &IdentityKey{}
	copy(ik.seed[:], seed)
	pk, sk := mldsa65.NewKeyFromSeed(&ik.seed)
	ik.pub, ik.pk, ik.sk = pk.Bytes(), pk, sk
	return ik, nil
}

// Seed returns a copy of the 32-byte seed, the form the key is stored in.
func (ik *IdentityKey) Seed() []byte { return append([]byte(nil), ik.seed[:]...) }

// PublicKey returns a copy of the raw 1952-byte public key, the form the
// server stores and other users pin.
func (ik *IdentityKey) PublicKey() []byte { return append([]byte(nil), ik.pub...) }

// Public returns the parsed public key, for verifying one's own signatures
// without unpacking the key again.
func (ik *IdentityKey) Public() *IdentityPublicKey {
	return &IdentityPublicKey{raw: ik.PublicKey(), pk: ik.pk}
}

// sign makes an ML-DSA-65 signature over msg with the QChat context.
func (ik *IdentityKey) sign(msg []byte) ([]byte, error) {
	if ik == nil || ik.sk == nil {
		return nil, errors.New("pqcrypto: no identity key")
	}
	sig := make([]byte, SignatureSize)
	if err := mldsa65.SignTo(ik.sk, msg, signatureContext, !ik.Deterministic, sig); err != nil {
		return nil, fmt.Errorf("pqcrypto: sign: %w", err)
	}
	return sig, nil
}

// IdentityPublicKey is a parsed identity public key, ready to verify. It is
// immutable and safe for concurrent use. Parsing (unpacking the key and
// expanding its matrix) costs more than a verification, so a server or a
// client that verifies many signatures by one user should keep the parsed
// key rather than the raw bytes.
type IdentityPublicKey struct {
	raw []byte
	pk  *mldsa65.PublicKey
}

// ParseIdentityKey checks and unpacks a raw identity public key. Every
// 1952-byte string is a valid ML-DSA-65 public key, so only the length can
// be wrong.
func ParseIdentityKey(raw []byte) (*IdentityPublicKey, error) {
	if len(raw) != IdentityPublicKeySize {
		return nil, fmt.Errorf("pqcrypto: identity key must be %d bytes, got %d", IdentityPublicKeySize, len(raw))
	}
	pk := new(mldsa65.PublicKey)
	if err := pk.UnmarshalBinary(raw); err != nil {
		return nil, fmt.Errorf("pqcrypto: invalid identity key: %w", err)
	}
	return &IdentityPublicKey{raw: append([]byte(nil), raw...), pk: pk}, nil
}

// Bytes returns a copy of the raw public key.
func (k *IdentityPublicKey) Bytes() []byte { return append([]byte(nil), k.raw...) }

// Fingerprint is the key's fingerprint, computed as a KEM key's.
func (k *IdentityPublicKey) Fingerprint() string { return Fingerprint(k.raw) }

// verify reports whether sig is this key's signature over msg with the
// QChat context. A nil key verifies nothing.
func (k *IdentityPublicKey) verify(msg, sig []byte) bool {
	if k == nil || k.pk == nil || len(sig) != SignatureSize {
		return false
	}
	return mldsa65.Verify(k.pk, msg, signatureContext, sig)
}

// KEMKeyCertificateMessage is the message a KEM key's certificate signs:
// UTF-8("qchat/v2/kem-key|{alg}|{seq}|") || pub.
func KEMKeyCertificateMessage(alg Algorithm, seq int, pub []byte) ([]byte, error) {
	if !alg.Valid() {
		return nil, fmt.Errorf("pqcrypto: certificate: unknown algorithm %q", alg)
	}
	if seq < 1 || seq > MaxSeq {
		return nil, fmt.Errorf("pqcrypto: certificate: seq must be 1 to %d, got %d", MaxSeq, seq)
	}
	if len(pub) != alg.PublicKeySize() {
		return nil, fmt.Errorf("pqcrypto: certificate: %s public key must be %d bytes, got %d", alg, alg.PublicKeySize(), len(pub))
	}
	msg := make([]byte, 0, 40+len(pub))
	msg = append(msg, "qchat/v2/kem-key|"...)
	msg = append(msg, alg...)
	msg = append(msg, '|')
	msg = strconv.AppendInt(msg, int64(seq), 10)
	msg = append(msg, '|')
	return append(msg, pub...), nil
}

// CertifyKEMKey signs a KEM public key with the identity key, binding it to
// its algorithm and sequence number. The result is the certificate the API
// carries as the key's signature.
func CertifyKEMKey(ik *IdentityKey, alg Algorithm, seq int, pub []byte) ([]byte, error) {
	msg, err := KEMKeyCertificateMessage(alg, seq, pub)
	if err != nil {
		return nil, err
	}
	return ik.sign(msg)
}

// VerifyKEMKeyCertificate checks a KEM key's certificate against the owner's
// identity key: ErrBadSignature if the signature does not verify, another
// error if the inputs are malformed. It checks neither that seq is the next
// one nor that the key decodes (ValidatePublicKey): those are the caller's
// rules.
func VerifyKEMKeyCertificate(owner *IdentityPublicKey, alg Algorithm, seq int, pub, cert []byte) error {
	msg, err := KEMKeyCertificateMessage(alg, seq, pub)
	if err != nil {
		return err
	}
	if !owner.verify(msg, cert) {
		return ErrBadSignature
	}
	return nil
}
