// Package resolvers is the GraphQL adapter: each resolver checks that there is
// a caller, calls the domain (internal/chat) and converts the result. The
// rules of who may see and do what live in the domain; what stays here is
// GraphQL's own: per-response loaders, websocket set-up, subscription
// channels, and the limits on sign-in attempts and subscriptions.
package resolvers

import (
	"log/slog"

	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/internal/ratelimit"
)

// Resolver holds the dependencies of every resolver. It is built once in run().
type Resolver struct {
	chat *chat.Service
	auth *auth.Authenticator
	log  *slog.Logger
	obs  Observer
	// loginLimit counts failed logins per client IP and username,
	// loginIPLimit per client IP whatever the username (against credential
	// stuffing), registerLimit failed registrations per client IP.
	loginLimit, loginIPLimit, registerLimit ratelimit.Limiter
	// wsInitLimit counts connection_init attempts per client IP.
	wsInitLimit ratelimit.Limiter
	maxSubs     int
}

// Deps are the Resolver's dependencies.
type Deps struct {
	Chat *chat.Service
	// Auth authenticates websockets in their connection_init.
	Auth *auth.Authenticator
	Log  *slog.Logger
	// Observer counts events for metrics; nil counts nothing.
	Observer Observer
	// AuthLimiter counts failed logins per client IP and username;
	// AuthIPLimiter failed logins per client IP; RegisterLimiter failed
	// registrations per client IP; WSInitLimiter connection_init attempts per
	// client IP. nil disables each.
	AuthLimiter     ratelimit.Limiter
	AuthIPLimiter   ratelimit.Limiter
	RegisterLimiter ratelimit.Limiter
	WSInitLimiter   ratelimit.Limiter
	// MaxSubscriptions caps the subscriptions of one websocket; 0 is no cap.
	MaxSubscriptions int
}

// New builds the Resolver.
func New(d Deps) *Resolver {
	if d.Observer == nil {
		d.Observer = noObserver{}
	}
	off := ratelimit.NewMemory(0, 0, nil)
	for _, l := range []*ratelimit.Limiter{&d.AuthLimiter, &d.AuthIPLimiter, &d.RegisterLimiter, &d.WSInitLimiter} {
		if *l == nil {
			*l = off
		}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{
		chat:          d.Chat,
		auth:          d.Auth,
		log:           d.Log,
		obs:           d.Observer,
		loginLimit:    d.AuthLimiter,
		loginIPLimit:  d.AuthIPLimiter,
		registerLimit: d.RegisterLimiter,
		wsInitLimit:   d.WSInitLimiter,
		maxSubs:       d.MaxSubscriptions,
	}
}
