package auth

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/qchat/qchat/models"
)

type fakeStore struct {
	sessions map[string]*models.Session
	lookups  atomic.Int32
}

func (f *fakeStore) CreateSession(_ context.Context, s *models.Session) error {
	f.sessions[string(s.TokenHash)] = s
	return nil
}

func (f *fakeStore) SessionByHash(_ context.Context, h []byte) (*models.Session, error) {
	f.lookups.Add(1)
	if s, ok := f.sessions[string(h)]; ok && s.ExpiresAt.After(time.Now()) {
		return s, nil
	}
	return nil, models.NotFound("session")
}

func (f *fakeStore) DeleteSession(_ context.Context, h []byte) error {
	delete(f.sessions, string(h))
	return nil
}

func (f *fakeStore) UserByID(_ context.Context, id string) (*models.User, error) {
	return &models.User{ID: id}, nil
}

func TestSessionsAreCachedAndRevokedAtOnce(t *testing.T) {
	store := &fakeStore{sessions: map[string]*models.Session{}}
	a := New(store, Config{BcryptCost: 4})
	defer a.Close()
	ctx := context.Background()
	token, _, err := a.Issue(ctx, &models.User{ID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		u, err := a.Authenticate(ctx, token)
		if err != nil || u.ID != "u1" {
			t.Fatalf("authenticate: %v %v", u, err)
		}
	}
	if n := store.lookups.Load(); n != 1 {
		t.Fatalf("%d database lookups for 100 requests, want 1", n)
	}
	if err := a.Revoke(ctx, token); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, token); err != ErrInvalidToken {
		t.Fatalf("revoked token: %v", err)
	}
	if _, err := a.Authenticate(ctx, "garbage"); err != ErrInvalidToken {
		t.Fatalf("unknown token: %v", err)
	}
	if len(store.sessions) != 0 {
		t.Fatal("session row left after revoke")
	}
	for h := range store.sessions {
		if h == token {
			t.Fatal("token stored in clear")
		}
	}
}

func TestPasswords(t *testing.T) {
	a := New(&fakeStore{sessions: map[string]*models.Session{}}, Config{BcryptCost: 4})
	defer a.Close()
	h, err := a.HashPassword("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	u := &models.User{PasswordHash: h}
	if !a.CheckPassword(u, "correct horse") || a.CheckPassword(u, "wrong") || a.CheckPassword(nil, "correct horse") {
		t.Fatal("password check")
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "Basic abc": "", "Bearer": "", "": ""} {
		if got := BearerToken(in); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}
