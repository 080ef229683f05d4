package pqcrypto

import (
	"bytes"
	"errors"
	"testing"
)

func FuzzDecodeB64(f *testing.F) {
	for _, s := range []string{"", "AA==", "AAE=", "AAEC", "AB==", "AA", "AA==\n", "A\rA==", " AAAA", "-_-_", "AA==AA==", "====", "SGVsbG8="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := DecodeB64(s)
		if err != nil {
			return
		}
		// Strictness means one spelling per value.
		if EncodeB64(b) != s {
			t.Fatalf("DecodeB64(%q) accepted a non-canonical form of %x", s, b)
		}
	})
}

// FuzzValidateWire builds an envelope of up to three recipient keys from
// field-wise inputs; copies share the user id, so n = 2 or 3 exercises the
// duplicate check.
func FuzzValidateWire(f *testing.F) {
	mlKID, xwKID := testUUID(uuidKey, 0), testUUID(uuidKey, 1)
	algOf := func(kid string) (Algorithm, bool) {
		switch kid {
		case mlKID:
			return MLKEM768, true
		case xwKID:
			return XWing, true
		}
		return "", false
	}
	b64n := func(n int) string { return EncodeB64(make([]byte, n)) }
	uid := testUUID(uuidUser, 0)
	f.Add(b64n(16), b64n(12), uid, mlKID, b64n(1088), b64n(48), uint8(1))
	f.Add(b64n(100), b64n(12), uid, xwKID, b64n(1120), b64n(48), uint8(1))
	f.Add(b64n(100), b64n(12), uid, xwKID, b64n(1088), b64n(48), uint8(1))
	f.Add(b64n(100), b64n(12), uid, testUUID(uuidKey, 9), b64n(3), b64n(48), uint8(1))
	f.Add(b64n(100), b64n(12), uid, mlKID, b64n(1088), b64n(48), uint8(2))
	f.Add(b64n(15), b64n(11), "x", "", "!!", "AA", uint8(0))
	f.Add("", "", "", "", "", "", uint8(3))
	f.Fuzz(func(t *testing.T, ct, nonce, userID, keyID, kemCT, wrapped string, n uint8) {
		w := WireEnvelope{Ciphertext: ct, Nonce: nonce}
		for range n % 4 {
			w.Keys = append(w.Keys, WireRecipientKey{UserID: userID, KeyID: keyID, KEMCiphertext: kemCT, WrappedKey: wrapped})
		}
		env, err := ValidateWire(w, algOf)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field == "" || ve.Reason == "" || env != nil {
				t.Fatalf("ValidateWire = %v, %v: want only a complete *ValidationError", env, err)
			}
			return
		}
		if len(env.Nonce) != NonceSize || len(env.Ciphertext) < tagSize || len(env.Keys) > 1 {
			t.Fatalf("accepted nonce %d, ciphertext %d, %d keys of one user", len(env.Nonce), len(env.Ciphertext), len(env.Keys))
		}
		for _, k := range env.Keys {
			if alg, ok := algOf(k.KeyID); (ok && len(k.KEMCiphertext) != alg.CiphertextSize()) || len(k.WrappedKey) != WrappedKeySize {
				t.Fatalf("accepted kem ciphertext %d, wrapped key %d", len(k.KEMCiphertext), len(k.WrappedKey))
			}
		}
		rt := env.Wire()
		if rt.Ciphertext != w.Ciphertext || rt.Nonce != w.Nonce || len(rt.Keys) != len(w.Keys) {
			t.Fatal("accepted envelope does not re-encode to its input")
		}
		for i := range rt.Keys {
			if rt.Keys[i] != w.Keys[i] {
				t.Fatalf("keys[%d] does not re-encode to its input", i)
			}
		}
	})
}

// FuzzOpen feeds garbage in place of each part of a genuine envelope. Open
// must never panic, must fail with exactly ErrCannotOpen, and may succeed
// only on the genuine parts.
func FuzzOpen(f *testing.F) {
	ms := []member{testMember(f, 0, MLKEM768), testMember(f, 1, XWing)}
	h := testHeader()
	env, err := Seal(newCtrReader("fuzz"), h, []byte("genuine"), recipientsOf(ms))
	if err != nil {
		f.Fatal(err)
	}
	for i := range ms {
		rk := env.Keys[i]
		f.Add(env.Ciphertext, env.Nonce, rk.KEMCiphertext, rk.WrappedKey, uint8(i))
		f.Add(env.Ciphertext[1:], env.Nonce, rk.KEMCiphertext, rk.WrappedKey, uint8(i))
		f.Add(env.Ciphertext, env.Nonce[:11], rk.KEMCiphertext, rk.WrappedKey, uint8(i))
		f.Add(env.Ciphertext, env.Nonce, rk.KEMCiphertext[:100], rk.WrappedKey, uint8(i))
		f.Add(env.Ciphertext, env.Nonce, rk.KEMCiphertext, rk.WrappedKey[:47], uint8(i))
		f.Add(env.Ciphertext, env.Nonce, env.Keys[1-i].KEMCiphertext, rk.WrappedKey, uint8(i))
		f.Add([]byte{}, make([]byte, 12), make([]byte, ms[i].Algorithm.CiphertextSize()), make([]byte, 48), uint8(i))
	}
	f.Add([]byte(nil), []byte(nil), []byte(nil), []byte(nil), uint8(7))
	f.Fuzz(func(t *testing.T, ct, nonce, kemCT, wrapped []byte, who uint8) {
		i := int(who) % len(ms)
		m := ms[i]
		e := &Envelope{Ciphertext: ct, Nonce: nonce, Keys: []RecipientKey{{m.UserID, m.KeyID, kemCT, wrapped}}}
		pt, err := Open(h, e, m.UserID, m.kp, m.KeyID)
		if err != nil {
			if !errors.Is(err, ErrCannotOpen) || err.Error() != "cannot open envelope" || pt != nil {
				t.Fatalf("Open = %q, %v; want ErrCannotOpen", pt, err)
			}
			return
		}
		genuine := env.Keys[i]
		if !bytes.Equal(ct, env.Ciphertext) || !bytes.Equal(nonce, env.Nonce) ||
			!bytes.Equal(kemCT, genuine.KEMCiphertext) || !bytes.Equal(wrapped, genuine.WrappedKey) || string(pt) != "genuine" {
			t.Fatalf("Open accepted a forged envelope: %q", pt)
		}
	})
}
