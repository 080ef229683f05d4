// Package chat is QChat's domain: the rules of who may see and do what
// (accounts, keys, rooms and roles, messages, documents, receipts, typing,
// presence), the caches those rules read and their invalidation across
// instances, and the publishing of events to the broker. The GraphQL
// resolvers and the REST routes are thin adapters over its Service.
package chat

import (
	"context"
	"log/slog"
	"time"

	"github.com/maypok86/otter/v2"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/models"
	"github.com/qchat/qchat/pqcrypto"
)

// Sessions is what the domain needs of authentication: issuing and revoking
// sessions, hashing and checking passwords, and forgetting cached sessions
// when another instance says so (*auth.Authenticator implements it).
type Sessions interface {
	Issue(ctx context.Context, u *models.User) (token string, expires models.Time, err error)
	Revoke(ctx context.Context, token string) error
	HashPassword(password string) ([]byte, error)
	CheckPassword(u *models.User, password string) bool
	Forget(tokenHash []byte)
	ForgetUser(userID string)
}

// Broker carries events to the topics of users and invalidations between
// instances (broker.Broker implements it).
type Broker interface {
	Publish(ctx context.Context, topics []string, ev *broker.Event) error
	Subscribe(ctx context.Context, topic string) (<-chan *broker.Event, error)
	SubscribeFunc(ctx context.Context, topic string, deliver func(*broker.Event) bool, end func()) error
}

// Presence counts each user's open sockets across instances
// (presence.Tracker implements it).
type Presence interface {
	Connect(ctx context.Context, userID string) (cameOnline bool, err error)
	Disconnect(ctx context.Context, userID string) (wentOffline bool, err error)
	Online(ctx context.Context, userIDs []string) (map[string]bool, error)
}

// Metrics counts what operators watch (metrics.Metrics implements it).
type Metrics interface {
	MessageSent()
}

// Service holds the domain's dependencies and caches. It is built once at
// start-up and shared by every request.
type Service struct {
	store    Store
	auth     Sessions
	broker   Broker
	presence Presence
	blobs    BlobStore
	log      *slog.Logger
	metrics  Metrics

	sockets    sockets
	recipients recipientCache
	// members caches "is user U in room R" for the re-check done on every live
	// event; this process's membership changes evict entries at once, the TTL
	// bounds staleness otherwise.
	members *otter.Cache[string, bool]
	// identities holds parsed identity keys by their raw bytes.
	identities *otter.Cache[string, *pqcrypto.IdentityPublicKey]
	// signers holds each recent sender's current identity key for the
	// signature check of every send; a change evicts it here and, through
	// the "user" invalidation, on every instance; the TTL bounds staleness
	// otherwise.
	signers *otter.Cache[string, *pqcrypto.IdentityPublicKey]
}

// Deps are the Service's dependencies.
type Deps struct {
	Store    Store
	Sessions Sessions
	Broker   Broker
	Presence Presence
	// Blobs keeps document ciphertexts; nil means the database.
	Blobs BlobStore
	Log   *slog.Logger
	// Metrics counts sent messages; nil counts nothing.
	Metrics Metrics
}

// New builds the Service.
func New(d Deps) *Service {
	if d.Blobs == nil {
		d.Blobs = d.Store.Blobs()
	}
	if d.Metrics == nil {
		d.Metrics = noMetrics{}
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{
		store:      d.Store,
		auth:       d.Sessions,
		broker:     d.Broker,
		presence:   d.Presence,
		blobs:      d.Blobs,
		log:        d.Log,
		metrics:    d.Metrics,
		recipients: newRecipientCache(),
		identities: newIdentityCache(),
		signers: otter.Must(&otter.Options[string, *pqcrypto.IdentityPublicKey]{
			MaximumSize:      identityCacheSize,
			ExpiryCalculator: otter.ExpiryWriting[string, *pqcrypto.IdentityPublicKey](recipientTTL),
		}),
		members: otter.Must(&otter.Options[string, bool]{
			MaximumSize:      100_000,
			ExpiryCalculator: otter.ExpiryWriting[string, bool](5 * time.Second),
		}),
	}
}

type noMetrics struct{}

func (noMetrics) MessageSent() {}

// Close stops the background work of the service's caches.
func (s *Service) Close() {
	s.members.StopAllGoroutines()
	s.identities.StopAllGoroutines()
	s.signers.StopAllGoroutines()
	s.recipients.close()
}
