// Package sharedstate builds the state a QChat instance shares with its
// peers (the event broker, presence and rate limits) from the configuration:
// in process memory for a single instance, or in Redis when several share the
// load.
package sharedstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/ratelimit"
)

// State is an instance's broker, presence tracker and limiters.
type State struct {
	Broker   broker.Broker
	Presence presence.Tracker
	// NewLimiter returns the limiter called name (its keys are kept apart
	// from other limiters'); limit <= 0 disables it.
	NewLimiter func(name string, limit int, window time.Duration) ratelimit.Limiter
	// NewBucket returns the token bucket limiter called name, refilling at
	// rate per second up to burst; rate <= 0 disables it.
	NewBucket func(name string, rate float64, burst int) ratelimit.Limiter
	// BrokerHealth checks the shared broker; nil for the in-memory one, which
	// has nothing to check.
	BrokerHealth func(ctx context.Context) error
	// BrokerStats counts the deliveries to this instance's subscribers.
	BrokerStats func() (delivered, dropped uint64)

	closers []func() error
}

// Option tunes Open.
type Option func(*options)

type options struct {
	presenceTTL  time.Duration
	brokerBuffer int
}

// WithPresenceTTL sets how long a dead instance's users stay online
// (presence.DefaultTTL); only Redis uses it.
func WithPresenceTTL(d time.Duration) Option {
	return func(o *options) { o.presenceTTL = d }
}

// WithBrokerBuffer sets each local subscriber's event buffer (0: the
// broker's default); tests make it small to provoke slow consumers.
func WithBrokerBuffer(n int) Option {
	return func(o *options) { o.brokerBuffer = n }
}

// Timeouts of the Redis client: short, because a request waits on the rate
// limiter and on the broker, and an unreachable Redis must slow it by little
// (both then let the request through).
const (
	dialTimeout = time.Second
	ioTimeout   = time.Second
)

// Open returns in-memory state when redisURL is empty, and Redis-backed state
// (sharing one client, every key and channel under prefix) otherwise. An
// unreachable Redis is not an error: storage does not need it, so the
// instance starts, reports the broker degraded and reconnects by itself. A
// malformed URL is an error.
func Open(ctx context.Context, redisURL, prefix string, log *slog.Logger, opts ...Option) (*State, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if redisURL == "" {
		brk := broker.NewMemory(o.brokerBuffer)
		return &State{
			Broker:   brk,
			Presence: presence.NewMemory(),
			NewLimiter: func(_ string, limit int, window time.Duration) ratelimit.Limiter {
				return ratelimit.NewMemory(limit, window, nil)
			},
			NewBucket: func(_ string, rate float64, burst int) ratelimit.Limiter {
				return ratelimit.NewMemoryBucket(rate, burst, nil)
			},
			BrokerStats: brk.Stats,
			closers:     []func() error{brk.Close},
		}, nil
	}

	ropts, err := redis.ParseURL(redisURL)
	if err != nil {
		// The error of ParseURL may quote the URL, password included.
		return nil, errors.New("REDIS_URL: want redis://[user:password@]host:port[/db] or rediss://...")
	}
	if ropts.DialTimeout == 0 {
		ropts.DialTimeout = dialTimeout
	}
	if ropts.ReadTimeout == 0 {
		ropts.ReadTimeout = ioTimeout
	}
	if ropts.WriteTimeout == 0 {
		ropts.WriteTimeout = ioTimeout
	}
	// One dial attempt per command: the broker's loop has its own backoff,
	// and a request should not wait through go-redis's dial retries.
	ropts.DialerRetries = 1
	ropts.ContextTimeoutEnabled = true
	client := redis.NewClient(ropts)

	pingCtx, cancel := context.WithTimeout(ctx, 2*time.Second)
	if err := client.Ping(pingCtx).Err(); err != nil {
		log.Warn("redis unreachable at start: serving anyway, live events stay on this instance until it answers", "addr", ropts.Addr, "err", err)
	}
	cancel()

	id := broker.NewInstanceID()
	brk := broker.NewRedis(client, broker.RedisOptions{Prefix: prefix, InstanceID: id, Log: log, Buffer: o.brokerBuffer})
	pres := presence.NewRedis(client, presence.RedisOptions{Prefix: prefix, InstanceID: id, TTL: o.presenceTTL, Log: log})
	log.Info("shared state in redis", "addr", ropts.Addr, "prefix", prefix, "instance", id)
	return &State{
		Broker:   brk,
		Presence: pres,
		NewLimiter: func(name string, limit int, window time.Duration) ratelimit.Limiter {
			return ratelimit.NewRedis(client, prefix+"ratelimit:"+name+":", limit, window)
		},
		NewBucket: func(name string, rate float64, burst int) ratelimit.Limiter {
			// Redis's clock, shared by every instance.
			return ratelimit.NewRedisBucket(client, prefix+"ratelimit:"+name+":", rate, burst, nil)
		},
		BrokerHealth: brk.Health,
		BrokerStats:  brk.Stats,
		// The broker first: its subscribers end before presence withdraws.
		closers: []func() error{brk.Close, pres.Close, client.Close},
	}, nil
}

// Close releases everything Open built, in order.
func (b *State) Close() error {
	var errs []error
	for _, c := range b.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	b.closers = nil
	if len(errs) > 0 {
		return fmt.Errorf("close shared state: %w", errors.Join(errs...))
	}
	return nil
}
