package presence

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Tracker = (*Redis)(nil)

// DefaultTTL is how long an instance's claim that a user is online lasts
// without a heartbeat: the longest a user of a killed instance stays online.
const DefaultTTL = 30 * time.Second

// scriptBatch bounds the keys one script call handles, so that a heartbeat of
// many users does not hold Redis for long.
const scriptBatch = 256

// Redis tracks presence across instances. Per user, a sorted set
// <prefix>presence:<userID> holds the instances with a socket of that user,
// each scored with the time (milliseconds, Redis clock) its claim expires. An
// instance counts its own sockets in memory, claims a user on its first one
// and withdraws on its last; a heartbeat renews its claims every TTL/3. A user
// is online while some claim has not expired, so the users of an instance
// that dies without a word go offline within the TTL, and nothing needs
// cleaning: expired claims are removed as they are met, and a set expires
// with its last claim.
//
// Every script reads the time from Redis (TIME), so the instances' clocks do
// not need to agree. Online answers from this instance's own sockets while
// Redis is unreachable, so that queries keep working.
//
// Several keys go through one script (Online, the heartbeat): Redis Cluster,
// which refuses scripts across hash slots, is not supported.
type Redis struct {
	client   redis.UniversalClient
	prefix   string
	instance string
	ttl      time.Duration
	log      *slog.Logger

	mu    sync.Mutex
	conns map[string]int // this instance's sockets per user

	degraded atomic.Bool // the last Online fell back to local counts
	stop     context.CancelFunc
	done     chan struct{}
	closing  sync.Once
}

// RedisOptions tune a Redis tracker; the zero value is usable.
type RedisOptions struct {
	// Prefix starts every key: <Prefix>presence:<userID>.
	Prefix string
	// InstanceID names this process in the sets; empty means a random one.
	InstanceID string
	// TTL is how long a claim lasts without a heartbeat (DefaultTTL).
	TTL time.Duration
	// Log receives failures of the heartbeat; nil discards.
	Log *slog.Logger
}

// nowMS is the Redis clock in milliseconds, shared by the scripts.
const nowMS = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`

// claim adds or renews ARGV[2]'s claim on KEYS[1] for ARGV[1] ms and returns
// how many other instances hold a live claim.
var claim = redis.NewScript(nowMS + `
local ttl = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local others = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[2]) then others = others - 1 end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return others
`)

// withdraw removes ARGV[1]'s claim on KEYS[1] and returns how many live claims
// remain.
var withdraw = redis.NewScript(nowMS + `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
`)

// renew extends ARGV[2]'s existing claims on KEYS by ARGV[1] ms and returns
// the (1-based) indexes of the keys where it had none: Redis lost them (a
// restart without persistence, an eviction) and they must be claimed again.
// It does not create claims itself, so that a renewal racing with the last
// disconnection cannot resurrect a withdrawn claim.
var renew = redis.NewScript(nowMS + `
local ttl = tonumber(ARGV[1])
local missing = {}
for i, key in ipairs(KEYS) do
  if redis.call('ZADD', key, 'XX', 'CH', now + ttl, ARGV[2]) == 0 then
    missing[#missing + 1] = i
  else
    redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
    if redis.call('PTTL', key) < ttl then redis.call('PEXPIRE', key, ttl) end
  end
end
return missing
`)

// countLive returns, for each of KEYS, how many live claims it holds.
var countLive = redis.NewScript(nowMS + `
local out = {}
for i, key in ipairs(KEYS) do
  out[i] = redis.call('ZCOUNT', key, string.format('(%d', now), '+inf')
end
return out
`)

// NewRedis returns a tracker on client and starts its heartbeat; Close stops
// it. client is not closed by Close.
func NewRedis(client redis.UniversalClient, opts RedisOptions) *Redis {
	if opts.InstanceID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		opts.InstanceID = hex.EncodeToString(b[:])
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	r := &Redis{
		client: client, prefix: opts.Prefix, instance: opts.InstanceID, ttl: opts.TTL,
		log:   opts.Log.With("component", "presence", "instance", opts.InstanceID),
		conns: map[string]int{}, stop: stop, done: make(chan struct{}),
	}
	go r.heartbeat(ctx)
	return r
}

func (r *Redis) key(userID string) string { return r.prefix + "presence:" + userID }

func (r *Redis) ttlMS() int64 { return r.ttl.Milliseconds() }

// Connect implements Tracker. The socket is counted even when Redis fails, so
// that its Disconnect balances; the heartbeat claims the user once Redis is
// back.
func (r *Redis) Connect(ctx context.Context, userID string) (bool, error) {
	r.mu.Lock()
	r.conns[userID]++
	first := r.conns[userID] == 1
	r.mu.Unlock()
	if !first {
		return false, nil
	}
	others, err := claim.Run(ctx, r.client, []string{r.key(userID)}, r.ttlMS(), r.instance).Int64()
	if err != nil {
		return false, fmt.Errorf("presence: claim %s: %w", userID, err)
	}
	return others == 0, nil
}

// Disconnect implements Tracker.
//
// A Connect and a Disconnect of the same user on the same instance racing
// each other to Redis can leave a claim without a socket; it then expires
// within the TTL, since the heartbeat renews only the users counted here.
func (r *Redis) Disconnect(ctx context.Context, userID string) (bool, error) {
	r.mu.Lock()
	n := r.conns[userID]
	switch {
	case n <= 0:
		r.mu.Unlock()
		return false, nil
	case n > 1:
		r.conns[userID] = n - 1
		r.mu.Unlock()
		return false, nil
	}
	delete(r.conns, userID)
	r.mu.Unlock()
	left, err := withdraw.Run(ctx, r.client, []string{r.key(userID)}, r.instance).Int64()
	if err != nil {
		return false, fmt.Errorf("presence: withdraw %s: %w", userID, err)
	}
	return left == 0, nil
}

// Online implements Tracker. If Redis does not answer, it reports the users
// with a socket on this instance (and logs the outage once): a list of
// members must not fail because presence is unknown.
func (r *Redis) Online(ctx context.Context, userIDs []string) (map[string]bool, error) {
	out := make(map[string]bool, len(userIDs))
	for start := 0; start < len(userIDs); start += scriptBatch {
		ids := userIDs[start:min(start+scriptBatch, len(userIDs))]
		keys := make([]string, len(ids))
		for i, id := range ids {
			keys[i] = r.key(id)
		}
		counts, err := countLive.Run(ctx, r.client, keys).Int64Slice()
		if err == nil && len(counts) != len(ids) {
			err = fmt.Errorf("%d counts for %d keys", len(counts), len(ids))
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if !r.degraded.Swap(true) {
				r.log.WarnContext(ctx, "presence: redis unreachable, answering from this instance's sockets", "err", err)
			}
			return r.localOnline(userIDs), nil
		}
		for i, id := range ids {
			out[id] = counts[i] > 0
		}
	}
	if r.degraded.Swap(false) {
		r.log.InfoContext(ctx, "presence: redis answers again")
	}
	return out, nil
}

func (r *Redis) localOnline(userIDs []string) map[string]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]bool, len(userIDs))
	for _, id := range userIDs {
		out[id] = r.conns[id] > 0
	}
	return out
}

// heartbeat renews this instance's claims every TTL/3 until ctx ends, so that
// a claim survives two missed beats before it expires.
func (r *Redis) heartbeat(ctx context.Context) {
	defer close(r.done)
	t := time.NewTicker(r.ttl / 3)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		beatCtx, cancel := context.WithTimeout(ctx, r.ttl/3)
		err := r.beat(beatCtx)
		cancel()
		switch {
		case err != nil && ctx.Err() == nil && !failing:
			failing = true
			r.log.Warn("presence heartbeat failed: this instance's users go offline for the others if it lasts beyond the TTL", "ttl", r.ttl.String(), "err", err)
		case err == nil && failing:
			failing = false
			r.log.Info("presence heartbeat restored")
		}
	}
}

// beat renews the claims of every user with a socket here, and claims again
// those Redis lost.
func (r *Redis) beat(ctx context.Context) error {
	users := r.localUsers()
	for start := 0; start < len(users); start += scriptBatch {
		batch := users[start:min(start+scriptBatch, len(users))]
		keys := make([]string, len(batch))
		for i, id := range batch {
			keys[i] = r.key(id)
		}
		missing, err := renew.Run(ctx, r.client, keys, r.ttlMS(), r.instance).Int64Slice()
		if err != nil {
			return fmt.Errorf("presence: renew: %w", err)
		}
		for _, i := range missing {
			if i < 1 || int(i) > len(batch) {
				continue
			}
			if err := r.reclaim(ctx, batch[i-1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// reclaim claims userID again if it still has a socket here. If the last one
// closed meanwhile, the claim is withdrawn again: its Disconnect may have run
// before the claim was made.
func (r *Redis) reclaim(ctx context.Context, userID string) error {
	if !r.connected(userID) {
		return nil
	}
	if err := claim.Run(ctx, r.client, []string{r.key(userID)}, r.ttlMS(), r.instance).Err(); err != nil {
		return fmt.Errorf("presence: reclaim %s: %w", userID, err)
	}
	if !r.connected(userID) {
		if err := withdraw.Run(ctx, r.client, []string{r.key(userID)}, r.instance).Err(); err != nil {
			return fmt.Errorf("presence: withdraw %s: %w", userID, err)
		}
	}
	return nil
}

func (r *Redis) connected(userID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns[userID] > 0
}

func (r *Redis) localUsers() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	users := make([]string, 0, len(r.conns))
	for id := range r.conns {
		users = append(users, id)
	}
	return users
}

// Close stops the heartbeat and withdraws this instance's remaining claims,
// so that its users do not wait for the TTL to go offline. It does not close
// the Redis client.
func (r *Redis) Close() error {
	var err error
	r.closing.Do(func() {
		r.stop()
		<-r.done
		users := r.localUsers()
		if len(users) == 0 {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		// One round trip; Eval rather than Run, whose fallback from EVALSHA
		// to EVAL cannot work inside a pipeline.
		pipe := r.client.Pipeline()
		for _, id := range users {
			withdraw.Eval(ctx, pipe, []string{r.key(id)}, r.instance)
		}
		if _, e := pipe.Exec(ctx); e != nil {
			err = fmt.Errorf("presence: withdraw %d claims on close: %w", len(users), e)
		}
	})
	return err
}
