package pqcrypto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// ErrCannotOpenBackup is the only error OpenBackup returns: a wrong secret
// and a tampered backup look the same to the user, and to an attacker.
var ErrCannotOpenBackup = errors.New("cannot open key backup")

// Limits of the key backup.
const (
	MaxSealedBackupSize = 64 << 10 // bytes of the sealed JSON the server stores
	MinPassphraseLength = 12       // Unicode code points after NFC
	RecoveryKeySize     = 32       // random bytes of a generated recovery key
	backupSaltSize      = 16
	backupVersion       = 2
	backupKDF           = "argon2id"
)

// BackupParams are Argon2id's cost parameters. The zero value means the
// lowest accepted, t = 2, m = 19456 KiB, p = 1.
type BackupParams struct {
	Time      uint32 // iterations, 2 to 10
	MemoryKiB uint32 // 19456 to 262144
	Threads   uint8  // parallelism, 1 to 4
}

// The bounds a reader accepts: the lower ones keep a backup strong, the
// upper ones stop a server from making a client spend unbounded memory or
// time on a backup it rewrote.
var (
	minBackupParams = BackupParams{Time: 2, MemoryKiB: 19456, Threads: 1}
	maxBackupParams = BackupParams{Time: 10, MemoryKiB: 262144, Threads: 4}
)

func (p BackupParams) orDefault() BackupParams {
	if p == (BackupParams{}) {
		return minBackupParams
	}
	return p
}

func (p BackupParams) validate() error {
	lo, hi := minBackupParams, maxBackupParams
	if p.Time < lo.Time || p.Time > hi.Time || p.MemoryKiB < lo.MemoryKiB || p.MemoryKiB > hi.MemoryKiB ||
		p.Threads < lo.Threads || p.Threads > hi.Threads {
		return fmt.Errorf("argon2id parameters t=%d m=%d p=%d outside t %d-%d, m %d-%d, p %d-%d",
			p.Time, p.MemoryKiB, p.Threads, lo.Time, hi.Time, lo.MemoryKiB, hi.MemoryKiB, lo.Threads, hi.Threads)
	}
	return nil
}

// Backup is the plaintext of a key backup: every secret key its owner still
// needs, as seeds.
type Backup struct {
	IdentitySeed []byte         `json:"identitySeed"`
	KEMKeys      []BackupKEMKey `json:"kemKeys"`
}

// BackupKEMKey is one KEM key in a backup, current or past.
type BackupKEMKey struct {
	KeyID     string    `json:"keyId"`
	Algorithm Algorithm `json:"algorithm"`
	Seed      []byte    `json:"seed"`
}

// marshal writes the plaintext JSON, in the specification's field order.
func (b *Backup) marshal() ([]byte, error) {
	plain := *b
	if plain.KEMKeys == nil {
		plain.KEMKeys = []BackupKEMKey{} // [] rather than null, as the specification writes it
	}
	return marshalJSON(plain)
}

func (b *Backup) validate() error {
	if len(b.IdentitySeed) != IdentitySeedSize {
		return fmt.Errorf("identity seed must be %d bytes, got %d", IdentitySeedSize, len(b.IdentitySeed))
	}
	for i, k := range b.KEMKeys {
		if !v2.validKeyID(k.KeyID) {
			return fmt.Errorf("kemKeys[%d]: key id %q %s", i, k.KeyID, v2.keyIDRule)
		}
		if !k.Algorithm.Valid() {
			return fmt.Errorf("kemKeys[%d]: unknown algorithm %q", i, k.Algorithm)
		}
		if len(k.Seed) != k.Algorithm.SeedSize() {
			return fmt.Errorf("kemKeys[%d]: %s seed must be %d bytes, got %d", i, k.Algorithm, k.Algorithm.SeedSize(), len(k.Seed))
		}
	}
	return nil
}

// ValidatePassphrase checks a backup secret chosen by the user: UTF-8 and at
// least MinPassphraseLength code points once NFC-normalised. A generated
// recovery key passes too.
func ValidatePassphrase(secret string) error {
	if !utf8.ValidString(secret) {
		return errors.New("pqcrypto: passphrase is not UTF-8")
	}
	if n := utf8.RuneCountInString(norm.NFC.String(secret)); n < MinPassphraseLength {
		return fmt.Errorf("pqcrypto: passphrase must be at least %d characters, got %d", MinPassphraseLength, n)
	}
	return nil
}

// GenerateRecoveryKey draws a recovery key from rand (crypto/rand when nil)
// and returns it as the user sees it and as it enters the KDF: 43 base64url
// characters without padding.
func GenerateRecoveryKey(rand io.Reader) (string, error) {
	raw := make([]byte, RecoveryKeySize)
	if _, err := io.ReadFull(randOrDefault(rand), raw); err != nil {
		return "", fmt.Errorf("pqcrypto: generate recovery key: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw), nil
}

// DeriveBackupKey is the backup's key: Argon2id over the NFC form of the
// secret. Zero params mean the minimum.
func DeriveBackupKey(secret string, salt []byte, params BackupParams) ([]byte, error) {
	params = params.orDefault()
	if err := params.validate(); err != nil {
		return nil, fmt.Errorf("pqcrypto: backup key: %w", err)
	}
	if len(salt) != backupSaltSize {
		return nil, fmt.Errorf("pqcrypto: backup key: salt must be %d bytes, got %d", backupSaltSize, len(salt))
	}
	return argon2.IDKey([]byte(norm.NFC.String(secret)), salt, params.Time, params.MemoryKiB, params.Threads, KeySize), nil
}

func backupAAD(uid string) []byte { return []byte("qchat/v2/backup|" + uid) }

// sealedBackupJSON is the sealed form as written, its fields in the order
// of the specification.
type sealedBackupJSON struct {
	V          int    `json:"v"`
	KDF        string `json:"kdf"`
	T          uint32 `json:"t"`
	M          uint32 `json:"m"`
	P          uint8  `json:"p"`
	Salt       string `json:"salt"`
	Nonce      string `json:"nonce"`
	Ciphertext string `json:"ciphertext"`
}

// SealBackup seals b for the user uid under secret and returns the JSON the
// server stores. Zero params mean the minimum. Randomness is read in this
// order: the 16-byte salt, then the 12-byte nonce.
func SealBackup(rand io.Reader, uid, secret string, b *Backup, params BackupParams) (string, error) {
	if err := ValidatePassphrase(secret); err != nil {
		return "", err
	}
	if b == nil {
		return "", errors.New("pqcrypto: seal backup: no backup")
	}
	if err := b.validate(); err != nil {
		return "", fmt.Errorf("pqcrypto: seal backup: %w", err)
	}
	params = params.orDefault()
	if err := params.validate(); err != nil {
		return "", fmt.Errorf("pqcrypto: seal backup: %w", err)
	}
	plaintext, err := b.marshal()
	if err != nil {
		return "", fmt.Errorf("pqcrypto: seal backup: %w", err)
	}

	rand = randOrDefault(rand)
	salt, nonce := make([]byte, backupSaltSize), make([]byte, NonceSize)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return "", fmt.Errorf("pqcrypto: seal backup: read salt: %w", err)
	}
	if _, err := io.ReadFull(rand, nonce); err != nil {
		return "", fmt.Errorf("pqcrypto: seal backup: read nonce: %w", err)
	}
	key, err := DeriveBackupKey(secret, salt, params)
	if err != nil {
		return "", err
	}
	aead, err := newGCM(key)
	if err != nil {
		return "", fmt.Errorf("pqcrypto: seal backup: %w", err)
	}
	sealed, err := marshalJSON(sealedBackupJSON{
		V: backupVersion, KDF: backupKDF, T: params.Time, M: params.MemoryKiB, P: params.Threads,
		Salt: EncodeB64(salt), Nonce: EncodeB64(nonce),
		Ciphertext: EncodeB64(aead.Seal(nil, nonce, plaintext, backupAAD(uid))),
	})
	if err != nil {
		return "", fmt.Errorf("pqcrypto: seal backup: %w", err)
	}
	if len(sealed) > MaxSealedBackupSize {
		return "", fmt.Errorf("pqcrypto: seal backup: %d bytes sealed, over the limit of %d (too many KEM keys)", len(sealed), MaxSealedBackupSize)
	}
	return string(sealed), nil
}

// marshalJSON is json.Marshal without HTML escaping, so that a key id with
// '<', '>' or '&' comes out as JavaScript's JSON.stringify writes it.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	e := json.NewEncoder(&buf)
	e.SetEscapeHTML(false)
	if err := e.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// OpenBackup opens the sealed backup of user uid with secret. Every failure
// is ErrCannotOpenBackup; a backup whose parameters lie outside the accepted
// bounds is refused before any key derivation.
func OpenBackup(uid, secret, sealed string) (*Backup, error) {
	sb, err := parseSealedBackup(sealed)
	if err != nil {
		return nil, ErrCannotOpenBackup
	}
	key, err := DeriveBackupKey(secret, sb.salt, sb.params)
	if err != nil {
		return nil, ErrCannotOpenBackup
	}
	aead, err := newGCM(key)
	if err != nil {
		return nil, ErrCannotOpenBackup
	}
	plaintext, err := aead.Open(nil, sb.nonce, sb.ciphertext, backupAAD(uid))
	if err != nil {
		return nil, ErrCannotOpenBackup
	}
	b, err := parseBackupPlaintext(plaintext)
	if err != nil {
		return nil, ErrCannotOpenBackup
	}
	return b, nil
}

// ValidateSealedBackup is the server's whole check of a backup it cannot
// open: at most MaxSealedBackupSize bytes of JSON of the sealed shape, with
// parameters a client would accept.
func ValidateSealedBackup(sealed string) error {
	if _, err := parseSealedBackup(sealed); err != nil {
		return fmt.Errorf("pqcrypto: invalid key backup: %w", err)
	}
	return nil
}

type sealedBackup struct {
	params                  BackupParams
	salt, nonce, ciphertext []byte
}

func parseSealedBackup(sealed string) (*sealedBackup, error) {
	if len(sealed) > MaxSealedBackupSize {
		return nil, fmt.Errorf("%d bytes, over the limit of %d", len(sealed), MaxSealedBackupSize)
	}
	// Members are matched exactly (encoding/json alone would take "SALT"
	// for "salt"), and the numbers are kept raw: json.Number would also
	// take a string holding a number, which the specification refuses.
	var members map[string]json.RawMessage
	if err := json.Unmarshal([]byte(sealed), &members); err != nil || members == nil {
		return nil, errors.New("not a JSON object")
	}
	for name := range members {
		switch name {
		case "v", "kdf", "t", "m", "p", "salt", "nonce", "ciphertext":
		default:
			return nil, fmt.Errorf("unknown member %q", name)
		}
	}
	str := func(name string) (string, error) {
		var s *string
		if err := json.Unmarshal(members[name], &s); err != nil || s == nil {
			return "", fmt.Errorf("%s must be a string", name)
		}
		return *s, nil
	}
	var nums [4]uint32
	for i, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"v", members["v"]}, {"t", members["t"]}, {"m", members["m"]}, {"p", members["p"]}} {
		n, err := jsonUint32(f.raw)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		nums[i] = n
	}
	if nums[0] != backupVersion {
		return nil, fmt.Errorf("v must be %d, got %d", backupVersion, nums[0])
	}
	if kdf, err := str("kdf"); err != nil || kdf != backupKDF {
		return nil, fmt.Errorf("kdf must be %q", backupKDF)
	}
	sb := &sealedBackup{params: BackupParams{Time: nums[1], MemoryKiB: nums[2]}}
	if nums[3] > math.MaxUint8 {
		return nil, fmt.Errorf("p %d is too large", nums[3])
	}
	sb.params.Threads = uint8(nums[3])
	if err := sb.params.validate(); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		dst  *[]byte
		size int // exact size, or -1 for at least a GCM tag
	}{
		{"salt", &sb.salt, backupSaltSize},
		{"nonce", &sb.nonce, NonceSize},
		{"ciphertext", &sb.ciphertext, -1},
	} {
		src, err := str(f.name)
		if err != nil {
			return nil, err
		}
		b, err := DecodeB64(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		if (f.size >= 0 && len(b) != f.size) || (f.size < 0 && len(b) < tagSize) {
			return nil, fmt.Errorf("%s has the wrong length, %d bytes", f.name, len(b))
		}
		*f.dst = b
	}
	return sb, nil
}

// jsonUint32 reads a JSON number with an integer value, compared as a
// number (2.0 and 2e0 are 2, as in JavaScript); a string, null or a
// fraction is refused.
func jsonUint32(raw json.RawMessage) (uint32, error) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, errors.New("is not a JSON number")
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f != math.Trunc(f) || f < 0 || f > math.MaxUint32 {
		return 0, fmt.Errorf("%s is not an integer in range", raw)
	}
	return uint32(f), nil
}

func parseBackupPlaintext(plaintext []byte) (*Backup, error) {
	var b Backup
	if err := json.Unmarshal(plaintext, &b); err != nil {
		return nil, fmt.Errorf("backup plaintext: %w", err)
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("backup plaintext: %w", err)
	}
	return &b, nil
}
