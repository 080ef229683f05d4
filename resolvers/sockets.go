package resolvers

import (
	"context"
	"sync"

	"github.com/qchat/qchat/graph"
)

// sockets maps a session (token hash, hex) to the websockets it opened, so
// that a logout on any instance closes them (4403) instead of leaving a
// revoked token listening.
type sockets struct {
	mu     sync.Mutex
	byHash map[string]map[*socket]struct{}
}

type socket struct {
	cancel context.CancelFunc
	state  *graph.SocketState
}

func (s *sockets) add(hash string, sk *socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byHash == nil {
		s.byHash = map[string]map[*socket]struct{}{}
	}
	if s.byHash[hash] == nil {
		s.byHash[hash] = map[*socket]struct{}{}
	}
	s.byHash[hash][sk] = struct{}{}
}

func (s *sockets) remove(hash string, sk *socket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byHash[hash], sk)
	if len(s.byHash[hash]) == 0 {
		delete(s.byHash, hash)
	}
}

// revoke closes every socket of a session.
func (s *sockets) revoke(hash string) {
	s.mu.Lock()
	set := s.byHash[hash]
	delete(s.byHash, hash)
	s.mu.Unlock()
	for sk := range set {
		if sk.state != nil {
			sk.state.Revoke()
		}
		sk.cancel()
	}
}

type socketKey struct{}
