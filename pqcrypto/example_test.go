package pqcrypto_test

import (
	"fmt"
	"log"

	"github.com/qchat/qchat/pqcrypto"
)

func Example() {
	// Each user generates a key pair once and stores only the seed; the
	// server learns the public key and gives it an id.
	alice, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		log.Fatal(err)
	}
	bob, err := pqcrypto.GenerateKeyPair(pqcrypto.XWing, nil)
	if err != nil {
		log.Fatal(err)
	}
	const (
		aliceID    = "5f0c9a2e-3b1d-4e8f-a6c7-2d3e4f5a6b7c"
		aliceKeyID = "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6"
		bobID      = "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f"
		bobKeyID   = "e7f8091a-2b3c-4d5e-9f60-718293a4b5c6"
	)

	// Alice writes to Bob directly: the conversation id of a direct message
	// is the addressed user, and the sender seals for herself too.
	h := pqcrypto.Header{
		Kind:           pqcrypto.KindMessage,
		ObjectID:       "0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f",
		SenderID:       aliceID,
		ConversationID: bobID,
	}
	env, err := pqcrypto.Seal(nil, h, []byte("hi Bob"), []pqcrypto.Recipient{
		{UserID: aliceID, KeyID: aliceKeyID, Algorithm: alice.Algorithm, PublicKey: alice.PublicKey},
		{UserID: bobID, KeyID: bobKeyID, Algorithm: bob.Algorithm, PublicKey: bob.PublicKey},
	})
	if err != nil {
		log.Fatal(err)
	}

	// Bob restores his key pair from the stored seed and opens.
	bob, err = pqcrypto.KeyPairFromSeed(pqcrypto.XWing, bob.Seed)
	if err != nil {
		log.Fatal(err)
	}
	plaintext, err := pqcrypto.Open(h, env, bobID, bob, bobKeyID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("bob reads: %s\n", plaintext)

	mine, err := pqcrypto.Open(h, env, aliceID, alice, aliceKeyID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("alice reads her own copy: %s\n", mine)
	// Output:
	// bob reads: hi Bob
	// alice reads her own copy: hi Bob
}
