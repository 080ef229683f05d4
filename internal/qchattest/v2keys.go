package qchattest

import (
	"testing"

	"github.com/qchat/qchat/pqcrypto"
)

// V2Keys is what a version 2 client holds: an identity key and a KEM key
// pair (ML-KEM-768).
type V2Keys struct {
	IK *pqcrypto.IdentityKey
	KP *pqcrypto.KeyPair
}

// NewV2Keys makes fresh keys.
func NewV2Keys(t testing.TB) *V2Keys {
	t.Helper()
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &V2Keys{IK: ik, KP: kp}
}

// Identity is the identity public key as the API takes it (base64).
func (k *V2Keys) Identity() string { return pqcrypto.EncodeB64(k.IK.PublicKey()) }

// Pub is the KEM public key as the API takes it (base64).
func (k *V2Keys) Pub() string { return pqcrypto.EncodeB64(k.KP.PublicKey) }

// Cert is the identity key's certificate of the KEM key with seq, as base64.
func (k *V2Keys) Cert(t testing.TB, seq int) string {
	t.Helper()
	sig, err := pqcrypto.CertifyKEMKey(k.IK, k.KP.Algorithm, seq, k.KP.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pqcrypto.EncodeB64(sig)
}
