package pqcrypto_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/circl/kem"
	"github.com/cloudflare/circl/kem/mlkem/mlkem768"
	"github.com/cloudflare/circl/kem/xwing"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"

	"github.com/qchat/qchat/pqcrypto"
)

// The envelope v2 vectors are fixed: version 2 is planned, and whatever
// implements it must reproduce them. Until then this test holds the
// specification to them: it recomputes every value from the rules written in
// docs/PROTOCOL-V2.md, using the primitives alone, so that the document and the
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
	Envelopes []struct {
		Name, Sender string
		Meta         struct{ Kind, OID, SID, CID, AttachmentID, Name, MimeType string }
		Plaintext    string
		Cek, Nonce   string
		EncapSeeds   map[string]string
		Envelope     struct {
			Ciphertext, Nonce string
			Keys              []struct{ UserID, KeyID, KemCiphertext, WrappedKey string }
			Signature         string
		}
		KeyDigests                      []string
		TranscriptHex, TranscriptSha256 string
	}
	SafetyNumbers []struct{ A, B, Number string }
	Argon2id      []struct {
		Secret, Salt string
		T, M, P      uint32
		Key          string
	}
	Backup, BackupPassphrase v2Backup
}

type v2Backup struct {
	UID, Secret, SecretNfd, PlaintextJSON, Salt, Nonce string
	T, M, P                                            uint32
	Sealed                                             string
}

func loadV2Vectors(t *testing.T) *v2Vectors {
	t.Helper()
	b, err := os.ReadFile("testdata/envelope-v2-vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v v2Vectors
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&v); err != nil {
		t.Fatal(err)
	}
	if len(v.Identities) != 3 || len(v.KEMKeys) != 4 || len(v.Envelopes) != 2 || len(v.SafetyNumbers) != 2 || len(v.Argon2id) != 3 {
		t.Fatalf("vectors incomplete: %d identities, %d KEM keys, %d envelopes", len(v.Identities), len(v.KEMKeys), len(v.Envelopes))
	}
	return &v
}

func b64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

// v2Context is the FIPS 204 context string of every QChat v2 signature.
var v2Context = []byte("qchat/v2")

func identityKey(t *testing.T, seedB64 string) (*mldsa65.PublicKey, *mldsa65.PrivateKey) {
	t.Helper()
	seed := b64(t, seedB64)
	if len(seed) != mldsa65.SeedSize || mldsa65.SeedSize != 32 {
		t.Fatalf("identity seed is %d bytes", len(seed))
	}
	return mldsa65.NewKeyFromSeed((*[32]byte)(seed))
}

func kemScheme(t *testing.T, alg string) kem.Scheme {
	t.Helper()
	switch alg {
	case "ML_KEM_768":
		return mlkem768.Scheme()
	case "X_WING":
		return xwing.Scheme()
	}
	t.Fatalf("algorithm %q", alg)
	return nil
}

func TestV2VectorsIdentitiesAndCertificates(t *testing.T) {
	v := loadV2Vectors(t)
	if mldsa65.PublicKeySize != 1952 || mldsa65.SignatureSize != 3309 {
		t.Fatalf("ML-DSA-65 sizes %d/%d differ from the specification", mldsa65.PublicKeySize, mldsa65.SignatureSize)
	}
	for name, id := range v.Identities {
		pk, _ := identityKey(t, id.Seed)
		raw := pk.Bytes()
		sum := sha256.Sum256(raw)
		if !bytes.Equal(raw, b64(t, id.PublicKey)) || hex.EncodeToString(sum[:]) != id.PublicKeySha256 {
			t.Errorf("%s: identity public key from the seed differs", name)
		}
		if got := pqcrypto.Fingerprint(raw); got != id.Fingerprint {
			t.Errorf("%s: fingerprint %q, want %q", name, got, id.Fingerprint)
		}
	}
	for _, k := range v.KEMKeys {
		owner, ok := v.Identities[k.Owner]
		if !ok || owner.UID != k.UserID {
			t.Fatalf("KEM key %s: owner %s unknown", k.KeyID, k.Owner)
		}
		kp, err := pqcrypto.KeyPairFromSeed(pqcrypto.Algorithm(k.Algorithm), b64(t, k.Seed))
		if err != nil || !bytes.Equal(kp.PublicKey, b64(t, k.PublicKey)) {
			t.Errorf("KEM key %s: public key from the seed differs (%v)", k.KeyID, err)
		}
		prefix := fmt.Sprintf("qchat/v2/kem-key|%s|%d|", k.Algorithm, k.Seq)
		if prefix != k.CertificateMessagePrefix {
			t.Errorf("KEM key %s: certificate prefix %q, want %q", k.KeyID, prefix, k.CertificateMessagePrefix)
		}
		msg := append([]byte(prefix), b64(t, k.PublicKey)...)
		pk, sk := identityKey(t, owner.Seed)
		cert := b64(t, k.CertificateDeterministic)
		if !mldsa65.Verify(pk, msg, v2Context, cert) {
			t.Errorf("KEM key %s: certificate does not verify over prefix || pk", k.KeyID)
		}
		sig := make([]byte, mldsa65.SignatureSize)
		if err := mldsa65.SignTo(sk, msg, v2Context, false, sig); err != nil || !bytes.Equal(sig, cert) {
			t.Errorf("KEM key %s: deterministic certificate differs (%v)", k.KeyID, err)
		}
	}
}

// enc is the transcript's length-prefixed encoding.
func enc(b []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(b))), b...)
}

func TestV2VectorsEnvelopes(t *testing.T) {
	v := loadV2Vectors(t)
	kemKeys := map[string]int{}
	for i, k := range v.KEMKeys {
		kemKeys[k.KeyID] = i
	}
	for _, e := range v.Envelopes {
		t.Run(e.Name, func(t *testing.T) {
			m := e.Meta
			ciphertext, nonce := b64(t, e.Envelope.Ciphertext), b64(t, e.Envelope.Nonce)
			if len(nonce) != 12 || e.Nonce != e.Envelope.Nonce {
				t.Fatalf("nonce %q", e.Envelope.Nonce)
			}
			// The transcript, as docs/PROTOCOL-V2.md §3.2 writes it.
			keys := slices.Clone(e.Envelope.Keys)
			slices.SortFunc(keys, func(a, b struct{ UserID, KeyID, KemCiphertext, WrappedKey string }) int {
				return bytes.Compare([]byte(a.UserID), []byte(b.UserID))
			})
			if slices.Equal(keys, e.Envelope.Keys) {
				t.Error("the vector's keys are already sorted: the sort is not exercised")
			}
			var T []byte
			for _, s := range []string{"qchat/v2/envelope", m.Kind, m.OID, m.SID, m.CID, m.AttachmentID, m.Name, m.MimeType} {
				T = append(T, enc([]byte(s))...)
			}
			ctSum := sha256.Sum256(ciphertext)
			T = append(append(T, enc(nonce)...), enc(ctSum[:])...)
			T = binary.BigEndian.AppendUint32(T, uint32(len(keys)))
			var digests []string
			for _, k := range keys {
				leaf := sha256.Sum256(slices.Concat(enc([]byte(k.UserID)), enc([]byte(k.KeyID)), enc(b64(t, k.KemCiphertext)), enc(b64(t, k.WrappedKey))))
				T = append(T, leaf[:]...)
				digests = append(digests, base64.StdEncoding.EncodeToString(leaf[:]))
			}
			if hex.EncodeToString(T) != e.TranscriptHex {
				t.Errorf("transcript differs from the specification's\n got %x\nwant %s", T, e.TranscriptHex)
			}
			M := sha256.Sum256(T)
			if hex.EncodeToString(M[:]) != e.TranscriptSha256 {
				t.Errorf("SHA-256(T) %x, want %s", M, e.TranscriptSha256)
			}
			if !slices.Equal(digests, e.KeyDigests) {
				t.Errorf("keyDigests %v, want %v", digests, e.KeyDigests)
			}

			sender := v.Identities[e.Sender]
			if sender.UID != m.SID {
				t.Fatalf("sender %s is not sid %s", e.Sender, m.SID)
			}
			pk, sk := identityKey(t, sender.Seed)
			signature := b64(t, e.Envelope.Signature)
			if !mldsa65.Verify(pk, M[:], v2Context, signature) {
				t.Error("signature does not verify over SHA-256(T)")
			}
			sig := make([]byte, mldsa65.SignatureSize)
			if err := mldsa65.SignTo(sk, M[:], v2Context, false, sig); err != nil || !bytes.Equal(sig, signature) {
				t.Errorf("deterministic signature differs (%v)", err)
			}

			// Every recipient opens with the v2 labels (§3.1).
			aad := []byte("qchat/v2/" + m.Kind + "|" + m.OID + "|" + m.SID + "|" + m.CID)
			for _, k := range e.Envelope.Keys {
				i, ok := kemKeys[k.KeyID]
				if !ok {
					t.Fatalf("no KEM key %s", k.KeyID)
				}
				kk := v.KEMKeys[i]
				s := kemScheme(t, kk.Algorithm)
				kpk, ksk := s.DeriveKeyPair(b64(t, kk.Seed))
				ct, _, err := s.EncapsulateDeterministically(kpk, b64(t, e.EncapSeeds[k.UserID]))
				if err != nil || !bytes.Equal(ct, b64(t, k.KemCiphertext)) {
					t.Errorf("%s: derandomised encapsulation differs (%v)", k.KeyID, err)
				}
				ss, err := s.Decapsulate(ksk, b64(t, k.KemCiphertext))
				if err != nil {
					t.Fatal(err)
				}
				kek, err := hkdf.Key(sha256.New, ss, nil, "qchat/v2/wrap|"+m.OID+"|"+k.UserID+"|"+k.KeyID, 32)
				if err != nil {
					t.Fatal(err)
				}
				cek := gcmOpen(t, kek, make([]byte, 12), b64(t, k.WrappedKey), nil)
				if !bytes.Equal(cek, b64(t, e.Cek)) {
					t.Errorf("%s: unwrapped cek differs", k.KeyID)
				}
				if plain := gcmOpen(t, cek, nonce, ciphertext, aad); !bytes.Equal(plain, b64(t, e.Plaintext)) {
					t.Errorf("%s: plaintext differs", k.KeyID)
				}
			}
		})
	}
}

func gcmOpen(t *testing.T, key, nonce, sealed, aad []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := g.Open(nil, nonce, sealed, aad)
	if err != nil {
		t.Fatalf("AES-GCM open: %v", err)
	}
	return plain
}

// safetyDigits is docs/PROTOCOL-V2.md §5 for one user.
func safetyDigits(uid string, ik []byte) string {
	h := sha512.Sum512(slices.Concat([]byte("qchat/v2/safety"), []byte{0}, []byte(uid), []byte{0}, ik))
	for range 5200 {
		h = sha512.Sum512(slices.Concat(h[:], ik))
	}
	var sb strings.Builder
	for i := range 6 {
		var n uint64
		for _, b := range h[i*5 : i*5+5] {
			n = n<<8 | uint64(b)
		}
		fmt.Fprintf(&sb, "%05d", n%100000)
	}
	return sb.String()
}

func TestV2VectorsSafetyNumbers(t *testing.T) {
	v := loadV2Vectors(t)
	for _, sn := range v.SafetyNumbers {
		a, b := v.Identities[sn.A], v.Identities[sn.B]
		da, db := safetyDigits(a.UID, b64(t, a.PublicKey)), safetyDigits(b.UID, b64(t, b.PublicKey))
		if b.UID < a.UID {
			da, db = db, da
		}
		if got := da + db; got != sn.Number {
			t.Errorf("%s/%s: safety number %s, want %s", sn.A, sn.B, got, sn.Number)
		}
	}
}

func backupKey(secret string, salt []byte, tt, m, p uint32) []byte {
	return argon2.IDKey([]byte(norm.NFC.String(secret)), salt, tt, m, uint8(p), 32)
}

func TestV2VectorsKeyBackup(t *testing.T) {
	v := loadV2Vectors(t)
	for _, a := range v.Argon2id {
		if got := hex.EncodeToString(backupKey(a.Secret, b64(t, a.Salt), a.T, a.M, a.P)); got != a.Key {
			t.Errorf("Argon2id of %q: %s, want %s", a.Secret, got, a.Key)
		}
	}
	for name, bk := range map[string]v2Backup{"recovery key": v.Backup, "passphrase": v.BackupPassphrase} {
		t.Run(name, func(t *testing.T) {
			var sealed struct {
				V           json.Number
				KDF         string
				T, M, P     json.Number
				Salt, Nonce string
				Ciphertext  string
			}
			dec := json.NewDecoder(strings.NewReader(bk.Sealed))
			dec.UseNumber()
			if err := dec.Decode(&sealed); err != nil {
				t.Fatal(err)
			}
			if sealed.V.String() != "2" || sealed.KDF != "argon2id" || sealed.T.String() != fmt.Sprint(bk.T) ||
				sealed.M.String() != fmt.Sprint(bk.M) || sealed.P.String() != fmt.Sprint(bk.P) || sealed.Salt != bk.Salt || sealed.Nonce != bk.Nonce {
				t.Errorf("sealed form %s does not match its parameters", bk.Sealed)
			}
			salt, nonce := b64(t, bk.Salt), b64(t, bk.Nonce)
			if len(salt) != 16 || len(nonce) != 12 {
				t.Fatalf("salt %d bytes, nonce %d bytes", len(salt), len(nonce))
			}
			key := backupKey(bk.Secret, salt, bk.T, bk.M, bk.P)
			plain := gcmOpen(t, key, nonce, b64(t, sealed.Ciphertext), []byte("qchat/v2/backup|"+bk.UID))
			if string(plain) != bk.PlaintextJSON {
				t.Errorf("backup plaintext %s, want %s", plain, bk.PlaintextJSON)
			}
			if bk.SecretNfd != "" && !bytes.Equal(backupKey(bk.SecretNfd, salt, bk.T, bk.M, bk.P), key) {
				t.Error("the NFD spelling of the passphrase gives another key")
			}
			if name == "recovery key" {
				if raw, err := base64.RawURLEncoding.DecodeString(bk.Secret); err != nil || len(raw) != 32 || len(bk.Secret) != 43 {
					t.Errorf("recovery key %q is not 32 bytes as 43 base64url characters", bk.Secret)
				}
			}
		})
	}
}
