// Package resolvers implements the GraphQL schema: each resolver authorizes the
// caller, calls the store or the broker, and converts the result. The generated
// *.resolvers.go files hold thin bodies; the rules they share live beside them.
package resolvers

import (
	"log/slog"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/ratelimit"
)

// Resolver holds the dependencies of every resolver. It is built once in run().
type Resolver struct {
	store    *db.Store
	auth     *auth.Authenticator
	broker   broker.Broker
	presence presence.Tracker
	blobs    BlobStore
	log      *slog.Logger
	obs      Observer
	// loginLimit counts failed logins per client IP and username,
	// loginIPLimit per client IP whatever the username (against credential
	// stuffing), registerLimit failed registrations per client IP.
	loginLimit, loginIPLimit, registerLimit ratelimit.Limiter
	// wsInitLimit counts connection_init attempts per client IP.
	wsInitLimit ratelimit.Limiter
	maxSubs     int
	sockets     sockets
	recipients  recipientCache
	// members caches "is user U in room R" for the re-check done on every live
	// event; this process's membership changes evict entries at once, the TTL
	// bounds staleness otherwise.
	members *otter.Cache[string, bool]
}

// Deps are the Resolver's dependencies.
type Deps struct {
	Store    *db.Store
	Auth     *auth.Authenticator
	Broker   broker.Broker
	Presence presence.Tracker
	// Blobs keeps document ciphertexts; nil means the database.
	Blobs BlobStore
	Log   *slog.Logger
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
	if d.Blobs == nil {
		d.Blobs = d.Store.Blobs()
	}
	if d.Observer == nil {
		d.Observer = noObserver{}
	}
	off := ratelimit.NewMemory(0, 0, nil)
	for _, l := range []*ratelimit.Limiter{&d.AuthLimiter, &d.AuthIPLimiter, &d.RegisterLimiter} {
		if *l == nil {
			*l = off
		}
	}
	if d.WSInitLimiter == nil {
		d.WSInitLimiter = ratelimit.NewMemory(0, 0, nil)
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Resolver{
		store:         d.Store,
		auth:          d.Auth,
		broker:        d.Broker,
		presence:      d.Presence,
		blobs:         d.Blobs,
		log:           d.Log,
		obs:           d.Observer,
		loginLimit:    d.AuthLimiter,
		loginIPLimit:  d.AuthIPLimiter,
		registerLimit: d.RegisterLimiter,
		wsInitLimit:   d.WSInitLimiter,
		maxSubs:       d.MaxSubscriptions,
		recipients:    newRecipientCache(),
		members: otter.Must(&otter.Options[string, bool]{
			MaximumSize:      100_000,
			ExpiryCalculator: otter.ExpiryWriting[string, bool](5 * time.Second),
		}),
	}
}

// Close stops the background work of the resolver's caches.
func (r *Resolver) Close() {
	r.members.StopAllGoroutines()
	r.recipients.close()
}
