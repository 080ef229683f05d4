// Package ratelimit counts requests per key (usually a client IP) in time
// windows, behind a small interface so that the in-memory implementation can
// be replaced by a shared one (Redis) when QChat runs on several instances.
package ratelimit

import (
	"context"
	"math"
	"time"
)

// Result is the state of one key after (or, for Peek, without) a request.
type Result struct {
	// Allowed says whether the request may proceed.
	Allowed bool
	// Limit is the number of requests a window allows; 0 when the limiter is
	// disabled.
	Limit int
	// Remaining is how many more requests the current window allows.
	Remaining int
	// Reset is the time until the current window ends and the count starts over.
	Reset time.Duration
	// RetryAfter is how long a rejected client should wait; 0 when allowed.
	RetryAfter time.Duration
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up and at least 1
// for a rejection: a client told "0 seconds" would retry at once.
func (r Result) RetryAfterSeconds() int {
	if r.Allowed {
		return 0
	}
	return max(ceilSeconds(r.RetryAfter), 1)
}

// ResetSeconds is Reset in whole seconds, rounded up.
func (r Result) ResetSeconds() int { return ceilSeconds(r.Reset) }

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(math.Ceil(d.Seconds()))
}

// Limiter counts requests per key.
//
// Take consumes one request. Peek reports the state without consuming, for
// limits that count only failures: the caller peeks before the attempt and
// takes only when the attempt failed. Reset forgets a key.
type Limiter interface {
	Take(ctx context.Context, key string) (Result, error)
	Peek(ctx context.Context, key string) (Result, error)
	Reset(ctx context.Context, key string) error
}
