package pqcrypto_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/qchat/qchat/pqcrypto"
)

// The envelope v2 vectors are fixed and were made by two independent
// implementations; these tests reproduce every value in them through the
// package's public API, so that the API, docs/PROTOCOL-V2.md and the
// vectors cannot drift apart.

type v2Vectors struct {
	Identities map[string]struct {
		UID, Seed, PublicKey, PublicKeySha256, Fingerprint string
	}
	KEMKeys []struct {
		Owner, UserID, KeyID, Algorithm, Seed, PublicKey   string
		Seq                                                int
		CertificateMessagePrefix, CertificateDeterministic string
	}
	Envelopes     []v2EnvelopeVector
	SafetyNumbers []struct{ A, B, Number string }
	Argon2id      []struct {
		Secret, Salt string
		T, M, P      uint32
		Key          string
	}
	Backup, BackupPassphrase v2Backup
}

type v2EnvelopeVector struct {
	Name, Sender                    string
	Meta                            struct{ Kind, OID, SID, CID, AttachmentID, Name, MimeType string }
	Plaintext                       string
	Recipients                      []struct{ Owner, KeyID string }
	Cek, Nonce                      string
	EncapSeeds                      map[string]string
	Envelope                        pqcrypto.WireSignedEnvelope
	KeyDigests                      []string
	TranscriptHex, TranscriptSha256 string
}

func (e *v2EnvelopeVector) header() pqcrypto.SignedHeader {
	m := e.Meta
	return pqcrypto.SignedHeader{
		Kind: pqcrypto.Kind(m.Kind), ObjectID: m.OID, SenderID: m.SID, ConversationID: m.CID,
		AttachmentID: m.AttachmentID, Name: m.Name, MimeType: m.MimeType,
	}
}

// received is what the server hands the reader userID: its own entry of
// the envelope's keys as myKey, and the vector's keyDigests.
func (e *v2EnvelopeVector) received(t testing.TB, userID string) pqcrypto.WireReceivedEnvelope {
	t.Helper()
	for _, k := range e.Envelope.Keys {
		if k.UserID == userID {
			return pqcrypto.WireReceivedEnvelope{
				Ciphertext: e.Envelope.Ciphertext, Nonce: e.Envelope.Nonce, MyKey: k,
				KeyDigests: e.KeyDigests, Signature: e.Envelope.Signature,
			}
		}
	}
	t.Fatalf("%s is not a recipient of %s", userID, e.Name)
	return pqcrypto.WireReceivedEnvelope{}
}

type v2Backup struct {
	UID, Secret, SecretNfd, PlaintextJSON, Salt, Nonce string
	T, M, P                                            uint32
	Sealed                                             string
}

func (bk v2Backup) params() pqcrypto.BackupParams {
	return pqcrypto.BackupParams{Time: bk.T, MemoryKiB: bk.M, Threads: uint8(bk.P)}
}

func loadV2Vectors(t testing.TB) *v2Vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/envelope-v2-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v v2Vectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Identities) != 3 || len(v.KEMKeys) != 4 || len(v.Envelopes) != 2 || len(v.SafetyNumbers) != 2 || len(v.Argon2id) != 3 {
		t.Fatalf("vectors incomplete: %d identities, %d KEM keys, %d envelopes", len(v.Identities), len(v.KEMKeys), len(v.Envelopes))
	}
	return &v
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// v2Keys are the vectors' keys, rebuilt through the API from their seeds.
type v2Keys struct {
	identity map[string]*pqcrypto.IdentityKey       // by name (alice, bob, carol)
	pinned   map[string]*pqcrypto.IdentityPublicKey // by user id, as a reader pins them
	kem      map[string]*pqcrypto.KeyPair           // by key id
}

func loadV2Keys(t testing.TB, v *v2Vectors) *v2Keys {
	t.Helper()
	k := &v2Keys{identity: map[string]*pqcrypto.IdentityKey{}, pinned: map[string]*pqcrypto.IdentityPublicKey{}, kem: map[string]*pqcrypto.KeyPair{}}
	for name, id := range v.Identities {
		ik, err := pqcrypto.IdentityKeyFromSeed(b64(t, id.Seed))
		if err != nil {
			t.Fatal(err)
		}
		// The vectors' signatures are deterministic.
		ik.Deterministic = true
		k.identity[name] = ik
		if k.pinned[id.UID], err = pqcrypto.ParseIdentityKey(b64(t, id.PublicKey)); err != nil {
			t.Fatal(err)
		}
	}
	for _, kk := range v.KEMKeys {
		kp, err := pqcrypto.KeyPairFromSeed(pqcrypto.Algorithm(kk.Algorithm), b64(t, kk.Seed))
		if err != nil {
			t.Fatal(err)
		}
		k.kem[kk.KeyID] = kp
	}
	return k
}

func TestV2VectorsIdentitiesAndCertificates(t *testing.T) {
	v := loadV2Vectors(t)
	keys := loadV2Keys(t, v)
	for name, id := range v.Identities {
		ik := keys.identity[name]
		pub := ik.PublicKey()
		sum := sha256.Sum256(pub)
		if !bytes.Equal(pub, b64(t, id.PublicKey)) || hex.EncodeToString(sum[:]) != id.PublicKeySha256 {
			t.Errorf("%s: identity public key from the seed differs", name)
		}
		if !bytes.Equal(ik.Seed(), b64(t, id.Seed)) {
			t.Errorf("%s: Seed() does not return the seed", name)
		}
		parsed := keys.pinned[id.UID]
		if got := parsed.Fingerprint(); got != id.Fingerprint || pqcrypto.Fingerprint(pub) != id.Fingerprint {
			t.Errorf("%s: fingerprint %q, want %q", name, got, id.Fingerprint)
		}
		if !bytes.Equal(parsed.Bytes(), pub) || !bytes.Equal(ik.Public().Bytes(), pub) {
			t.Errorf("%s: parsed key does not give back its bytes", name)
		}
	}
	for _, k := range v.KEMKeys {
		alg, pub := pqcrypto.Algorithm(k.Algorithm), b64(t, k.PublicKey)
		if owner := v.Identities[k.Owner]; owner.UID != k.UserID {
			t.Fatalf("KEM key %s: owner %s unknown", k.KeyID, k.Owner)
		}
		if !bytes.Equal(keys.kem[k.KeyID].PublicKey, pub) {
			t.Errorf("KEM key %s: public key from the seed differs", k.KeyID)
		}
		msg, err := pqcrypto.KEMKeyCertificateMessage(alg, k.Seq, pub)
		if err != nil || !bytes.Equal(msg, append([]byte(k.CertificateMessagePrefix), pub...)) {
			t.Errorf("KEM key %s: certificate message is not %q || pk (%v)", k.KeyID, k.CertificateMessagePrefix, err)
		}
		cert, err := pqcrypto.CertifyKEMKey(keys.identity[k.Owner], alg, k.Seq, pub)
		if err != nil || !bytes.Equal(cert, b64(t, k.CertificateDeterministic)) {
			t.Errorf("KEM key %s: deterministic certificate differs (%v)", k.KeyID, err)
		}
		if err := pqcrypto.VerifyKEMKeyCertificate(keys.pinned[k.UserID], alg, k.Seq, pub, b64(t, k.CertificateDeterministic)); err != nil {
			t.Errorf("KEM key %s: certificate does not verify: %v", k.KeyID, err)
		}
	}
}

func TestV2VectorsEnvelopes(t *testing.T) {
	v := loadV2Vectors(t)
	keys := loadV2Keys(t, v)
	kemPub := map[string]string{}
	for _, k := range v.KEMKeys {
		kemPub[k.KeyID] = k.PublicKey
	}
	for _, e := range v.Envelopes {
		t.Run(e.Name, func(t *testing.T) {
			h := e.header()
			// Seal from the vector's randomness, in Seal's documented order.
			var recipients []pqcrypto.Recipient
			rand := []io.Reader{bytes.NewReader(b64(t, e.Cek)), bytes.NewReader(b64(t, e.Nonce))}
			for _, r := range e.Recipients {
				uid := v.Identities[r.Owner].UID
				kp := keys.kem[r.KeyID]
				recipients = append(recipients, pqcrypto.Recipient{UserID: uid, KeyID: r.KeyID, Algorithm: kp.Algorithm, PublicKey: b64(t, kemPub[r.KeyID])})
				rand = append(rand, bytes.NewReader(b64(t, e.EncapSeeds[uid])))
			}
			randomness := io.MultiReader(rand...)
			env, err := pqcrypto.SealSigned(randomness, keys.identity[e.Sender], h, b64(t, e.Plaintext), recipients)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := randomness.Read(make([]byte, 1)); n != 0 {
				t.Error("Seal left some of the vector's randomness unread")
			}
			if got := env.Wire(); !reflect.DeepEqual(got, e.Envelope) {
				t.Errorf("sealed envelope differs from the vector's\n got %.200v\nwant %.200v", got, e.Envelope)
			}

			digests := pqcrypto.KeyDigests(env.Keys)
			var digestsB64 []string
			for _, d := range digests {
				digestsB64 = append(digestsB64, pqcrypto.EncodeB64(d))
			}
			if !reflect.DeepEqual(digestsB64, e.KeyDigests) {
				t.Errorf("keyDigests %v, want %v", digestsB64, e.KeyDigests)
			}
			T := pqcrypto.Transcript(h, env.Ciphertext, env.Nonce, digests)
			sum := sha256.Sum256(T)
			if hex.EncodeToString(T) != e.TranscriptHex || hex.EncodeToString(sum[:]) != e.TranscriptSha256 {
				t.Errorf("transcript differs from the specification's\n got %x\nwant %s", T, e.TranscriptHex)
			}
			if err := pqcrypto.VerifyEnvelope(keys.pinned[h.SenderID], h, env); err != nil {
				t.Errorf("the server's check refuses the vector: %v", err)
			}

			// Every recipient opens what the server hands it.
			for _, r := range e.Recipients {
				uid := v.Identities[r.Owner].UID
				rcv, err := e.received(t, uid).Decode()
				if err != nil {
					t.Fatal(err)
				}
				pt, err := pqcrypto.OpenSigned(h, rcv, keys.pinned[h.SenderID], keys.kem[r.KeyID])
				if err != nil || !bytes.Equal(pt, b64(t, e.Plaintext)) {
					t.Errorf("%s opens %q, %v", r.Owner, pt, err)
				}
				if own, ok := env.Received(uid); !ok || !reflect.DeepEqual(own, rcv) {
					t.Errorf("%s: Received differs from what the server hands out", r.Owner)
				}
			}
		})
	}
}

func TestV2VectorsSafetyNumbers(t *testing.T) {
	v := loadV2Vectors(t)
	for _, sn := range v.SafetyNumbers {
		a, b := v.Identities[sn.A], v.Identities[sn.B]
		ab, err := pqcrypto.SafetyNumber(a.UID, b64(t, a.PublicKey), b.UID, b64(t, b.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		ba, err := pqcrypto.SafetyNumber(b.UID, b64(t, b.PublicKey), a.UID, b64(t, a.PublicKey))
		if err != nil {
			t.Fatal(err)
		}
		if ab != sn.Number || ba != sn.Number {
			t.Errorf("%s/%s: safety numbers %s and %s, want %s", sn.A, sn.B, ab, ba, sn.Number)
		}
		groups := strings.Fields(pqcrypto.FormatSafetyNumber(ab))
		if len(groups) != 12 || strings.Join(groups, "") != sn.Number {
			t.Errorf("%s/%s: formatted as %q", sn.A, sn.B, pqcrypto.FormatSafetyNumber(ab))
		}
	}
}

func TestV2VectorsKeyBackup(t *testing.T) {
	v := loadV2Vectors(t)
	for _, a := range v.Argon2id {
		key, err := pqcrypto.DeriveBackupKey(a.Secret, b64(t, a.Salt), pqcrypto.BackupParams{Time: a.T, MemoryKiB: a.M, Threads: uint8(a.P)})
		if err != nil || hex.EncodeToString(key) != a.Key {
			t.Errorf("Argon2id of %q: %x, want %s (%v)", a.Secret, key, a.Key, err)
		}
	}
	for name, bk := range map[string]v2Backup{"recovery key": v.Backup, "passphrase": v.BackupPassphrase} {
		t.Run(name, func(t *testing.T) {
			var plain pqcrypto.Backup
			if err := json.Unmarshal([]byte(bk.PlaintextJSON), &plain); err != nil {
				t.Fatal(err)
			}
			rand := io.MultiReader(bytes.NewReader(b64(t, bk.Salt)), bytes.NewReader(b64(t, bk.Nonce)))
			sealed, err := pqcrypto.SealBackup(rand, bk.UID, bk.Secret, &plain, bk.params())
			if err != nil || sealed != bk.Sealed {
				t.Errorf("sealed backup differs (%v)\n got %s\nwant %s", err, sealed, bk.Sealed)
			}
			secrets := []string{bk.Secret}
			if bk.SecretNfd != "" {
				secrets = append(secrets, bk.SecretNfd)
			}
			for _, secret := range secrets {
				got, err := pqcrypto.OpenBackup(bk.UID, secret, bk.Sealed)
				if err != nil || !reflect.DeepEqual(got, &plain) {
					t.Errorf("OpenBackup with %q = %+v, %v", secret, got, err)
				}
			}
			if err := pqcrypto.ValidateSealedBackup(bk.Sealed); err != nil {
				t.Errorf("the server's check refuses the vector: %v", err)
			}
			if name == "recovery key" {
				if raw, err := base64.RawURLEncoding.DecodeString(bk.Secret); err != nil || len(raw) != pqcrypto.RecoveryKeySize || len(bk.Secret) != 43 {
					t.Errorf("recovery key %q is not 32 bytes as 43 base64url characters", bk.Secret)
				}
			}
		})
	}
}
