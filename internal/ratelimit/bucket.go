package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/maypok86/otter/v2"
	"github.com/redis/go-redis/v9"
)

// A token bucket limits a signed-in user: it holds up to burst tokens, refills
// at rate tokens per second, and each request takes one. Unlike a fixed window
// it never makes a busy but steady client wait many minutes: a person who used
// the burst is back after a fraction of a second per request, and only a
// client above the sustained rate for long is refused.
//
// Both implementations compute the same state with the same arithmetic, in
// whole milliseconds (see refill), so that one conformance test holds them to
// identical answers. Result maps onto a bucket as: Limit is the burst,
// Remaining the whole tokens left, Reset the time until the bucket is full
// again, RetryAfter the time until the next token.

var (
	_ Limiter = (*MemoryBucket)(nil)
	_ Limiter = (*RedisBucket)(nil)
)

// refill returns the tokens of a bucket that held tokens at ms and is read at
// now (both Unix milliseconds). The Redis script does the same operations in
// the same order (Lua numbers are float64 too).
func refill(tokens float64, at, now int64, rate float64, burst int) float64 {
	if now > at {
		tokens = math.Min(float64(burst), tokens+float64(now-at)*rate/1000)
	}
	return tokens
}

// bucketResult turns a bucket's tokens into a Result.
func bucketResult(tokens, rate float64, burst int, allowed bool) Result {
	res := Result{
		Allowed:   allowed,
		Limit:     burst,
		Remaining: max(int(math.Floor(tokens)), 0),
		Reset:     ceilMS((float64(burst) - tokens) * 1000 / rate),
	}
	if !allowed {
		res.RetryAfter = ceilMS((1 - tokens) * 1000 / rate)
	}
	return res
}

// ceilMS rounds a number of milliseconds up, ignoring float noise below a
// nanosecond (0.998 tokens at 2/s is 1.0000000000000009 ms from the next).
func ceilMS(ms float64) time.Duration {
	return time.Duration(math.Ceil(ms-1e-6)) * time.Millisecond
}

// MemoryBucket is a token bucket per key kept in process memory.
//
// It is written out rather than built on golang.org/x/time/rate so that its
// arithmetic is exactly the Redis script's (whole milliseconds, the same
// float64 operations): both pass one conformance test. Memory is bounded as
// for Memory: a bucket left alone until full is forgotten (a forgotten bucket
// and a full one answer the same), and beyond maxKeys the least useful keys
// are evicted, which errs on the side of allowing.
type MemoryBucket struct {
	rate  float64
	burst int
	now   func() time.Time
	cache *otter.Cache[string, bucketState]
}

type bucketState struct {
	tokens float64
	at     int64 // Unix ms of tokens
}

// NewMemoryBucket returns a token bucket per key refilling at rate tokens per
// second up to burst. rate <= 0 or burst <= 0 disables it. clock is the time
// source (time.Now when nil).
func NewMemoryBucket(rate float64, burst int, clock func() time.Time, opts ...MemoryOption) *MemoryBucket {
	if clock == nil {
		clock = time.Now
	}
	o := memoryOptions{maxKeys: DefaultMaxKeys}
	for _, opt := range opts {
		opt(&o)
	}
	m := &MemoryBucket{rate: rate, burst: burst, now: clock}
	if m.disabled() {
		return m
	}
	m.cache = otter.Must(&otter.Options[string, bucketState]{
		MaximumSize:      o.maxKeys,
		ExpiryCalculator: otter.ExpiryWriting[string, bucketState](fullAfter(rate, burst)),
		Clock:            otterClock{clock},
		Executor:         func(fn func()) { fn() },
	})
	return m
}

// fullAfter is how long an empty bucket takes to fill, plus a second: past
// it, a bucket's entry can go.
func fullAfter(rate float64, burst int) time.Duration {
	return time.Duration(float64(burst)/rate*float64(time.Second)) + time.Second
}

func (m *MemoryBucket) disabled() bool { return m.rate <= 0 || m.burst <= 0 }

// Take implements Limiter: it takes one token if there is one. A refused
// request takes nothing, so hammering does not postpone the next token.
func (m *MemoryBucket) Take(_ context.Context, key string) (Result, error) {
	if m.disabled() {
		return Result{Allowed: true}, nil
	}
	now := m.now().UnixMilli()
	var res Result
	m.cache.Compute(key, func(b bucketState, found bool) (bucketState, otter.ComputeOp) {
		if !found {
			b = bucketState{tokens: float64(m.burst), at: now}
		}
		tokens := refill(b.tokens, b.at, now, m.rate, m.burst)
		if tokens < 1 {
			res = bucketResult(tokens, m.rate, m.burst, false)
			return b, otter.CancelOp
		}
		tokens--
		res = bucketResult(tokens, m.rate, m.burst, true)
		return bucketState{tokens: tokens, at: max(now, b.at)}, otter.WriteOp
	})
	return res, nil
}

// Peek implements Limiter: Allowed says whether a Take now would be allowed.
func (m *MemoryBucket) Peek(_ context.Context, key string) (Result, error) {
	if m.disabled() {
		return Result{Allowed: true}, nil
	}
	now := m.now().UnixMilli()
	b, found := m.cache.GetIfPresent(key)
	if !found {
		b = bucketState{tokens: float64(m.burst), at: now}
	}
	tokens := refill(b.tokens, b.at, now, m.rate, m.burst)
	return bucketResult(tokens, m.rate, m.burst, tokens >= 1), nil
}

// Reset implements Limiter: the key's bucket is full again.
func (m *MemoryBucket) Reset(_ context.Context, key string) error {
	if m.disabled() {
		return nil
	}
	m.cache.Invalidate(key)
	return nil
}

// RedisBucket is MemoryBucket kept in Redis, so that every instance spends
// from the same bucket: key <prefix><key> is a hash {tokens, at} that expires
// once the bucket would be full again.
type RedisBucket struct {
	client redis.UniversalClient
	prefix string
	rate   float64
	burst  int
	// now is the clock; nil means Redis's own (TIME), which every instance
	// shares. Tests inject one.
	now func() time.Time
}

// bucketScript refills KEYS[1] to ARGV[3] (Unix ms; negative: Redis's TIME)
// at ARGV[1] tokens/s up to ARGV[2], and when ARGV[4] is 1 takes a token if
// there is one. It returns {allowed, tokens} with tokens as a string, since
// Redis truncates Lua numbers to integers; %.17g round-trips a float64.
var bucketScript = redis.NewScript(`
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local take = tonumber(ARGV[4])
if now < 0 then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1])
local at = tonumber(v[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
if now > at then
  tokens = math.min(burst, tokens + (now - at) * rate / 1000)
  at = now
end
local allowed = 0
if tokens >= 1 then
  allowed = 1
  if take == 1 then
    tokens = tokens - 1
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%d', at))
    redis.call('PEXPIRE', KEYS[1], math.ceil((burst - tokens) * 1000 / rate) + 1000)
  end
end
return {allowed, string.format('%.17g', tokens)}
`)

// NewRedisBucket returns a token bucket per key in Redis under prefix (e.g.
// "qchat:ratelimit:user:"). rate <= 0 or burst <= 0 disables it without
// touching Redis. clock nil uses Redis's clock.
func NewRedisBucket(client redis.UniversalClient, prefix string, rate float64, burst int, clock func() time.Time) *RedisBucket {
	return &RedisBucket{client: client, prefix: prefix, rate: rate, burst: burst, now: clock}
}

func (r *RedisBucket) disabled() bool { return r.rate <= 0 || r.burst <= 0 }

func (r *RedisBucket) run(ctx context.Context, key string, take int) (Result, error) {
	if r.disabled() {
		return Result{Allowed: true}, nil
	}
	now := int64(-1)
	if r.now != nil {
		now = r.now().UnixMilli()
	}
	v, err := bucketScript.Run(ctx, r.client, []string{r.prefix + key},
		strconv.FormatFloat(r.rate, 'g', -1, 64), r.burst, now, take).Slice()
	if err != nil {
		return Result{}, fmt.Errorf("ratelimit: bucket: %w", err)
	}
	if len(v) != 2 {
		return Result{}, fmt.Errorf("ratelimit: bucket: unexpected reply %v", v)
	}
	allowed, ok1 := v[0].(int64)
	s, ok2 := v[1].(string)
	tokens, err := strconv.ParseFloat(s, 64)
	if !ok1 || !ok2 || err != nil {
		return Result{}, errors.New("ratelimit: bucket: unexpected reply")
	}
	return bucketResult(tokens, r.rate, r.burst, allowed == 1), nil
}

// Take implements Limiter.
func (r *RedisBucket) Take(ctx context.Context, key string) (Result, error) {
	return r.run(ctx, key, 1)
}

// Peek implements Limiter.
func (r *RedisBucket) Peek(ctx context.Context, key string) (Result, error) {
	return r.run(ctx, key, 0)
}

// Reset implements Limiter.
func (r *RedisBucket) Reset(ctx context.Context, key string) error {
	if r.disabled() {
		return nil
	}
	if err := r.client.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("ratelimit: reset: %w", err)
	}
	return nil
}
