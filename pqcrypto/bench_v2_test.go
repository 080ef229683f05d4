package pqcrypto_test

import (
	"fmt"
	"testing"

	"github.com/google/uuid"

	"github.com/qchat/qchat/pqcrypto"
)

// benchSigned seals a 1 KiB message from a fresh identity key to n fresh
// ML-KEM-768 recipients.
func benchSigned(b *testing.B, n int) (*pqcrypto.IdentityKey, pqcrypto.SignedHeader, *pqcrypto.SignedEnvelope, *pqcrypto.KeyPair) {
	b.Helper()
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	var rs []pqcrypto.Recipient
	var last *pqcrypto.KeyPair
	for range n {
		kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		if err != nil {
			b.Fatal(err)
		}
		last = kp
		rs = append(rs, pqcrypto.Recipient{UserID: uuid.NewString(), KeyID: uuid.NewString(), Algorithm: kp.Algorithm, PublicKey: kp.PublicKey})
	}
	h := pqcrypto.SignedHeader{Kind: pqcrypto.KindMessage, ObjectID: uuid.NewString(), SenderID: rs[0].UserID, ConversationID: uuid.NewString()}
	env, err := pqcrypto.SealSigned(nil, ik, h, make([]byte, 1024), rs)
	if err != nil {
		b.Fatal(err)
	}
	return ik, h, env, last
}

// BenchmarkSignEnvelope is what signing adds to a sender's Seal: the leaves,
// the transcript and one hedged ML-DSA-65 signature.
func BenchmarkSignEnvelope(b *testing.B) {
	for _, n := range []int{2, 10, 50} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			ik, h, env, _ := benchSigned(b, n)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := pqcrypto.SignEnvelope(ik, h, &env.Envelope); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerifyEnvelope is the server's per-message check with the
// sender's identity key already parsed (cached), as the server should hold
// it; BenchmarkParseIdentityKey is what a cache miss adds.
func BenchmarkVerifyEnvelope(b *testing.B) {
	for _, n := range []int{2, 10, 50} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			ik, h, env, _ := benchSigned(b, n)
			pub, err := pqcrypto.ParseIdentityKey(ik.PublicKey())
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if err := pqcrypto.VerifyEnvelope(pub, h, env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseIdentityKey(b *testing.B) {
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	raw := ik.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pqcrypto.ParseIdentityKey(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpenSigned is a reader's whole cost for one message: its leaf,
// the signature and the v1 opening.
func BenchmarkOpenSigned(b *testing.B) {
	ik, h, env, kp := benchSigned(b, 10)
	pub := ik.Public()
	r, ok := env.Received(env.Keys[len(env.Keys)-1].UserID)
	if !ok {
		b.Fatal("no recipient")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pqcrypto.OpenSigned(h, r, pub, kp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSafetyNumber is the one deliberately slow function: 5201
// SHA-512 rounds over each key.
func BenchmarkSafetyNumber(b *testing.B) {
	a, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	c, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pqcrypto.SafetyNumber(aliceUID, a.PublicKey(), bobUID, c.PublicKey()); err != nil {
			b.Fatal(err)
		}
	}
}
