package pqcrypto_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log"

	"github.com/qchat/qchat/pqcrypto"
)

// A version 2 conversation from a client's point of view: identity keys,
// certified KEM keys, a signed message, and what the server and the reader
// check.
func Example_signedEnvelope() {
	const (
		aliceID  = "5f0c9a2e-3b1d-4e8f-a6c7-2d3e4f5a6b7c"
		bobID    = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
		aliceKID = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
		bobKID   = "e7f8091a-2b3c-4d5e-9f60-718293a4b5c6"
	)
	// Each user makes an identity key once and stores its seed; the server
	// learns the public key.
	alice, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	bob, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	// Bob certifies his first KEM key (seq 1) and publishes key and certificate.
	bobKEM, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		log.Fatal(err)
	}
	bobCert, err := pqcrypto.CertifyKEMKey(bob, bobKEM.Algorithm, 1, bobKEM.PublicKey)
	if err != nil {
		log.Fatal(err)
	}
	aliceKEM, err := pqcrypto.GenerateKeyPair(pqcrypto.XWing, nil)
	if err != nil {
		log.Fatal(err)
	}

	// Alice pins Bob's identity key the first time she sees it (keep the
	// raw bytes in the store; keep the parsed key in memory) and checks the
	// certificate of the key she is about to seal to.
	bobPinned, err := pqcrypto.ParseIdentityKey(bob.PublicKey())
	if err != nil {
		log.Fatal(err)
	}
	if err := pqcrypto.VerifyKEMKeyCertificate(bobPinned, pqcrypto.MLKEM768, 1, bobKEM.PublicKey, bobCert); err != nil {
		log.Fatal("refusing to seal to bob: ", err)
	}

	// Alice seals and signs a direct message to Bob (and to herself).
	h := pqcrypto.SignedHeader{
		Kind:           pqcrypto.KindMessage,
		ObjectID:       "0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f",
		SenderID:       aliceID,
		ConversationID: bobID,
	}
	env, err := pqcrypto.SealSigned(nil, alice, h, []byte("hi Bob, signed"), []pqcrypto.Recipient{
		{UserID: aliceID, KeyID: aliceKID, Algorithm: aliceKEM.Algorithm, PublicKey: aliceKEM.PublicKey},
		{UserID: bobID, KeyID: bobKID, Algorithm: bobKEM.Algorithm, PublicKey: bobKEM.PublicKey},
	})
	if err != nil {
		log.Fatal(err)
	}
	// sendMessage carries env.Wire(); the server checks the signature
	// against Alice's current identity key before storing anything.
	alicePub, err := pqcrypto.ParseIdentityKey(alice.PublicKey())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("server accepts:", pqcrypto.VerifyEnvelope(alicePub, h, env) == nil)

	// Bob receives his own key in full and everyone's leaf (the JSON stands
	// for the API's message fields).
	received, _ := env.Received(bobID)
	wire, _ := json.Marshal(pqcrypto.WireReceivedEnvelope{
		Ciphertext: pqcrypto.EncodeB64(received.Ciphertext),
		Nonce:      pqcrypto.EncodeB64(received.Nonce),
		MyKey:      env.Wire().Keys[1],
		KeyDigests: []string{pqcrypto.EncodeB64(received.KeyDigests[0]), pqcrypto.EncodeB64(received.KeyDigests[1])},
		Signature:  pqcrypto.EncodeB64(received.Signature),
	})
	var w pqcrypto.WireReceivedEnvelope
	if err := json.Unmarshal(wire, &w); err != nil {
		log.Fatal(err)
	}
	r, err := w.Decode()
	if err != nil {
		log.Fatal(err)
	}
	// Bob verifies with Alice's key as he pinned it, never as the server
	// presents it now; any failure is the one error "cannot open envelope".
	alicePinned := alicePub
	plaintext, err := pqcrypto.OpenSigned(h, r, alicePinned, bobKEM)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob reads: %s\n", plaintext)

	// A server that puts words in Alice's mouth is caught.
	r.Ciphertext[0] ^= 1
	_, err = pqcrypto.OpenSigned(h, r, alicePinned, bobKEM)
	fmt.Println("forged:", err)
	// Output:
	// server accepts: true
	// bob reads: hi Bob, signed
	// forged: cannot open envelope
}

func ExampleSafetyNumber() {
	alice, _ := pqcrypto.IdentityKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	bob, _ := pqcrypto.IdentityKeyFromSeed(bytes.Repeat([]byte{2}, 32))
	const aliceID, bobID = "5f0c9a2e-3b1d-4e8f-a6c7-2d3e4f5a6b7c", "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"

	// Each side computes it from its own id and key and the other's pinned
	// key; the order of the arguments does not matter.
	onAlicesScreen, err := pqcrypto.SafetyNumber(aliceID, alice.PublicKey(), bobID, bob.PublicKey())
	if err != nil {
		log.Fatal(err)
	}
	onBobsScreen, err := pqcrypto.SafetyNumber(bobID, bob.PublicKey(), aliceID, alice.PublicKey())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(pqcrypto.FormatSafetyNumber(onAlicesScreen))
	fmt.Println(onAlicesScreen == onBobsScreen)
	// Output:
	// 42768 12585 24392 29854 76834 06671 64131 37382 57834 63042 94552 75212
	// true
}

func ExampleSealBackup() {
	const uid = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
	ik, err := pqcrypto.GenerateIdentityKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	kem, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		log.Fatal(err)
	}
	// A recovery key is shown to the user once; a passphrase of at least
	// 12 characters works the same way.
	secret, err := pqcrypto.GenerateRecoveryKey(nil)
	if err != nil {
		log.Fatal(err)
	}
	sealed, err := pqcrypto.SealBackup(nil, uid, secret, &pqcrypto.Backup{
		IdentitySeed: ik.Seed(),
		KEMKeys:      []pqcrypto.BackupKEMKey{{KeyID: "e7f8091a-2b3c-4d5e-9f60-718293a4b5c6", Algorithm: kem.Algorithm, Seed: kem.Seed}},
	}, pqcrypto.BackupParams{})
	if err != nil {
		log.Fatal(err)
	}
	// setKeyBackup stores sealed; on a new device, after keyBackup:
	restored, err := pqcrypto.OpenBackup(uid, secret, sealed)
	if err != nil {
		log.Fatal(err)
	}
	again, err := pqcrypto.IdentityKeyFromSeed(restored.IdentitySeed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("same identity key:", bytes.Equal(again.PublicKey(), ik.PublicKey()))
	_, err = pqcrypto.OpenBackup(uid, "a wrong guess at it", sealed)
	fmt.Println(err)
	// Output:
	// same identity key: true
	// cannot open key backup
}
