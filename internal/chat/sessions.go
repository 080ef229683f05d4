package chat

import (
	"context"
	"encoding/hex"
	"sync"

	"github.com/qchat/qchat/internal/auth"
)

// sockets maps a session (token hash, hex) to the end functions of the
// websockets it opened, so that a logout on any instance closes them instead
// of leaving a revoked token listening.
type sockets struct {
	mu     sync.Mutex
	byHash map[string]map[*socket]struct{}
}

type socket struct{ end func() }

// TrackSocket registers a websocket of the session of token: end is called
// (once) if the session is revoked here or on another instance. The returned
// untrack forgets the socket when it closes.
func (s *Service) TrackSocket(token string, end func()) (untrack func()) {
	hash, sk := sessionKey(token), &socket{end: end}
	s.sockets.mu.Lock()
	defer s.sockets.mu.Unlock()
	if s.sockets.byHash == nil {
		s.sockets.byHash = map[string]map[*socket]struct{}{}
	}
	if s.sockets.byHash[hash] == nil {
		s.sockets.byHash[hash] = map[*socket]struct{}{}
	}
	s.sockets.byHash[hash][sk] = struct{}{}
	return func() {
		s.sockets.mu.Lock()
		defer s.sockets.mu.Unlock()
		delete(s.sockets.byHash[hash], sk)
		if len(s.sockets.byHash[hash]) == 0 {
			delete(s.sockets.byHash, hash)
		}
	}
}

// revoke ends every socket of a session.
func (c *sockets) revoke(hash string) {
	c.mu.Lock()
	set := c.byHash[hash]
	delete(c.byHash, hash)
	c.mu.Unlock()
	for sk := range set {
		sk.end()
	}
}

// Logout revokes the session of token here and on every instance, closing
// its websockets.
func (s *Service) Logout(ctx context.Context, token string) error {
	if err := s.auth.Revoke(ctx, token); err != nil {
		return err
	}
	s.invalidate(ctx, "session", sessionKey(token))
	return nil
}

func sessionKey(token string) string { return hex.EncodeToString(auth.TokenHash(token)) }
