// Package auth issues and checks session tokens and carries the authenticated
// user in the request context.
package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/maypok86/otter/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/qchat/qchat/internal/reqctx"
	"github.com/qchat/qchat/models"
)

// Store is what the authenticator needs from the database.
type Store interface {
	CreateSession(ctx context.Context, s *models.Session) error
	SessionByHash(ctx context.Context, hash []byte) (*models.Session, error)
	DeleteSession(ctx context.Context, hash []byte) error
	UserByID(ctx context.Context, id string) (*models.User, error)
}

// Config tunes the authenticator.
type Config struct {
	BcryptCost int           // default bcrypt.DefaultCost (10)
	SessionTTL time.Duration // default 7 days
	CacheTTL   time.Duration // how long a checked token is trusted without the database; default 30s
	CacheSize  int           // default 100,000 sessions
}

// Authenticator hashes passwords and issues, checks and revokes sessions. Checked
// sessions are cached briefly so a request costs no database round trip; Revoke
// drops the cached entry at once.
type Authenticator struct {
	store Store
	cfg   Config
	cache *otter.Cache[string, cached]
	// dummyHash is compared against when a login names no user, so that the
	// answer takes as long as for a wrong password.
	dummyHash []byte
}

type cached struct {
	user      *models.User
	expiresAt time.Time
}

// New builds an Authenticator.
func New(store Store, cfg Config) *Authenticator {
	if cfg.BcryptCost == 0 {
		cfg.BcryptCost = bcrypt.DefaultCost
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 7 * 24 * time.Hour
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 30 * time.Second
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 100_000
	}
	dummy, _ := bcrypt.GenerateFromPassword([]byte("qchat-dummy-password"), cfg.BcryptCost)
	return &Authenticator{
		store: store,
		cfg:   cfg,
		cache: otter.Must(&otter.Options[string, cached]{
			MaximumSize:      cfg.CacheSize,
			ExpiryCalculator: otter.ExpiryWriting[string, cached](cfg.CacheTTL),
		}),
		dummyHash: dummy,
	}
}

// HashPassword hashes a password with bcrypt.
func (a *Authenticator) HashPassword(password string) ([]byte, error) {
	h, err := bcrypt.GenerateFromPassword([]byte(password), a.cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	return h, nil
}

// CheckPassword compares a password with a user's hash; u may be nil (unknown
// user), in which case the comparison still runs and fails.
func (a *Authenticator) CheckPassword(u *models.User, password string) bool {
	if u == nil {
		_ = bcrypt.CompareHashAndPassword(a.dummyHash, []byte(password))
		return false
	}
	return bcrypt.CompareHashAndPassword(u.PasswordHash, []byte(password)) == nil
}

// Issue creates a session for u and returns its token.
func (a *Authenticator) Issue(ctx context.Context, u *models.User) (token string, expiresAt models.Time, err error) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", models.Time{}, fmt.Errorf("session token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(raw)
	now := models.Now()
	expiresAt = models.Time{Time: now.Add(a.cfg.SessionTTL)}
	sess := &models.Session{TokenHash: hash(token), UserID: u.ID, CreatedAt: now, ExpiresAt: expiresAt}
	if err := a.store.CreateSession(ctx, sess); err != nil {
		return "", models.Time{}, fmt.Errorf("create session: %w", err)
	}
	return token, expiresAt, nil
}

// ErrInvalidToken means the token is unknown, expired or revoked.
var ErrInvalidToken = errors.New("invalid or expired token")

// Authenticate returns the user a token belongs to.
func (a *Authenticator) Authenticate(ctx context.Context, token string) (*models.User, error) {
	u, _, err := a.AuthenticateUntil(ctx, token)
	return u, err
}

// AuthenticateUntil is Authenticate that also says when the session expires,
// for connections that outlive a request (websockets).
func (a *Authenticator) AuthenticateUntil(ctx context.Context, token string) (*models.User, time.Time, error) {
	if token == "" || len(token) > 128 {
		return nil, time.Time{}, ErrInvalidToken
	}
	h := hash(token)
	key := string(h)
	if c, ok := a.cache.GetIfPresent(key); ok {
		if time.Now().Before(c.expiresAt) {
			return c.user, c.expiresAt, nil
		}
		a.cache.Invalidate(key)
		return nil, time.Time{}, ErrInvalidToken
	}
	sess, err := a.store.SessionByHash(ctx, h)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return nil, time.Time{}, ErrInvalidToken
		}
		return nil, time.Time{}, fmt.Errorf("look up session: %w", err)
	}
	u, err := a.store.UserByID(ctx, sess.UserID)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return nil, time.Time{}, ErrInvalidToken
		}
		return nil, time.Time{}, fmt.Errorf("look up session user: %w", err)
	}
	a.cache.Set(key, cached{user: u, expiresAt: sess.ExpiresAt.Time})
	return u, sess.ExpiresAt.Time, nil
}

// Revoke ends the session of a token.
func (a *Authenticator) Revoke(ctx context.Context, token string) error {
	h := hash(token)
	a.cache.Invalidate(string(h))
	if err := a.store.DeleteSession(ctx, h); err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// Forget drops a token from the cache without touching the database; a peer
// instance that revoked the token calls it (see the broker's invalidations).
func (a *Authenticator) Forget(tokenHash []byte) { a.cache.Invalidate(string(tokenHash)) }

// ForgetUser drops every cached session of a user, so the next request reads
// the user afresh (after a key rotation on another instance).
func (a *Authenticator) ForgetUser(userID string) {
	var stale []string
	for k, c := range a.cache.All() {
		if c.user.ID == userID {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		a.cache.Invalidate(k)
	}
}

// BearerToken extracts the token from an Authorization header value.
func BearerToken(header string) string {
	const prefix = "bearer "
	if len(header) > len(prefix) && strings.EqualFold(header[:len(prefix)], prefix) {
		return strings.TrimSpace(header[len(prefix):])
	}
	return ""
}

func hash(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// TokenHash is the stored form of a token.
func TokenHash(token string) []byte { return hash(token) }

type ctxKey int

const (
	userKey ctxKey = iota
	tokenKey
)

// WithUser returns a context carrying the authenticated user and its token;
// the user's id also goes to reqctx, where the logger finds it.
func WithUser(ctx context.Context, u *models.User, token string) context.Context {
	ctx = reqctx.WithUserID(ctx, u.ID)
	ctx = context.WithValue(ctx, userKey, u)
	return context.WithValue(ctx, tokenKey, token)
}

// UserFrom returns the authenticated user, or nil.
func UserFrom(ctx context.Context) *models.User {
	u, _ := ctx.Value(userKey).(*models.User)
	return u
}

// TokenFrom returns the token the request authenticated with.
func TokenFrom(ctx context.Context) string {
	t, _ := ctx.Value(tokenKey).(string)
	return t
}

// Close stops the cache's expiry goroutine.
func (a *Authenticator) Close() { a.cache.StopAllGoroutines() }
