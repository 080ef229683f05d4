package graph

import (
	"context"
	"sync"
	"sync/atomic"
)

// SocketState is what the application knows about one websocket beyond
// gqlgen's connection: why it is being closed, so the close frame can say so.
type SocketState struct {
	revoked     atomic.Bool
	rateLimited atomic.Bool

	mu     sync.Mutex
	closed chan struct{} // made when the close handshake starts, closed when it ends
}

// closeStarted records that the close handshake began; the returned func
// marks its end.
func (s *SocketState) closeStarted() (done func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = make(chan struct{})
	return func() { close(s.closed) }
}

// WaitClosed waits for the socket's close handshake, if one has started, to
// end; coder/websocket bounds a handshake (5 s for a silent peer). A
// handshake that starts later (the transport closes a socket whose peer
// went first after the handler returns) is not waited for: the peer has
// already gone.
func (s *SocketState) WaitClosed() {
	s.mu.Lock()
	ch := s.closed
	s.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// Revoke marks the socket's session as ended: its close frame carries 4403.
func (s *SocketState) Revoke() { s.revoked.Store(true) }

// RateLimited marks a refused connection_init as rate limited: its close
// frame carries 4429, as graphql-ws defines for too many initialisations.
func (s *SocketState) RateLimited() { s.rateLimited.Store(true) }

type socketStateKey struct{}

// WithSocketState gives an upgrade request its SocketState; the websocket
// transport and the resolvers find it through the request's context.
func WithSocketState(ctx context.Context) context.Context {
	return context.WithValue(ctx, socketStateKey{}, new(SocketState))
}

// SocketStateFrom returns the socket's state, or nil outside a websocket.
func SocketStateFrom(ctx context.Context) *SocketState {
	s, _ := ctx.Value(socketStateKey{}).(*SocketState)
	return s
}
