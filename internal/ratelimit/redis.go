package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

var _ Limiter = (*Redis)(nil)

// Redis is the fixed-window counter of Memory kept in Redis, so that every
// instance spends from the same budget: key <prefix><name>:<key> holds the
// count of the current window and expires when the window ends.
//
// The semantics are Memory's: the window starts at a key's first request, a
// rejected request is not counted (a client hammering a closed window does
// not deepen its penalty), and Result has the same fields. Errors are
// returned, not hidden: the caller decides to fail open (ratelimit.HTTP does).
type Redis struct {
	client redis.UniversalClient
	prefix string
	limit  int
	window time.Duration
}

// take counts one request in KEYS[1] unless the window's count already
// reached ARGV[1]; the first request of a window starts its ARGV[2] ms expiry.
// It returns {count, allowed, ms to the end of the window}.
var take = redis.NewScript(`
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local allowed = 0
if n < limit then
  n = redis.call('INCR', KEYS[1])
  allowed = 1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  -- A new window, or (defensively) a counter that lost its expiry.
  redis.call('PEXPIRE', KEYS[1], window)
  ttl = window
end
return {n, allowed, ttl}
`)

// NewRedis returns a limiter allowing limit requests per window and key,
// counted in Redis under prefix (e.g. "qchat:ratelimit:api:"). limit <= 0 or
// window <= 0 disables it without touching Redis.
func NewRedis(client redis.UniversalClient, prefix string, limit int, window time.Duration) *Redis {
	return &Redis{client: client, prefix: prefix, limit: limit, window: window}
}

func (r *Redis) disabled() bool { return r.limit <= 0 || r.window <= 0 }

// Take implements Limiter.
func (r *Redis) Take(ctx context.Context, key string) (Result, error) {
	if r.disabled() {
		return Result{Allowed: true}, nil
	}
	v, err := take.Run(ctx, r.client, []string{r.prefix + key}, r.limit, r.window.Milliseconds()).Int64Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: take: %w", err)
	}
	if len(v) != 3 {
		return Result{}, fmt.Errorf("ratelimit: take: unexpected reply %v", v)
	}
	return r.result(int(v[0]), time.Duration(v[2])*time.Millisecond, v[1] == 1), nil
}

// Peek implements Limiter: Allowed says whether a Take now would be allowed.
func (r *Redis) Peek(ctx context.Context, key string) (Result, error) {
	if r.disabled() {
		return Result{Allowed: true}, nil
	}
	k := r.prefix + key
	pipe := r.client.Pipeline()
	get := pipe.Get(ctx, k)
	pttl := pipe.PTTL(ctx, k)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Result{}, fmt.Errorf("ratelimit: peek: %w", err)
	}
	n, err := get.Int()
	ttl := pttl.Val()
	if errors.Is(err, redis.Nil) || ttl <= 0 {
		// No window yet (or it ends now): a Take would start a new one.
		n, ttl = 0, r.window
	} else if err != nil {
		return Result{}, fmt.Errorf("ratelimit: peek: %w", err)
	}
	return r.result(n, ttl, n < r.limit), nil
}

// Reset implements Limiter.
func (r *Redis) Reset(ctx context.Context, key string) error {
	if r.disabled() {
		return nil
	}
	if err := r.client.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("ratelimit: reset: %w", err)
	}
	return nil
}

func (r *Redis) result(count int, reset time.Duration, allowed bool) Result {
	res := Result{
		Allowed:   allowed,
		Limit:     r.limit,
		Remaining: max(r.limit-count, 0),
		Reset:     reset,
	}
	if !allowed {
		res.RetryAfter = reset
	}
	return res
}
