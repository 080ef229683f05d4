package resolvers

import (
	"context"
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

func (r *Resolver) issue(ctx context.Context, u *models.User) (*models.AuthPayload, error) {
	token, exp, err := r.auth.Issue(ctx, u)
	if err != nil {
		return nil, err
	}
	return &models.AuthPayload{Token: token, ExpiresAt: exp, User: u}, nil
}

func newID() string { return uuid.NewString() }

func (r *Resolver) register(ctx context.Context, input models.RegisterInput) (*models.AuthPayload, error) {
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
	hash, err := r.auth.HashPassword(input.Password)
	if err != nil {
		return nil, err
	}
	u := &models.User{ID: newID(), Username: username, PasswordHash: hash, CreatedAt: models.Now()}
	if err := r.store.CreateUser(ctx, u, key); err != nil {
		return nil, err
	}
	r.security(ctx, slog.LevelInfo, "register", "user_id", u.ID)
	return r.issue(ctx, u)
}
