package chat

import (
	"context"
	"errors"
	"log/slog"

	"github.com/maypok86/otter/v2"

	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// identityCacheSize bounds the parsed identity keys kept: an unpacked
// ML-DSA-65 key holds its expanded matrix (tens of KiB), so this is a few
// tens of MiB at most.
const identityCacheSize = 1024

func newIdentityCache() *otter.Cache[string, *pqcrypto.IdentityPublicKey] {
	return otter.Must(&otter.Options[string, *pqcrypto.IdentityPublicKey]{MaximumSize: identityCacheSize})
}

// parseIdentity unpacks a raw identity key, from the cache when it can:
// unpacking costs more than verifying a signature. The cache is keyed by the
// raw bytes themselves, so an entry can never go stale and needs no
// invalidation when a user's identity key changes.
func (s *Service) parseIdentity(raw []byte) (*pqcrypto.IdentityPublicKey, error) {
	if k, ok := s.identities.GetIfPresent(string(raw)); ok {
		return k, nil
	}
	k, err := pqcrypto.ParseIdentityKey(raw)
	if err != nil {
		return nil, err
	}
	s.identities.Set(string(raw), k)
	return k, nil
}

// IdentityKey is the user's current identity key, nil for an account that
// has none (made before version 2); batched per response, as User.identityKey
// is asked of every member or sender of a page.
func (s *Service) IdentityKey(ctx context.Context, userID string) (*models.IdentityKey, error) {
	return Lookup(ctx, s.Loaders(ctx).IdentityKeys(), userID)
}

// currentIdentity reads the user's identity key from the store itself, for
// the rules: the response's loader may hold what it read before a change.
func (s *Service) currentIdentity(ctx context.Context, userID string) (*models.IdentityKey, error) {
	ik, err := s.store.CurrentIdentityKey(ctx, userID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	return ik, err
}

// newIdentityKey decodes and checks a base64 identity key for field.
func (s *Service) newIdentityKey(field, b64 string) (*models.IdentityKey, *pqcrypto.IdentityPublicKey, error) {
	raw, err := pqcrypto.DecodeB64(b64)
	if err != nil {
		return nil, nil, models.InvalidField(field, field+": not standard base64")
	}
	pk, err := s.parseIdentity(raw)
	if err != nil {
		return nil, nil, models.InvalidField(field, field+": not an ML-DSA-65 public key")
	}
	return &models.IdentityKey{ID: newID(), KeyBytes: raw, Fingerprint: pk.Fingerprint(), CreatedAt: models.Now()}, pk, nil
}

// certify checks that signature (field) is owner's certificate of key with
// seq, and records both on key.
func certify(owner *pqcrypto.IdentityPublicKey, key *models.PublicKey, seq int, field, signature string) error {
	cert, err := pqcrypto.DecodeB64(signature)
	if err != nil {
		return models.InvalidField(field, field+": not standard base64")
	}
	if err := pqcrypto.VerifyKEMKeyCertificate(owner, pqcrypto.Algorithm(key.Algorithm), seq, key.KeyBytes, cert); err != nil {
		return models.InvalidField(field, field+": the certificate does not verify against the identity key")
	}
	key.SignatureBytes, key.Seq = cert, &seq
	return nil
}

// nextSeq is the seq a new certified key of u must carry: one more than its
// current key's, or 1 if that key has none.
func (s *Service) nextSeq(ctx context.Context, u *models.User) (int, error) {
	ks, err := s.store.KeysByIDs(ctx, []string{u.CurrentKeyID})
	if err != nil {
		return 0, err
	}
	if len(ks) == 1 && ks[0].Seq != nil {
		return *ks[0].Seq + 1, nil
	}
	return 1, nil
}

func checkSeq(seq, want int) error {
	if seq != want || seq > pqcrypto.MaxSeq {
		return models.InvalidField("seq", "seq: must be the next sequence number")
	}
	return nil
}

// ErrWrongPassword marks a refusal for a wrong account password, which the
// edge counts against the failed-login budgets: the password check here is
// as good an oracle as login.
var ErrWrongPassword = errors.New("wrong password")

// SetIdentityKey sets u's identity key with a KEM key it certifies. Setting
// the first one is free; replacing one needs the account password and is a
// security event.
func (s *Service) SetIdentityKey(ctx context.Context, u *models.User, identityKey, publicKey string, algorithm *models.KeyAlgorithm, seq int, signature string, password *string) (*models.User, error) {
	current, err := s.currentIdentity(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if current != nil && password == nil {
		s.Security(ctx, slog.LevelWarn, "identity_key_replace_refused", "user_id", u.ID)
		return nil, models.InvalidField("password", "password: replacing an identity key needs the account password")
	}
	ik, owner, err := s.newIdentityKey("identityKey", identityKey)
	if err != nil {
		return nil, err
	}
	key, err := newPublicKey(publicKey, algorithmOr(algorithm))
	if err != nil {
		return nil, err
	}
	want, err := s.nextSeq(ctx, u)
	if err != nil {
		return nil, err
	}
	if err := checkSeq(seq, want); err != nil {
		return nil, err
	}
	if err := certify(owner, key, seq, "signature", signature); err != nil {
		return nil, err
	}
	// The password is checked last, once everything cheap has passed: a
	// bcrypt comparison costs milliseconds of CPU, and the caller counts a
	// wrong one as a failed login (ErrWrongPassword).
	if current != nil {
		// The session's user may be a cached copy: check against the stored hash.
		fresh, err := s.store.UserByID(ctx, u.ID)
		if err != nil {
			return nil, err
		}
		if !s.auth.CheckPassword(fresh, *password) {
			s.Security(ctx, slog.LevelWarn, "identity_key_replace_refused", "user_id", u.ID)
			return nil, errors.Join(ErrWrongPassword, models.InvalidField("password", "password: replacing an identity key needs the account password"))
		}
	}
	if err := s.store.SetIdentityKey(ctx, u.ID, ik, key); err != nil {
		return nil, err
	}
	fresh, err := s.store.UserByID(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	s.invalidate(ctx, "user", u.ID)
	if current != nil {
		s.Security(ctx, slog.LevelWarn, "identity_key_replaced", "user_id", u.ID, "old_fingerprint", current.Fingerprint, "fingerprint", ik.Fingerprint)
	} else {
		s.Security(ctx, slog.LevelInfo, "identity_key_set", "user_id", u.ID, "fingerprint", ik.Fingerprint)
	}
	// A first identity key is a change too: it comes with a new KEM key,
	// and contacts pin the identity from now on.
	s.publishKeyChange(ctx, u.ID, models.KeyChangeKindIdentityChanged)
	return fresh, nil
}

func algorithmOr(alg *models.KeyAlgorithm) models.KeyAlgorithm {
	if alg != nil {
		return *alg
	}
	return models.KeyAlgorithmMlKem768
}

// SetKeyBackup stores u's sealed backup, replacing any earlier one. The
// server cannot open it; it checks the shape and the size only.
func (s *Service) SetKeyBackup(ctx context.Context, u *models.User, backup string) error {
	if len(backup) > pqcrypto.MaxSealedBackupSize {
		return models.InvalidField("backup", "backup: over the limit of 64 KiB")
	}
	if err := pqcrypto.ValidateSealedBackup(backup); err != nil {
		return models.InvalidField("backup", "backup: not a sealed key backup")
	}
	if err := s.store.PutKeyBackup(ctx, &models.KeyBackup{UserID: u.ID, Backup: backup, UpdatedAt: models.Now()}); err != nil {
		return err
	}
	s.Security(ctx, slog.LevelInfo, "key_backup_set", "user_id", u.ID)
	return nil
}

// KeyBackup is u's own sealed backup, nil if there is none.
func (s *Service) KeyBackup(ctx context.Context, u *models.User) (*string, error) {
	b, err := s.store.KeyBackup(ctx, u.ID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &b.Backup, nil
}

// DeleteKeyBackup removes u's backup; true if there was one.
func (s *Service) DeleteKeyBackup(ctx context.Context, u *models.User) (bool, error) {
	deleted, err := s.store.DeleteKeyBackup(ctx, u.ID)
	if err == nil && deleted {
		s.Security(ctx, slog.LevelInfo, "key_backup_deleted", "user_id", u.ID)
	}
	return deleted, err
}
