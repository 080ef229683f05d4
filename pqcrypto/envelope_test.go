package pqcrypto

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSealOpenRoundTrip(t *testing.T) {
	mixed := make([]Algorithm, 50)
	for i := range mixed {
		mixed[i] = []Algorithm{MLKEM768, XWing}[i%2]
	}
	tests := []struct {
		name      string
		algs      []Algorithm // one recipient per entry
		plaintext []byte
	}{
		{"1 ml-kem", []Algorithm{MLKEM768}, []byte("hello")},
		{"1 x-wing", []Algorithm{XWing}, []byte("hello")},
		{"2 ml-kem", []Algorithm{MLKEM768, MLKEM768}, []byte("hello")},
		{"2 x-wing", []Algorithm{XWing, XWing}, []byte("hello")},
		{"2 mixed", []Algorithm{XWing, MLKEM768}, []byte("hello")},
		{"50 mixed", mixed, []byte("hello, room")},
		{"empty plaintext", []Algorithm{MLKEM768, XWing}, nil},
		{"1 MiB plaintext", []Algorithm{MLKEM768, XWing}, bytes.Repeat([]byte{0xa5}, 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ms := make([]member, len(tt.algs))
			for i, alg := range tt.algs {
				ms[i] = testMember(t, i, alg)
			}
			h := testHeader()
			env, err := Seal(nil, h, tt.plaintext, recipientsOf(ms))
			if err != nil {
				t.Fatal(err)
			}
			if len(env.Keys) != len(ms) || len(env.Nonce) != NonceSize || len(env.Ciphertext) != len(tt.plaintext)+tagSize {
				t.Fatalf("envelope shape: %d keys, nonce %d, ciphertext %d", len(env.Keys), len(env.Nonce), len(env.Ciphertext))
			}
			// What the server receives must pass its checks and still open.
			algOf := func(kid string) (Algorithm, bool) {
				for _, m := range ms {
					if m.KeyID == kid {
						return m.Algorithm, true
					}
				}
				return "", false
			}
			wired, err := ValidateWire(env.Wire(), algOf)
			if err != nil {
				t.Fatalf("ValidateWire(sealed) = %v", err)
			}
			for i, m := range ms {
				if rk := env.Keys[i]; rk.UserID != m.UserID || rk.KeyID != m.KeyID ||
					len(rk.KEMCiphertext) != m.Algorithm.CiphertextSize() || len(rk.WrappedKey) != WrappedKeySize {
					t.Fatalf("keys[%d] = user %s key %s, sizes %d/%d", i, rk.UserID, rk.KeyID, len(rk.KEMCiphertext), len(rk.WrappedKey))
				}
				got, err := Open(h, wired, m.UserID, m.kp, m.KeyID)
				if err != nil {
					t.Fatalf("recipient %d: Open = %v", i, err)
				}
				if !bytes.Equal(got, tt.plaintext) {
					t.Fatalf("recipient %d: plaintext differs", i)
				}
			}
			// Only the recipient's own seed opens their key.
			other := testMember(t, len(ms), tt.algs[0])
			if _, err := Open(h, env, ms[0].UserID, other.kp, ms[0].KeyID); !errors.Is(err, ErrCannotOpen) {
				t.Errorf("Open with someone else's key pair = %v", err)
			}
			if _, err := Open(h, env, other.UserID, other.kp, other.KeyID); !errors.Is(err, ErrCannotOpen) {
				t.Errorf("Open by a non-recipient = %v", err)
			}
		})
	}
}

func TestSealDeterministic(t *testing.T) {
	ms := []member{testMember(t, 0, MLKEM768), testMember(t, 1, XWing)}
	seal := func(label string) WireEnvelope {
		env, err := Seal(newCtrReader(label), testHeader(), []byte("same"), recipientsOf(ms))
		if err != nil {
			t.Fatal(err)
		}
		return env.Wire()
	}
	a, b, c := seal("x"), seal("x"), seal("y")
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Error("same randomness gave different envelopes")
	}
	if a.Ciphertext == c.Ciphertext || a.Keys[0].KEMCiphertext == c.Keys[0].KEMCiphertext {
		t.Error("different randomness gave the same envelope")
	}
}

func TestSealRejects(t *testing.T) {
	good := []member{testMember(t, 0, MLKEM768), testMember(t, 1, XWing)}
	tests := []struct {
		name   string
		edit   func(h *Header, rs []Recipient) []Recipient
		rand   string // when set, randomness runs out after these bytes
		errHas string
	}{
		{"bad kind", func(h *Header, rs []Recipient) []Recipient { h.Kind = "file"; return rs }, "", "kind"},
		{"upper-case object id", func(h *Header, rs []Recipient) []Recipient { h.ObjectID = strings.ToUpper(h.ObjectID); return rs }, "", "object id"},
		{"braced sender id", func(h *Header, rs []Recipient) []Recipient { h.SenderID = "{" + h.SenderID[1:35] + "}"; return rs }, "", "sender id"},
		{"empty conversation id", func(h *Header, rs []Recipient) []Recipient { h.ConversationID = ""; return rs }, "", "conversation id"},
		{"no recipients", func(h *Header, rs []Recipient) []Recipient { return nil }, "", "no recipients"},
		{"duplicate user", func(h *Header, rs []Recipient) []Recipient { rs[1].UserID = rs[0].UserID; return rs }, "", "already is recipient 0"},
		{"bad user id", func(h *Header, rs []Recipient) []Recipient { rs[1].UserID = "bob"; return rs }, "", "user id"},
		{"bad key id", func(h *Header, rs []Recipient) []Recipient {
			rs[1].KeyID = strings.ReplaceAll(rs[1].KeyID, "-", "")
			return rs
		}, "", "key id"},
		{"unknown algorithm", func(h *Header, rs []Recipient) []Recipient { rs[1].Algorithm = "RSA"; return rs }, "", "unknown algorithm"},
		{"algorithm mismatch", func(h *Header, rs []Recipient) []Recipient { rs[1].Algorithm = MLKEM768; return rs }, "", "must be 1184 bytes"},
		{"short key", func(h *Header, rs []Recipient) []Recipient { rs[0].PublicKey = rs[0].PublicKey[:100]; return rs }, "", "must be 1184 bytes"},
		{"rand runs out", func(h *Header, rs []Recipient) []Recipient { return rs }, strings.Repeat("r", KeySize+NonceSize+10), "encapsulation seed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := testHeader()
			rs := tt.edit(&h, recipientsOf(good))
			rand := newCtrReader("reject")
			var env *Envelope
			var err error
			if tt.rand != "" {
				env, err = Seal(strings.NewReader(tt.rand), h, []byte("x"), rs)
			} else {
				env, err = Seal(rand, h, []byte("x"), rs)
			}
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Fatalf("Seal = %v, want an error containing %q", err, tt.errHas)
			}
			if env != nil {
				t.Error("Seal returned an envelope with its error")
			}
			if tt.rand == "" && rand.ctr != 0 {
				t.Error("Seal drew randomness before rejecting its input")
			}
		})
	}
}

// TestOpenTamper flips bytes and changes every bound value: each must make
// Open fail with exactly ErrCannotOpen, never a wrong plaintext.
func TestOpenTamper(t *testing.T) {
	ms := []member{testMember(t, 0, MLKEM768), testMember(t, 1, XWing)}
	h := testHeader()
	plaintext := []byte("attack at dawn, bring quantum computers")
	env, err := Seal(newCtrReader("tamper"), h, plaintext, recipientsOf(ms))
	if err != nil {
		t.Fatal(err)
	}
	// Deep copies, so every case starts from the genuine envelope.
	clone := func() *Envelope {
		c := &Envelope{Ciphertext: bytes.Clone(env.Ciphertext), Nonce: bytes.Clone(env.Nonce)}
		for _, k := range env.Keys {
			c.Keys = append(c.Keys, RecipientKey{k.UserID, k.KeyID, bytes.Clone(k.KEMCiphertext), bytes.Clone(k.WrappedKey)})
		}
		return c
	}
	firstMidLast := func(n int) []int { return []int{0, n / 2, n - 1} }
	every := func(n int) []int {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	expectFail := func(t *testing.T, h Header, e *Envelope, m member, keyID string) {
		t.Helper()
		got, err := Open(h, e, m.UserID, m.kp, keyID)
		if !errors.Is(err, ErrCannotOpen) || err.Error() != "cannot open envelope" || got != nil {
			t.Errorf("Open = %q, %v; want ErrCannotOpen", got, err)
		}
	}

	for ri, m := range ms {
		t.Run(string(m.Algorithm), func(t *testing.T) {
			if got, err := Open(h, clone(), m.UserID, m.kp, m.KeyID); err != nil || !bytes.Equal(got, plaintext) {
				t.Fatalf("untampered Open = %q, %v", got, err)
			}
			flips := []struct {
				field string
				bytes func(e *Envelope) []byte
				idx   []int
			}{
				{"ciphertext", func(e *Envelope) []byte { return e.Ciphertext }, firstMidLast(len(env.Ciphertext))},
				{"nonce", func(e *Envelope) []byte { return e.Nonce }, every(NonceSize)},
				{"kemCiphertext", func(e *Envelope) []byte { return e.Keys[ri].KEMCiphertext }, firstMidLast(m.Algorithm.CiphertextSize())},
				{"wrappedKey", func(e *Envelope) []byte { return e.Keys[ri].WrappedKey }, every(WrappedKeySize)},
			}
			for _, f := range flips {
				for _, i := range f.idx {
					e := clone()
					f.bytes(e)[i] ^= 0xff
					t.Run(fmt.Sprintf("flip %s[%d]", f.field, i), func(t *testing.T) { expectFail(t, h, e, m, m.KeyID) })
				}
			}

			headers := map[string]func(h *Header){
				"object id":    func(h *Header) { h.ObjectID = testUUID(uuidObject, 2) },
				"sender":       func(h *Header) { h.SenderID = testUUID(uuidUser, 1) },
				"conversation": func(h *Header) { h.ConversationID = testUUID(uuidRoom, 2) },
				"kind":         func(h *Header) { h.Kind = KindDocument },
			}
			for name, edit := range headers {
				t.Run("change "+name, func(t *testing.T) {
					h2 := h
					edit(&h2)
					expectFail(t, h2, clone(), m, m.KeyID)
				})
			}

			t.Run("change key id in envelope", func(t *testing.T) {
				// The key id is bound through the HKDF info: relabelling a
				// key does not make it open under another id.
				e := clone()
				e.Keys[ri].KeyID = testUUID(uuidKey, 99)
				expectFail(t, h, e, m, e.Keys[ri].KeyID)
			})
			t.Run("ask for another key id", func(t *testing.T) {
				expectFail(t, h, clone(), m, testUUID(uuidKey, 99))
			})
			t.Run("move key to another user", func(t *testing.T) {
				e := clone()
				rk := e.Keys[ri]
				rk.UserID = testUUID(uuidUser, 99)
				if _, err := OpenWith(h, e.Ciphertext, e.Nonce, rk, m.kp); !errors.Is(err, ErrCannotOpen) {
					t.Errorf("OpenWith = %v", err)
				}
			})
			t.Run("truncate ciphertext", func(t *testing.T) {
				e := clone()
				e.Ciphertext = e.Ciphertext[:len(e.Ciphertext)-1]
				expectFail(t, h, e, m, m.KeyID)
			})
			t.Run("wrong-length nonce", func(t *testing.T) {
				e := clone()
				e.Nonce = append(e.Nonce, 0)
				expectFail(t, h, e, m, m.KeyID)
			})
			t.Run("wrapped key from the other recipient", func(t *testing.T) {
				e := clone()
				e.Keys[ri].WrappedKey = e.Keys[1-ri].WrappedKey
				expectFail(t, h, e, m, m.KeyID)
			})
		})
	}

	t.Run("nil inputs", func(t *testing.T) {
		m := ms[0]
		if _, err := Open(h, nil, m.UserID, m.kp, m.KeyID); !errors.Is(err, ErrCannotOpen) {
			t.Errorf("Open(nil envelope) = %v", err)
		}
		if _, err := Open(h, clone(), m.UserID, nil, m.KeyID); !errors.Is(err, ErrCannotOpen) {
			t.Errorf("Open(nil key pair) = %v", err)
		}
		bad := *m.kp
		bad.Seed = bad.Seed[:10]
		if _, err := Open(h, clone(), m.UserID, &bad, m.KeyID); !errors.Is(err, ErrCannotOpen) {
			t.Errorf("Open(short seed) = %v", err)
		}
		bad = *ms[1].kp
		bad.Algorithm = MLKEM768 // an X-Wing key pair mislabelled
		if _, err := Open(h, clone(), ms[1].UserID, &bad, ms[1].KeyID); !errors.Is(err, ErrCannotOpen) {
			t.Errorf("Open(mislabelled key pair) = %v", err)
		}
	})
}
