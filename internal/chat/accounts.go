package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/google/uuid"

	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// newPublicKey validates a base64 public key for its algorithm.
func newPublicKey(b64 string, alg models.KeyAlgorithm) (*models.PublicKey, error) {
	if !alg.IsValid() {
		return nil, models.Invalid("algorithm: unknown key algorithm %q", alg)
	}
	raw, err := pqcrypto.DecodeB64(b64)
	if err != nil {
		return nil, models.Invalid("publicKey: not standard base64")
	}
	palg := pqcrypto.Algorithm(alg)
	if err := pqcrypto.ValidatePublicKey(palg, raw); err != nil {
		return nil, models.Invalid("publicKey: not a valid %s public key (%d bytes expected, got %d)", alg, palg.PublicKeySize(), len(raw))
	}
	return &models.PublicKey{
		ID:          uuid.NewString(),
		Algorithm:   alg,
		KeyBytes:    raw,
		Fingerprint: pqcrypto.Fingerprint(raw),
		CreatedAt:   models.Now(),
	}, nil
}

func (s *Service) issue(ctx context.Context, u *models.User) (*models.AuthPayload, error) {
	token, exp, err := s.auth.Issue(ctx, u)
	if err != nil {
		return nil, err
	}
	return &models.AuthPayload{Token: token, ExpiresAt: exp, User: u}, nil
}

func newID() string { return uuid.NewString() }

// Register creates an account with its first public key and signs it in.
func (s *Service) Register(ctx context.Context, input models.RegisterInput) (*models.AuthPayload, error) {
	if err := checkVisible("username", input.Username); err != nil {
		return nil, err
	}
	username, ok := canonicalUsername(input.Username)
	if !ok {
		return nil, models.InvalidField("username", "username: 3 to 32 characters of A-Z a-z 0-9 _ . -")
	}
	if n := len(input.Password); n < 8 || n > 72 {
		return nil, models.Invalid("password: must be 8 to 72 bytes")
	}
	alg := models.KeyAlgorithmMlKem768
	if input.KeyAlgorithm != nil {
		alg = *input.KeyAlgorithm
	}
	key, err := newPublicKey(input.PublicKey, alg)
	if err != nil {
		return nil, err
	}
	// An account comes with an identity key that certifies its first KEM
	// key (seq 1): new accounts are version 2 only.
	ik, owner, err := s.newIdentityKey("identityKey", input.IdentityKey)
	if err != nil {
		return nil, err
	}
	if err := certify(owner, key, 1, "publicKeySignature", input.PublicKeySignature); err != nil {
		return nil, err
	}
	hash, err := s.auth.HashPassword(input.Password)
	if err != nil {
		return nil, err
	}
	u := &models.User{ID: newID(), Username: username, PasswordHash: hash, CreatedAt: models.Now()}
	if err := s.store.CreateUserWithIdentity(ctx, u, key, ik); err != nil {
		return nil, err
	}
	s.Security(ctx, slog.LevelInfo, "register", "user_id", u.ID)
	return s.issue(ctx, u)
}

// Login checks a username and password and issues a session. An input that
// is no username finds nobody and gets the one answer an unknown user gets:
// UNAUTHENTICATED "invalid username or password", as does a wrong password.
func (s *Service) Login(ctx context.Context, username, password string) (*models.AuthPayload, error) {
	var u *models.User
	if name, ok := canonicalUsername(username); ok {
		var err error
		u, err = s.store.UserByUsername(ctx, name)
		if err != nil && !errors.Is(err, models.ErrNotFound) {
			return nil, err
		}
	}
	if !s.auth.CheckPassword(u, password) {
		s.Security(ctx, slog.LevelWarn, "login_failed")
		return nil, models.Unauthenticated("invalid username or password")
	}
	s.Security(ctx, slog.LevelInfo, "login", "user_id", u.ID)
	return s.issue(ctx, u)
}

// RotateKey makes a new public key u's current one and drops the cached
// sessions of u here and everywhere, so the next request reads the new key.
// Once u has an identity key, the new key must carry its certificate with
// the next seq, so that an old key cannot be presented again as current.
func (s *Service) RotateKey(ctx context.Context, u *models.User, publicKey string, algorithm *models.KeyAlgorithm, seq int, signature string) (*models.User, error) {
	key, err := newPublicKey(publicKey, algorithmOr(algorithm))
	if err != nil {
		return nil, err
	}
	ik, err := s.currentIdentity(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	if ik == nil {
		// An account made before version 2: its next key comes with its
		// first identity key, which certifies it.
		return nil, models.InvalidField("signature", "signature: the account has no identity key to check it against; set one with setIdentityKey, which takes the new key too")
	}
	want, err := s.nextSeq(ctx, u)
	if err != nil {
		return nil, err
	}
	if err := checkSeq(seq, want); err != nil {
		return nil, err
	}
	owner, err := s.parseIdentity(ik.KeyBytes)
	if err != nil {
		return nil, fmt.Errorf("stored identity key of %s: %w", u.ID, err)
	}
	if err := certify(owner, key, seq, "signature", signature); err != nil {
		return nil, err
	}
	if err := s.store.RotateKey(ctx, u.ID, key); err != nil {
		return nil, err
	}
	fresh, err := s.store.UserByID(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	s.invalidate(ctx, "user", u.ID)
	s.Security(ctx, slog.LevelInfo, "key_rotated", "key_id", key.ID)
	s.publishKeyChange(ctx, u.ID, models.KeyChangeKindKemRotated)
	return fresh, nil
}

// User loads a user by id (nil if there is none): users are public to every
// signed-in caller.
func (s *Service) User(ctx context.Context, id string) (*models.User, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	return Lookup(ctx, s.Loaders(ctx).Users(), id)
}

// UserByUsername finds a user as registered (nil if there is none).
func (s *Service) UserByUsername(ctx context.Context, username string) (*models.User, error) {
	name, ok := canonicalUsername(username)
	if !ok {
		return nil, nil
	}
	u, err := s.store.UserByUsername(ctx, name)
	if errors.Is(err, models.ErrNotFound) {
		return nil, nil
	}
	return u, err
}

// Users loads users by id, in the order asked, without duplicates or the
// missing.
func (s *Service) Users(ctx context.Context, ids []string) ([]*models.User, error) {
	if err := checkIDs("ids", ids, maxIDsPerQuery); err != nil {
		return nil, err
	}
	found, err := s.store.UsersByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := index(found, func(u *models.User) string { return u.ID })
	out := make([]*models.User, 0, len(found))
	for _, id := range ids {
		if u, ok := byID[id]; ok {
			out = append(out, u)
			delete(byID, id)
		}
	}
	return out, nil
}

// PublicKey loads a public key by id (nil if there is none).
func (s *Service) PublicKey(ctx context.Context, id string) (*models.PublicKey, error) {
	if err := checkID("id", id); err != nil {
		return nil, err
	}
	return Lookup(ctx, s.Loaders(ctx).Keys(), id)
}

// KeyList is a user's newest keys, as many as a plain list holds.
func (s *Service) KeyList(ctx context.Context, userID string) ([]*models.PublicKey, error) {
	ks, _, err := s.store.KeysPage(ctx, userID, nil, models.MaxListedKeys)
	return ks, err
}
