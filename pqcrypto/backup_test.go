package pqcrypto_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/qchat/qchat/pqcrypto"
)

func testBackup(t *testing.T) *pqcrypto.Backup {
	t.Helper()
	v := loadV2Vectors(t)
	var b pqcrypto.Backup
	if err := json.Unmarshal([]byte(v.Backup.PlaintextJSON), &b); err != nil {
		t.Fatal(err)
	}
	return &b
}

func TestBackupRoundTrip(t *testing.T) {
	b := testBackup(t)
	secret, err := pqcrypto.GenerateRecoveryKey(nil)
	if err != nil || len(secret) != 43 || strings.ContainsAny(secret, "+/=") {
		t.Fatalf("recovery key %q (%v)", secret, err)
	}
	sealed, err := pqcrypto.SealBackup(nil, bobUID, secret, b, pqcrypto.BackupParams{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(sealed, `{"v":2,"kdf":"argon2id","t":2,"m":19456,"p":1,"salt":"`) {
		t.Errorf("zero params did not give the minimum: %s", sealed[:60])
	}
	got, err := pqcrypto.OpenBackup(bobUID, secret, sealed)
	if err != nil || !reflect.DeepEqual(got, b) {
		t.Fatalf("OpenBackup = %+v, %v", got, err)
	}
	for name, open := range map[string]func() (*pqcrypto.Backup, error){
		"wrong secret":   func() (*pqcrypto.Backup, error) { return pqcrypto.OpenBackup(bobUID, secret[1:]+"A", sealed) },
		"another user's": func() (*pqcrypto.Backup, error) { return pqcrypto.OpenBackup(carolUID, secret, sealed) },
		"ciphertext flip": func() (*pqcrypto.Backup, error) {
			return pqcrypto.OpenBackup(bobUID, secret, flipCiphertext(t, sealed))
		},
		"stronger t given": func() (*pqcrypto.Backup, error) {
			return pqcrypto.OpenBackup(bobUID, secret, strings.Replace(sealed, `"t":2`, `"t":3`, 1))
		},
	} {
		t.Run(name, func(t *testing.T) {
			if b, err := open(); !errors.Is(err, pqcrypto.ErrCannotOpenBackup) || err.Error() != "cannot open key backup" || b != nil {
				t.Fatalf("OpenBackup = %+v, %v; want ErrCannotOpenBackup", b, err)
			}
		})
	}
}

func flipCiphertext(t *testing.T, sealed string) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(sealed), &m); err != nil {
		t.Fatal(err)
	}
	ct := b64(t, m["ciphertext"].(string))
	ct[0] ^= 1
	m["ciphertext"] = pqcrypto.EncodeB64(ct)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestSealedBackupShape holds the reader's and the server's refusals of a
// sealed form that is not the specification's shape; none of them may cost
// a key derivation.
func TestSealedBackupShape(t *testing.T) {
	v := loadV2Vectors(t)
	good := v.Backup.Sealed
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			t.Fatalf("the vector has no %s", old)
		}
		return strings.Replace(good, old, new, 1)
	}
	cases := []struct{ name, sealed string }{
		{"v as a string", replace(`"v":2`, `"v":"2"`)},
		{"v 1", replace(`"v":2`, `"v":1`)},
		{"v 3", replace(`"v":2`, `"v":3`)},
		{"v null", replace(`"v":2`, `"v":null`)},
		{"v missing", replace(`"v":2,`, ``)},
		{"kdf argon2i", replace(`"argon2id"`, `"argon2i"`)},
		{"kdf missing", replace(`"kdf":"argon2id",`, ``)},
		{"t as a string", replace(`"t":2`, `"t":"2"`)},
		{"t 1", replace(`"t":2`, `"t":1`)},
		{"t 11", replace(`"t":2`, `"t":11`)},
		{"t fraction", replace(`"t":2`, `"t":2.5`)},
		{"t negative", replace(`"t":2`, `"t":-2`)},
		{"m below", replace(`"m":19456`, `"m":19455`)},
		{"m above 256 MiB", replace(`"m":19456`, `"m":262145`)},
		{"m huge", replace(`"m":19456`, `"m":1e300`)},
		{"p 0", replace(`"p":1`, `"p":0`)},
		{"p 5", replace(`"p":1`, `"p":5`)},
		{"p 257", replace(`"p":1`, `"p":257`)},
		{"salt 15 bytes", replace(`"salt":"L/E97JBg3XHuj0I2iNi8nA=="`, `"salt":"L/E97JBg3XHuj0I2iNi8"`)},
		{"salt not base64", replace(`"salt":"L/E97JBg3XHuj0I2iNi8nA=="`, `"salt":"L/E97JBg3XHuj0I2iNi8nA"`)},
		{"salt missing", replace(`"salt":"L/E97JBg3XHuj0I2iNi8nA==",`, ``)},
		{"nonce 11 bytes", replace(`"nonce":"qThTdSE6JDH2ciNO"`, `"nonce":"`+pqcrypto.EncodeB64(make([]byte, 11))+`"`)},
		{"ciphertext shorter than a tag", good[:strings.Index(good, `"ciphertext":"`)] + `"ciphertext":"` + pqcrypto.EncodeB64(make([]byte, 15)) + `"}`},
		{"ciphertext null", good[:strings.Index(good, `"ciphertext":"`)] + `"ciphertext":null}`},
		{"unknown field", replace(`{"v":2,`, `{"v":2,"hint":"dog",`)},
		{"member in upper case", replace(`"salt":`, `"SALT":`)},
		{"kdf not a string", replace(`"kdf":"argon2id"`, `"kdf":["argon2id"]`)},
		{"data after the object", good + `{}`},
		{"an array", "[" + good + "]"},
		{"not JSON", "v=2"},
		{"empty", ""},
		{"over 64 KiB", replace(`{"v":2,`, `{"v":2`+strings.Repeat(" ", 64<<10)+`,`)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := pqcrypto.ValidateSealedBackup(tc.sealed); err == nil {
				t.Error("ValidateSealedBackup accepted it")
			}
			if b, err := pqcrypto.OpenBackup(v.Backup.UID, v.Backup.Secret, tc.sealed); !errors.Is(err, pqcrypto.ErrCannotOpenBackup) || b != nil {
				t.Errorf("OpenBackup = %+v, %v; want ErrCannotOpenBackup", b, err)
			}
		})
	}
	// Numbers are compared as numbers, so another spelling of 2 is 2.
	for _, spelling := range []string{`"v":2.0`, `"v":2e0`, `"v":20e-1`} {
		if err := pqcrypto.ValidateSealedBackup(replace(`"v":2`, spelling)); err != nil {
			t.Errorf("%s refused: %v", spelling, err)
		}
	}
	b, err := pqcrypto.OpenBackup(v.Backup.UID, v.Backup.Secret, " \n"+replace(`"t":2`, `"t":2.0`)+"\n")
	if err != nil || b == nil {
		t.Errorf("a backup with t written 2.0 and surrounding white space does not open: %v", err)
	}
}

func TestSealBackupRejects(t *testing.T) {
	b := testBackup(t)
	long := "correct horse battery staple"
	mutated := func(f func(b *pqcrypto.Backup)) *pqcrypto.Backup {
		c := *b
		c.KEMKeys = append([]pqcrypto.BackupKEMKey(nil), b.KEMKeys...)
		f(&c)
		return &c
	}
	cases := []struct {
		name   string
		secret string
		b      *pqcrypto.Backup
		params pqcrypto.BackupParams
	}{
		{"passphrase of 11 characters", "eleven char", b, pqcrypto.BackupParams{}},
		// 11 code points in NFC, 14 in NFD: the NFC count decides.
		{"passphrase short once NFC", "cre\u0300me bru\u0302le\u0301", b, pqcrypto.BackupParams{}},
		{"passphrase not UTF-8", "\xff\xfe twelve chars!", b, pqcrypto.BackupParams{}},
		{"no backup", long, nil, pqcrypto.BackupParams{}},
		{"identity seed short", long, mutated(func(b *pqcrypto.Backup) { b.IdentitySeed = b.IdentitySeed[:31] }), pqcrypto.BackupParams{}},
		{"KEM seed of the other algorithm", long, mutated(func(b *pqcrypto.Backup) { b.KEMKeys[0].Algorithm = pqcrypto.XWing }), pqcrypto.BackupParams{}},
		{"unknown algorithm", long, mutated(func(b *pqcrypto.Backup) { b.KEMKeys[1].Algorithm = "RSA" }), pqcrypto.BackupParams{}},
		{"empty key id", long, mutated(func(b *pqcrypto.Backup) { b.KEMKeys[1].KeyID = "" }), pqcrypto.BackupParams{}},
		{"t too low", long, b, pqcrypto.BackupParams{Time: 1, MemoryKiB: 19456, Threads: 1}},
		{"m too high", long, b, pqcrypto.BackupParams{Time: 2, MemoryKiB: 262145, Threads: 1}},
		{"p missing", long, b, pqcrypto.BackupParams{Time: 2, MemoryKiB: 19456}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if sealed, err := pqcrypto.SealBackup(nil, bobUID, tc.secret, tc.b, tc.params); err == nil {
				t.Fatalf("SealBackup = %.60s..., want an error", sealed)
			}
		})
	}
	if err := pqcrypto.ValidatePassphrase("crème brûlée!"); err != nil {
		t.Errorf("a 13-character passphrase refused: %v", err)
	}
}

func TestBackupKeyIDNotHTMLEscaped(t *testing.T) {
	// JSON.stringify writes '<' as is; so must SealBackup, or the two would
	// seal different plaintexts for one backup.
	b := testBackup(t)
	b.KEMKeys = b.KEMKeys[:1]
	b.KEMKeys[0].KeyID = "<a&b>"
	secret := "correct horse battery staple"
	sealed, err := pqcrypto.SealBackup(nil, bobUID, secret, b, pqcrypto.BackupParams{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := pqcrypto.OpenBackup(bobUID, secret, sealed)
	if err != nil || got.KEMKeys[0].KeyID != "<a&b>" {
		t.Fatalf("OpenBackup = %+v, %v", got, err)
	}
	plain, err := pqcrypto.MarshalBackupPlaintext(b)
	if err != nil || !strings.Contains(string(plain), `"keyId":"<a&b>"`) {
		t.Errorf("plaintext %s escapes the key id", plain)
	}
}
