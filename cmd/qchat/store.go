package main

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// The config directory holds three files, all 0600 in a 0700 directory:
//
//	keys.json     the key store: the identity key (ML-DSA-65) and the KEM
//	              keys, public halves in clear, the secret seeds in clear or
//	              sealed under a passphrase (argon2id + AES-256-GCM)
//	session.json  the server URL, session token and user of the last login
//	contacts.json the pins: each contact's identity key as first seen (or
//	              last accepted with qchat trust), whether it was verified by
//	              safety number, and the newest certified key seen
//
// Every rotated-out key stays in keys.json: envelopes name the key they were
// sealed for, and old messages are never re-sealed.

const (
	keysFile     = "keys.json"
	sessionFile  = "session.json"
	contactsFile = "contacts.json"
)

// storedKey is the public half of one key pair. KeyID is empty between
// keygen and register, before the server has named the key.
type storedKey struct {
	KeyID     string             `json:"keyId,omitempty"`
	Algorithm pqcrypto.Algorithm `json:"algorithm"`
	PublicKey string             `json:"publicKey"` // standard base64
	CreatedAt time.Time          `json:"createdAt"`
}

// kdfParams are argon2id's parameters, stored with the ciphertext so they
// can be raised later without breaking existing files.
type kdfParams struct {
	Name      string `json:"name"` // "argon2id"
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memoryKiB"`
	Threads   uint8  `json:"threads"`
	Salt      string `json:"salt"`
}

// sealedSeeds is the seeds map, JSON-encoded and sealed with AES-256-GCM
// under the argon2id key of the passphrase.
type sealedSeeds struct {
	KDF        kdfParams `json:"kdf"`
	Nonce      string    `json:"nonce"`
	Ciphertext string    `json:"ciphertext"`
}

// keyStore is keys.json. Keys are newest first; Keys[0] is the current key.
// Seeds are keyed by the public key (base64), which exists before the server
// assigns an id; the identity key's seed too, under its public key.
type keyStore struct {
	Version int `json:"version"`
	// Identity is the identity public key (base64); "" in a store made
	// before version 2, which gets one at its first sign-in.
	Identity  string            `json:"identityKey,omitempty"`
	Keys      []storedKey       `json:"keys"`
	Seeds     map[string]string `json:"seeds,omitempty"`     // public key → seed, both base64; unencrypted stores
	Encrypted *sealedSeeds      `json:"encrypted,omitempty"` // encrypted stores
}

// newKDF has argon2id's parameters for new files: RFC 9106's second
// recommended option (64 MiB, t=3), strong for an interactive unlock yet
// well under a second.
func newKDF() kdfParams {
	return kdfParams{Name: "argon2id", Time: 3, MemoryKiB: 64 * 1024, Threads: 4}
}

func (p kdfParams) key(passphrase []byte) ([]byte, error) {
	if p.Name != "argon2id" {
		return nil, fmt.Errorf("key store: unknown kdf %q", p.Name)
	}
	salt, err := pqcrypto.DecodeB64(p.Salt)
	if err != nil {
		return nil, fmt.Errorf("key store: salt: %w", err)
	}
	return argon2.IDKey(passphrase, salt, p.Time, p.MemoryKiB, p.Threads, 32), nil
}

func seal(seeds map[string]string, passphrase []byte) (*sealedSeeds, error) {
	salt := make([]byte, 16)
	nonce := make([]byte, 12)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	p := newKDF()
	p.Salt = pqcrypto.EncodeB64(salt)
	key, err := p.key(passphrase)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(seeds)
	if err != nil {
		return nil, err
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	ct := aead.Seal(nil, nonce, plain, []byte("qchat key store v1"))
	return &sealedSeeds{KDF: p, Nonce: pqcrypto.EncodeB64(nonce), Ciphertext: pqcrypto.EncodeB64(ct)}, nil
}

// errBadPassphrase covers a wrong passphrase and a damaged file alike: GCM
// cannot tell them apart.
var errBadPassphrase = errors.New("cannot unlock the key store: wrong passphrase (or a damaged keys.json)")

func (s *sealedSeeds) open(passphrase []byte) (map[string]string, error) {
	key, err := s.KDF.key(passphrase)
	if err != nil {
		return nil, err
	}
	nonce, err1 := pqcrypto.DecodeB64(s.Nonce)
	ct, err2 := pqcrypto.DecodeB64(s.Ciphertext)
	if err1 != nil || err2 != nil || len(nonce) != 12 {
		return nil, errBadPassphrase
	}
	aead, err := gcm(key)
	if err != nil {
		return nil, err
	}
	plain, err := aead.Open(nil, nonce, ct, []byte("qchat key store v1"))
	if err != nil {
		return nil, errBadPassphrase
	}
	var seeds map[string]string
	if err := json.Unmarshal(plain, &seeds); err != nil {
		return nil, errBadPassphrase
	}
	return seeds, nil
}

func gcm(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// seeds returns the clear seeds map, asking for the passphrase only if the
// store is encrypted.
func (ks *keyStore) seeds(passphrase func() ([]byte, error)) (map[string]string, error) {
	if ks.Encrypted == nil {
		return ks.Seeds, nil
	}
	pp, err := passphrase()
	if err != nil {
		return nil, err
	}
	return ks.Encrypted.open(pp)
}

// setSeeds stores seeds, sealed if the store is encrypted (with a fresh salt
// and nonce) or if passphrase is non-nil for a new store.
func (ks *keyStore) setSeeds(seeds map[string]string, passphrase []byte) error {
	if passphrase == nil {
		ks.Seeds, ks.Encrypted = seeds, nil
		return nil
	}
	sealed, err := seal(seeds, passphrase)
	if err != nil {
		return fmt.Errorf("encrypt key store: %w", err)
	}
	ks.Seeds, ks.Encrypted = nil, sealed
	return nil
}

// keyring rebuilds every registered key pair for the SDK.
func (ks *keyStore) keyring(passphrase func() ([]byte, error)) (client.Keyring, error) {
	seeds, err := ks.seeds(passphrase)
	if err != nil {
		return nil, err
	}
	return ks.keyringFrom(seeds)
}

// keyringFrom is keyring with the seeds already unlocked.
func (ks *keyStore) keyringFrom(seeds map[string]string) (client.Keyring, error) {
	kr := make(client.Keyring, len(ks.Keys))
	for _, k := range ks.Keys {
		if k.KeyID == "" {
			continue
		}
		kp, err := k.pair(seeds)
		if err != nil {
			return nil, err
		}
		kr[k.KeyID] = kp
	}
	return kr, nil
}

// identity rebuilds the identity key from its seed; nil if the store has
// none.
func (ks *keyStore) identity(seeds map[string]string) (*pqcrypto.IdentityKey, error) {
	if ks.Identity == "" {
		return nil, nil
	}
	s, ok := seeds[ks.Identity]
	if !ok {
		return nil, errors.New("key store: no secret key for the identity key")
	}
	seed, err := pqcrypto.DecodeB64(s)
	if err != nil {
		return nil, fmt.Errorf("key store: identity seed: %w", err)
	}
	ik, err := pqcrypto.IdentityKeyFromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("key store: %w", err)
	}
	if pqcrypto.EncodeB64(ik.PublicKey()) != ks.Identity {
		return nil, errors.New("key store: the identity seed does not give the identity public key")
	}
	return ik, nil
}

// withSeed returns a copy of seeds with one more.
func withSeed(seeds map[string]string, pub, seed []byte) map[string]string {
	next := make(map[string]string, len(seeds)+1)
	for k, v := range seeds {
		next[k] = v
	}
	next[pqcrypto.EncodeB64(pub)] = pqcrypto.EncodeB64(seed)
	return next
}

func (k storedKey) pair(seeds map[string]string) (*pqcrypto.KeyPair, error) {
	s, ok := seeds[k.PublicKey]
	if !ok {
		return nil, fmt.Errorf("key store: no secret key for key %s", k.label())
	}
	seed, err := pqcrypto.DecodeB64(s)
	if err != nil {
		return nil, fmt.Errorf("key store: seed of key %s: %w", k.label(), err)
	}
	kp, err := pqcrypto.KeyPairFromSeed(k.Algorithm, seed)
	if err != nil {
		return nil, fmt.Errorf("key store: key %s: %w", k.label(), err)
	}
	if pqcrypto.EncodeB64(kp.PublicKey) != k.PublicKey {
		return nil, fmt.Errorf("key store: the seed of key %s does not give its public key", k.label())
	}
	return kp, nil
}

func (k storedKey) label() string {
	if k.KeyID != "" {
		return k.KeyID
	}
	return "(unregistered)"
}

func (k storedKey) fingerprint() string {
	pub, err := pqcrypto.DecodeB64(k.PublicKey)
	if err != nil {
		return "(invalid public key)"
	}
	return pqcrypto.Fingerprint(pub)
}

// session is session.json.
type session struct {
	Server   string `json:"server"`
	Token    string `json:"token,omitempty"`
	UserID   string `json:"userId,omitempty"`
	Username string `json:"username,omitempty"`
}

// readJSON reads dir/name into v; ok is false if the file does not exist.
func readJSON(dir, name string, v any) (ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return true, nil
}

// writeJSON replaces dir/name atomically with mode 0600, so a crash never
// leaves a half-written key store and the secret is never world-readable,
// not even for a moment.
func writeJSON(dir, name string, v any) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create config dir: %w", err)
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
