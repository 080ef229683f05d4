package pqcrypto

import (
	"bytes"
	"crypto/mlkem"
	"strings"
	"testing"
)

func TestAlgorithmSizes(t *testing.T) {
	tests := []struct {
		alg                  Algorithm
		valid                bool
		pub, ct, seed, encap int
	}{
		{MLKEM768, true, 1184, 1088, 64, 32},
		{XWing, true, 1216, 1120, 32, 64},
		{"ml_kem_768", false, 0, 0, 0, 0},
		{"", false, 0, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(string(tt.alg), func(t *testing.T) {
			if got := tt.alg.Valid(); got != tt.valid {
				t.Errorf("Valid() = %v, want %v", got, tt.valid)
			}
			if got := tt.alg.PublicKeySize(); got != tt.pub {
				t.Errorf("PublicKeySize() = %d, want %d", got, tt.pub)
			}
			if got := tt.alg.CiphertextSize(); got != tt.ct {
				t.Errorf("CiphertextSize() = %d, want %d", got, tt.ct)
			}
			if got := tt.alg.SeedSize(); got != tt.seed {
				t.Errorf("SeedSize() = %d, want %d", got, tt.seed)
			}
			if tt.valid {
				if got := tt.alg.scheme().EncapsulationSeedSize(); got != tt.encap {
					t.Errorf("EncapsulationSeedSize() = %d, want %d (the vector's rand order documents it)", got, tt.encap)
				}
			}
		})
	}
}

func TestParseAlgorithm(t *testing.T) {
	tests := []struct {
		in      string
		want    Algorithm
		wantErr bool
	}{
		{"ML_KEM_768", MLKEM768, false},
		{"X_WING", XWing, false},
		{"", "", true},
		{"X-Wing", "", true},
		{"ML_KEM_768 ", "", true},
	}
	for _, tt := range tests {
		got, err := ParseAlgorithm(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseAlgorithm(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestKeyPair(t *testing.T) {
	for _, alg := range []Algorithm{MLKEM768, XWing} {
		t.Run(string(alg), func(t *testing.T) {
			kp, err := GenerateKeyPair(alg, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(kp.PublicKey) != alg.PublicKeySize() || len(kp.Seed) != alg.SeedSize() || kp.Algorithm != alg {
				t.Fatalf("key pair sizes %d/%d, algorithm %q", len(kp.PublicKey), len(kp.Seed), kp.Algorithm)
			}
			again, err := KeyPairFromSeed(alg, kp.Seed)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.PublicKey, kp.PublicKey) {
				t.Error("KeyPairFromSeed does not reproduce the public key")
			}
			if err := ValidatePublicKey(alg, kp.PublicKey); err != nil {
				t.Errorf("ValidatePublicKey(own key) = %v", err)
			}
			if _, err := KeyPairFromSeed(alg, kp.Seed[1:]); err == nil {
				t.Error("KeyPairFromSeed accepted a short seed")
			}
			if _, err := GenerateKeyPair(alg, strings.NewReader("short")); err == nil {
				t.Error("GenerateKeyPair succeeded on an exhausted reader")
			}
		})
	}
	if _, err := GenerateKeyPair("RSA", nil); err == nil {
		t.Error("GenerateKeyPair accepted an unknown algorithm")
	}
}

func TestValidatePublicKey(t *testing.T) {
	ml := testMember(t, 1, MLKEM768).PublicKey
	xw := testMember(t, 2, XWing).PublicKey
	// A coefficient of 0xfff is above q = 3329: FIPS 203's modulus check
	// must reject it. X-Wing embeds the ML-KEM key first, so the same
	// corruption applies.
	badML := append([]byte(nil), ml...)
	badML[0], badML[1] = 0xff, 0x0f
	badXW := append([]byte(nil), xw...)
	badXW[0], badXW[1] = 0xff, 0x0f

	tests := []struct {
		name    string
		alg     Algorithm
		pub     []byte
		wantErr bool
	}{
		{"ml-kem ok", MLKEM768, ml, false},
		{"x-wing ok", XWing, xw, false},
		{"ml-kem key as x-wing", XWing, ml, true},
		{"x-wing key as ml-kem", MLKEM768, xw, true},
		{"ml-kem short", MLKEM768, ml[:len(ml)-1], true},
		{"ml-kem coefficient above q", MLKEM768, badML, true},
		{"x-wing coefficient above q", XWing, badXW, true},
		{"empty", MLKEM768, nil, true},
		{"unknown algorithm", "RSA", ml, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := ValidatePublicKey(tt.alg, tt.pub); (err != nil) != tt.wantErr {
				t.Errorf("ValidatePublicKey = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestFingerprint(t *testing.T) {
	tests := []struct {
		pub  []byte
		want string
	}{
		// SHA-256("") = e3b0c442 98fc1c14 9afbf4c8 996fb924 27ae41e4 ...
		{nil, "e3b0 c442 98fc 1c14 9afb f4c8 996f b924"},
		// SHA-256("abc") = ba7816bf 8f01cfea 414140de 5dae2223 b00361a3 ...
		{[]byte("abc"), "ba78 16bf 8f01 cfea 4141 40de 5dae 2223"},
	}
	for _, tt := range tests {
		if got := Fingerprint(tt.pub); got != tt.want {
			t.Errorf("Fingerprint(%q) = %q, want %q", tt.pub, got, tt.want)
		}
	}
}

// TestMLKEMStdlibInterop checks that our ML-KEM-768 keys are FIPS 203 keys:
// the standard library derives the same public key from our seed, and
// ciphertexts decapsulate across both implementations.
func TestMLKEMStdlibInterop(t *testing.T) {
	m := testMember(t, 1, MLKEM768)
	dk, err := mlkem.NewDecapsulationKey768(m.kp.Seed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dk.EncapsulationKey().Bytes(), m.kp.PublicKey) {
		t.Fatal("crypto/mlkem derives a different public key from our seed")
	}
	s := MLKEM768.scheme()
	_, sk, err := deriveKeys(MLKEM768, m.kp.Seed)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("stdlib encapsulates, we decapsulate", func(t *testing.T) {
		ek, err := mlkem.NewEncapsulationKey768(m.kp.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		ss, ct := ek.Encapsulate()
		got, err := s.Decapsulate(sk, ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, ss) {
			t.Error("shared secrets differ")
		}
	})
	t.Run("we encapsulate, stdlib decapsulates", func(t *testing.T) {
		pk, err := parsePublicKey(MLKEM768, m.kp.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		ct, ss, err := s.Encapsulate(pk)
		if err != nil {
			t.Fatal(err)
		}
		got, err := dk.Decapsulate(ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, ss) {
			t.Error("shared secrets differ")
		}
	})
	t.Run("stdlib-wrapped key opens with OpenWith", func(t *testing.T) {
		// Build a recipient key with crypto/mlkem only, as an independent
		// implementation of the spec would, and open it with ours.
		h := testHeader()
		env, err := Seal(newCtrReader("interop"), h, []byte("interop"), []Recipient{m.Recipient})
		if err != nil {
			t.Fatal(err)
		}
		cek := make([]byte, KeySize)
		newCtrReader("interop").Read(cek) // the cek is the first 32 bytes drawn
		ek := dk.EncapsulationKey()
		ss, ct := ek.Encapsulate()
		kek, err := deriveKEK(ss, h.ObjectID, m.UserID, m.KeyID)
		if err != nil {
			t.Fatal(err)
		}
		wrap, err := newGCM(kek)
		if err != nil {
			t.Fatal(err)
		}
		rk := RecipientKey{UserID: m.UserID, KeyID: m.KeyID, KEMCiphertext: ct, WrappedKey: wrap.Seal(nil, zeroNonce[:], cek, nil)}
		got, err := OpenWith(h, env.Ciphertext, env.Nonce, rk, m.kp)
		if err != nil || string(got) != "interop" {
			t.Errorf("OpenWith = %q, %v", got, err)
		}
	})
}
