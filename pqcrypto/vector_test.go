package pqcrypto

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the test vectors in testdata/ instead of checking them")

const vectorPath = "testdata/envelope-v1.json"

// vector is a complete worked example of the format for other
// implementations: the inputs (seeds, header, plaintext, randomness), the
// intermediate values, and the exact envelope the inputs must produce.
type vector struct {
	Description string `json:"description"`
	Randomness  struct {
		Construction string `json:"construction"`
		Label        string `json:"label"`
		Order        string `json:"order"`
	} `json:"randomness"`
	Header struct {
		Kind           Kind   `json:"kind"`
		ObjectID       string `json:"objectId"`
		SenderID       string `json:"senderId"`
		ConversationID string `json:"conversationId"`
	} `json:"header"`
	AAD        string            `json:"aad"`
	Plaintext  string            `json:"plaintext"` // base64
	CEK        string            `json:"cek"`       // base64, the first 32 random bytes
	Recipients []vectorRecipient `json:"recipients"`
	Envelope   WireEnvelope      `json:"envelope"`
}

type vectorRecipient struct {
	UserID            string    `json:"userId"`
	KeyID             string    `json:"keyId"`
	Algorithm         Algorithm `json:"algorithm"`
	Seed              string    `json:"seed"`
	PublicKey         string    `json:"publicKey"`
	Fingerprint       string    `json:"fingerprint"`
	EncapsulationSeed string    `json:"encapsulationSeed"`
	SharedSecret      string    `json:"sharedSecret"`
	HKDFInfo          string    `json:"hkdfInfo"`
	KEK               string    `json:"kek"`
}

// defaultVector holds the inputs written by -update.
func defaultVector() *vector {
	v := &vector{Description: "QChat sealed envelope v1 (docs/PROTOCOL.md). All binary values are standard base64 with padding."}
	v.Randomness.Label = "qchat envelope v1 test vector"
	v.Header.Kind = KindMessage
	v.Header.ObjectID = "0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f"
	v.Header.SenderID = "5f0c9a2e-3b1d-4e8f-a6c7-2d3e4f5a6b7c"
	v.Header.ConversationID = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	v.Plaintext = EncodeB64([]byte("Hello, post-quantum world! \U0001F44B"))
	for _, r := range []struct {
		alg       Algorithm
		uid, kid  string
		seedLabel string
	}{
		{MLKEM768, v.Header.SenderID, "d1e2f3a4-b5c6-4d7e-8f90-a1b2c3d4e5f6", "recipient 0 seed"},
		{XWing, "c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e6f", "e7f8091a-2b3c-4d5e-9f60-718293a4b5c6", "recipient 1 seed"},
	} {
		seed := make([]byte, r.alg.SeedSize())
		newCtrReader(r.seedLabel).Read(seed)
		v.Recipients = append(v.Recipients, vectorRecipient{UserID: r.uid, KeyID: r.kid, Algorithm: r.alg, Seed: EncodeB64(seed)})
	}
	return v
}

// buildVector computes every derived value of v from its inputs.
func buildVector(t *testing.T, in *vector) *vector {
	t.Helper()
	v := *in
	v.Randomness.Construction = ctrConstruction
	v.Randomness.Order = "cek (32 bytes), nonce (12 bytes), then per recipient in order the encapsulation seed (ML_KEM_768: 32 bytes, X_WING: 64 bytes)"
	h := Header{Kind: v.Header.Kind, ObjectID: v.Header.ObjectID, SenderID: v.Header.SenderID, ConversationID: v.Header.ConversationID}
	v.AAD = string(h.AAD())
	plaintext := mustB64(t, v.Plaintext)

	v.Recipients = append([]vectorRecipient(nil), in.Recipients...)
	rs := make([]Recipient, len(v.Recipients))
	for i := range v.Recipients {
		r := &v.Recipients[i]
		kp, err := KeyPairFromSeed(r.Algorithm, mustB64(t, r.Seed))
		if err != nil {
			t.Fatal(err)
		}
		r.PublicKey = EncodeB64(kp.PublicKey)
		r.Fingerprint = Fingerprint(kp.PublicKey)
		rs[i] = Recipient{UserID: r.UserID, KeyID: r.KeyID, Algorithm: r.Algorithm, PublicKey: kp.PublicKey}
	}
	env, err := Seal(newCtrReader(v.Randomness.Label), h, plaintext, rs)
	if err != nil {
		t.Fatal(err)
	}
	v.Envelope = env.Wire()

	// Replay the randomness to expose the intermediate values.
	rand := newCtrReader(v.Randomness.Label)
	cek := make([]byte, KeySize+NonceSize)
	rand.Read(cek)
	v.CEK = EncodeB64(cek[:KeySize])
	for i := range v.Recipients {
		r := &v.Recipients[i]
		s := r.Algorithm.scheme()
		seed := make([]byte, s.EncapsulationSeedSize())
		rand.Read(seed)
		r.EncapsulationSeed = EncodeB64(seed)
		_, sk, err := deriveKeys(r.Algorithm, mustB64(t, r.Seed))
		if err != nil {
			t.Fatal(err)
		}
		ss, err := s.Decapsulate(sk, env.Keys[i].KEMCiphertext)
		if err != nil {
			t.Fatal(err)
		}
		r.SharedSecret = EncodeB64(ss)
		r.HKDFInfo = "qchat/v1/wrap|" + h.ObjectID + "|" + r.UserID + "|" + r.KeyID
		kek, err := deriveKEK(ss, h.ObjectID, r.UserID, r.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		r.KEK = EncodeB64(kek)
	}
	return &v
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := DecodeB64(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshalVector(t *testing.T, v *vector) []byte {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

func TestVector(t *testing.T) {
	if *update {
		v := buildVector(t, defaultVector())
		if err := os.MkdirAll(filepath.Dir(vectorPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(vectorPath, marshalVector(t, v), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", vectorPath)
	}

	raw, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatalf("%v (run go test ./pqcrypto/ -run TestVector -update to create it)", err)
	}
	var want vector
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}

	got := buildVector(t, &want)
	if g, w := got.Envelope, want.Envelope; g.Ciphertext != w.Ciphertext || g.Nonce != w.Nonce || fmt.Sprint(g.Keys) != fmt.Sprint(w.Keys) {
		t.Errorf("sealing the vector's inputs gives a different envelope:\n got %+v\nwant %+v", g, w)
	}
	if !bytes.Equal(marshalVector(t, got), raw) {
		t.Errorf("%s differs from what its inputs produce (intermediate values or layout); run go test ./pqcrypto/ -run TestVector -update if the change is intended", vectorPath)
	}

	// Open the stored envelope, independently of the regeneration above.
	algOf := func(kid string) (Algorithm, bool) {
		for _, r := range want.Recipients {
			if r.KeyID == kid {
				return r.Algorithm, true
			}
		}
		return "", false
	}
	env, err := ValidateWire(want.Envelope, algOf)
	if err != nil {
		t.Fatalf("ValidateWire(vector) = %v", err)
	}
	h := Header{Kind: want.Header.Kind, ObjectID: want.Header.ObjectID, SenderID: want.Header.SenderID, ConversationID: want.Header.ConversationID}
	for _, r := range want.Recipients {
		kp, err := KeyPairFromSeed(r.Algorithm, mustB64(t, r.Seed))
		if err != nil {
			t.Fatal(err)
		}
		pt, err := Open(h, env, r.UserID, kp, r.KeyID)
		if err != nil {
			t.Errorf("%s recipient: Open = %v", r.Algorithm, err)
			continue
		}
		if EncodeB64(pt) != want.Plaintext {
			t.Errorf("%s recipient: plaintext %q", r.Algorithm, pt)
		}
	}
}

// TestVectorStdlibMLKEM recomputes the vector's ML-KEM encapsulation with
// the standard library, so the vector does not rest on circl alone.
func TestVectorStdlibMLKEM(t *testing.T) {
	raw, err := os.ReadFile(vectorPath)
	if err != nil {
		t.Fatal(err)
	}
	var v vector
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for i, r := range v.Recipients {
		if r.Algorithm != MLKEM768 {
			continue
		}
		dk, err := mlkem.NewDecapsulationKey768(mustB64(t, r.Seed))
		if err != nil {
			t.Fatal(err)
		}
		if EncodeB64(dk.EncapsulationKey().Bytes()) != r.PublicKey {
			t.Errorf("recipient %d: crypto/mlkem derives a different public key", i)
		}
		ss, ct, err := mlkemtest.Encapsulate768(dk.EncapsulationKey(), mustB64(t, r.EncapsulationSeed))
		if err != nil {
			t.Fatal(err)
		}
		if EncodeB64(ct) != v.Envelope.Keys[i].KEMCiphertext || EncodeB64(ss) != r.SharedSecret {
			t.Errorf("recipient %d: crypto/mlkem encapsulates to a different ciphertext or secret", i)
		}
		checked++
	}
	if checked == 0 {
		t.Error("the vector has no ML_KEM_768 recipient")
	}
}
