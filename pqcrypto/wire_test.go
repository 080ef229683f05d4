package pqcrypto

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestIsCanonicalUUID(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f", true},
		{"00000000-0000-0000-0000-000000000000", true},
		{"0B6F3C1E-8D2A-4F5B-9C7E-1A2B3C4D5E6F", false},
		{"0b6f3c1e8d2a4f5b9c7e1a2b3c4d5e6f", false},
		{"{0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f}", false},
		{"urn:uuid:0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6f", false},
		{"0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6g", false},
		{"0b6f3c1e-8d2a-4f5b-9c7e_1a2b3c4d5e6f", false},
		{"0b6f3c1e-8d2a-4f5b-9c7e-1a2b3c4d5e6", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := IsCanonicalUUID(tt.in); got != tt.want {
			t.Errorf("IsCanonicalUUID(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestDecodeB64(t *testing.T) {
	tests := []struct {
		in      string
		want    []byte
		wantErr bool
	}{
		{"", []byte{}, false},
		{"AA==", []byte{0}, false},
		{"AAE=", []byte{0, 1}, false},
		{"+/+/", []byte{0xfb, 0xff, 0xbf}, false},
		{"AA", nil, true},       // padding missing
		{"AB==", nil, true},     // stray bits in the last character
		{"AA==\n", nil, true},   // line break, which encoding/base64 skips
		{"AA\r\n==", nil, true}, // line break inside
		{" AA==", nil, true},    // whitespace
		{"-_-_", nil, true},     // URL alphabet
		{"AA==AA==", nil, true}, // padding in the middle
		{"AAA=A", nil, true},    // trailing garbage
		{"AA=", nil, true},      // short padding
		{"AAAA====", nil, true}, // extra padding
		{"SGVsbG8=", []byte("Hello"), false},
	}
	for _, tt := range tests {
		got, err := DecodeB64(tt.in)
		if (err != nil) != tt.wantErr || (!tt.wantErr && !bytes.Equal(got, tt.want)) {
			t.Errorf("DecodeB64(%q) = %x, %v; want %x, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
		if err == nil && EncodeB64(got) != tt.in {
			t.Errorf("DecodeB64(%q) accepted a non-canonical form", tt.in)
		}
	}
}

func TestValidateWire(t *testing.T) {
	ms := []member{testMember(t, 0, MLKEM768), testMember(t, 1, XWing)}
	env, err := Seal(newCtrReader("wire"), testHeader(), []byte("hi"), recipientsOf(ms))
	if err != nil {
		t.Fatal(err)
	}
	good := env.Wire()
	algOf := func(kid string) (Algorithm, bool) {
		switch kid {
		case ms[0].KeyID:
			return MLKEM768, true
		case ms[1].KeyID:
			return XWing, true
		}
		return "", false
	}
	b64n := func(n int) string { return EncodeB64(make([]byte, n)) }

	tests := []struct {
		name      string
		edit      func(w *WireEnvelope)
		field     string // "" means valid
		reasonHas string
	}{
		{"valid", func(w *WireEnvelope) {}, "", ""},
		{"unknown key id skips the length check", func(w *WireEnvelope) {
			w.Keys[1].KeyID = testUUID(uuidKey, 77)
			w.Keys[1].KEMCiphertext = b64n(5)
		}, "", ""},
		{"no keys is the server's membership error", func(w *WireEnvelope) { w.Keys = nil }, "", ""},
		{"smallest ciphertext", func(w *WireEnvelope) { w.Ciphertext = b64n(tagSize) }, "", ""},
		{"ciphertext bad base64", func(w *WireEnvelope) { w.Ciphertext = "not base64!" }, "ciphertext", "base64"},
		{"ciphertext shorter than a tag", func(w *WireEnvelope) { w.Ciphertext = b64n(15) }, "ciphertext", "at least 16 bytes, got 15"},
		{"nonce bad base64", func(w *WireEnvelope) { w.Nonce = w.Nonce[:len(w.Nonce)-1] }, "nonce", "base64"},
		{"nonce 11 bytes", func(w *WireEnvelope) { w.Nonce = b64n(11) }, "nonce", "must be 12 bytes, got 11"},
		{"nonce 13 bytes", func(w *WireEnvelope) { w.Nonce = b64n(13) }, "nonce", "must be 12 bytes, got 13"},
		{"wrapped key 47 bytes", func(w *WireEnvelope) { w.Keys[1].WrappedKey = b64n(47) }, "keys[1].wrappedKey", "must be 48 bytes, got 47"},
		{"wrapped key 49 bytes", func(w *WireEnvelope) { w.Keys[0].WrappedKey = b64n(49) }, "keys[0].wrappedKey", "must be 48 bytes, got 49"},
		{"wrapped key bad base64", func(w *WireEnvelope) { w.Keys[0].WrappedKey += "\n" }, "keys[0].wrappedKey", "base64"},
		{"ml-kem ciphertext of x-wing length", func(w *WireEnvelope) { w.Keys[0].KEMCiphertext = b64n(1120) }, "keys[0].kemCiphertext", "must be 1088 bytes for ML_KEM_768, got 1120"},
		{"x-wing ciphertext of ml-kem length", func(w *WireEnvelope) { w.Keys[1].KEMCiphertext = b64n(1088) }, "keys[1].kemCiphertext", "must be 1120 bytes for X_WING, got 1088"},
		{"empty kem ciphertext", func(w *WireEnvelope) { w.Keys[0].KEMCiphertext = "" }, "keys[0].kemCiphertext", "got 0"},
		{"kem ciphertext bad base64", func(w *WireEnvelope) { w.Keys[1].KEMCiphertext = "====" }, "keys[1].kemCiphertext", "base64"},
		{"duplicate user", func(w *WireEnvelope) { w.Keys[1].UserID = w.Keys[0].UserID }, "keys[1].userId", "already has keys[0]"},
		{"upper-case user id", func(w *WireEnvelope) { w.Keys[0].UserID = strings.ToUpper(w.Keys[0].UserID) }, "keys[0].userId", "canonical UUID"},
		{"empty key id", func(w *WireEnvelope) { w.Keys[1].KeyID = "" }, "keys[1].keyId", "canonical UUID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := good
			w.Keys = append([]WireRecipientKey(nil), good.Keys...)
			tt.edit(&w)
			got, err := ValidateWire(w, algOf)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("ValidateWire = %v, want valid", err)
				}
				if rt := got.Wire(); rt.Ciphertext != w.Ciphertext || rt.Nonce != w.Nonce || len(rt.Keys) != len(w.Keys) {
					t.Errorf("decoded envelope does not re-encode to its input")
				}
				return
			}
			var ve *ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("ValidateWire = %v (%T), want *ValidationError", err, err)
			}
			if got != nil {
				t.Error("ValidateWire returned an envelope with its error")
			}
			if ve.Field != tt.field || !strings.Contains(ve.Reason, tt.reasonHas) {
				t.Errorf("ValidationError{%q, %q}, want field %q and reason containing %q", ve.Field, ve.Reason, tt.field, tt.reasonHas)
			}
			if want := tt.field + ": "; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("Error() = %q, want it to start with %q", err, want)
			}
		})
	}

	t.Run("nil algOf", func(t *testing.T) {
		if _, err := ValidateWire(good, nil); err != nil {
			t.Errorf("ValidateWire(nil algOf) = %v", err)
		}
	})
	t.Run("message", func(t *testing.T) {
		w := good
		w.Keys = append([]WireRecipientKey(nil), good.Keys...)
		w.Keys[1].WrappedKey = b64n(47)
		_, err := ValidateWire(w, algOf)
		if want := "keys[1].wrappedKey: must be 48 bytes, got 47"; err == nil || err.Error() != want {
			t.Errorf("Error() = %v, want %q", err, want)
		}
	})
}
