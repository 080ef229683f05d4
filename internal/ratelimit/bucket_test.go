package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest/redistest"
)

// bucketFactory makes the limiter under test; every one of them must give
// the same answers for the same steps.
type bucketFactory struct {
	name string
	make func(t *testing.T, rate float64, burst int, clock func() time.Time) (a, b Limiter)
}

// bucketFactories are the implementations of the conformance test: memory,
// and Redis reached through two limiter values (two instances sharing one
// budget). Redis needs QCHAT_TEST_REDIS_URL.
func bucketFactories() []bucketFactory {
	return []bucketFactory{
		{"memory", func(_ *testing.T, rate float64, burst int, clock func() time.Time) (Limiter, Limiter) {
			m := NewMemoryBucket(rate, burst, clock)
			return m, m
		}},
		{"redis", func(t *testing.T, rate float64, burst int, clock func() time.Time) (Limiter, Limiter) {
			client, prefix := redistest.Client(t)
			return NewRedisBucket(client, prefix, rate, burst, clock), NewRedisBucket(client, prefix, rate, burst, clock)
		}},
	}
}

// bucketStep advances the clock, then runs op on key through instance a or
// b and checks the answer.
type bucketStep struct {
	advance   time.Duration
	op        string // take, peek, reset
	key       string
	onB       bool
	allowed   bool
	remaining int
	retry     time.Duration
	reset     time.Duration
}

func TestBucketConformance(t *testing.T) {
	take := func(allowed bool, remaining int, retry, reset time.Duration) bucketStep {
		return bucketStep{op: "take", key: "u", allowed: allowed, remaining: remaining, retry: retry, reset: reset}
	}
	after := func(d time.Duration, s bucketStep) bucketStep { s.advance = d; return s }
	onB := func(s bucketStep) bucketStep { s.onB = true; return s }
	key := func(k string, s bucketStep) bucketStep { s.key = k; return s }
	peek := func(allowed bool, remaining int, retry, reset time.Duration) bucketStep {
		s := take(allowed, remaining, retry, reset)
		s.op = "peek"
		return s
	}
	ms := time.Millisecond
	tests := []struct {
		name  string
		rate  float64
		burst int
		steps []bucketStep
	}{
		{"burst then refused, retry after one token's time", 2, 3, []bucketStep{
			take(true, 2, 0, 500*ms),
			take(true, 1, 0, 1000*ms),
			take(true, 0, 0, 1500*ms),
			take(false, 0, 500*ms, 1500*ms),
			after(499*ms, take(false, 0, 1*ms, 1001*ms)),
			after(1*ms, take(true, 0, 0, 1500*ms)),
		}},
		{"sustained rate is always allowed", 10, 1, []bucketStep{
			take(true, 0, 0, 100*ms),
			after(100*ms, take(true, 0, 0, 100*ms)),
			after(100*ms, take(true, 0, 0, 100*ms)),
			after(50*ms, take(false, 0, 50*ms, 50*ms)),
			after(50*ms, take(true, 0, 0, 100*ms)),
		}},
		{"refill stops at the burst", 1, 2, []bucketStep{
			take(true, 1, 0, 1000*ms),
			take(true, 0, 0, 2000*ms),
			after(time.Hour, take(true, 1, 0, 1000*ms)),
			take(true, 0, 0, 2000*ms),
			take(false, 0, 1000*ms, 2000*ms),
		}},
		{"refused requests take nothing", 1, 1, []bucketStep{
			take(true, 0, 0, 1000*ms),
			after(200*ms, take(false, 0, 800*ms, 800*ms)),
			after(200*ms, take(false, 0, 600*ms, 600*ms)),
			after(600*ms, take(true, 0, 0, 1000*ms)),
		}},
		{"peek takes nothing", 1, 2, []bucketStep{
			peek(true, 2, 0, 0),
			take(true, 1, 0, 1000*ms),
			peek(true, 1, 0, 1000*ms),
			take(true, 0, 0, 2000*ms),
			peek(false, 0, 1000*ms, 2000*ms),
		}},
		{"reset fills the bucket", 1, 1, []bucketStep{
			take(true, 0, 0, 1000*ms),
			take(false, 0, 1000*ms, 1000*ms),
			{op: "reset", key: "u"},
			take(true, 0, 0, 1000*ms),
		}},
		{"instances share one bucket", 1, 2, []bucketStep{
			take(true, 1, 0, 1000*ms),
			onB(take(true, 0, 0, 2000*ms)),
			take(false, 0, 1000*ms, 2000*ms),
			after(time.Second, onB(take(true, 0, 0, 2000*ms))),
		}},
		{"keys are independent", 1, 1, []bucketStep{
			take(true, 0, 0, 1000*ms),
			key("v", take(true, 0, 0, 1000*ms)),
			take(false, 0, 1000*ms, 1000*ms),
		}},
		{"fractional rate", 0.5, 1, []bucketStep{
			take(true, 0, 0, 2000*ms),
			after(1500*ms, take(false, 0, 500*ms, 500*ms)),
			after(500*ms, take(true, 0, 0, 2000*ms)),
		}},
	}
	for _, f := range bucketFactories() {
		t.Run(f.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					clock := newFakeClock()
					a, b := f.make(t, tt.rate, tt.burst, clock.Now)
					ctx := context.Background()
					for i, s := range tt.steps {
						clock.Advance(s.advance)
						got, ok := runStep(ctx, t, i, pick(s.onB, a, b), s.op, s.key)
						if !ok {
							continue
						}
						want := Result{Allowed: s.allowed, Limit: tt.burst, Remaining: s.remaining, Reset: s.reset, RetryAfter: s.retry}
						if got != want {
							t.Fatalf("step %d (%s %s after %v): got %+v, want %+v", i, s.op, s.key, s.advance, got, want)
						}
					}
				})
			}
		})
	}
}

// A disabled bucket allows everything and advertises no limit.
func TestBucketDisabled(t *testing.T) {
	for _, f := range bucketFactories() {
		t.Run(f.name, func(t *testing.T) {
			for _, c := range []struct {
				rate  float64
				burst int
			}{{0, 10}, {5, 0}} {
				l, _ := f.make(t, c.rate, c.burst, nil)
				for range 3 {
					res, err := l.Take(context.Background(), "k")
					if err != nil || res != (Result{Allowed: true}) {
						t.Fatalf("rate %v burst %d: %+v %v", c.rate, c.burst, res, err)
					}
				}
			}
		})
	}
}

// Without an injected clock Redis uses its own: a slow bucket lets the
// burst through and refuses the next request.
func TestRedisBucketServerClock(t *testing.T) {
	client, prefix := redistest.Client(t)
	l := NewRedisBucket(client, prefix, 0.001, 3, nil)
	for i := range 4 {
		res, err := l.Take(context.Background(), "k")
		if err != nil {
			t.Fatal(err)
		}
		if res.Allowed != (i < 3) {
			t.Fatalf("take %d: %+v", i+1, res)
		}
	}
	if ttl := client.PTTL(context.Background(), prefix+"k").Val(); ttl <= 0 {
		t.Fatalf("bucket key has no expiry (%v)", ttl)
	}
}

// Many keys stay bounded in memory.
func TestMemoryBucketMaxKeys(t *testing.T) {
	clock := newFakeClock()
	m := NewMemoryBucket(1, 1, clock.Now, WithMaxKeys(100))
	for i := range 1000 {
		if res, _ := m.Take(context.Background(), fmt.Sprint(i)); !res.Allowed {
			t.Fatalf("key %d refused", i)
		}
	}
	if n := m.cache.EstimatedSize(); n > 100 {
		t.Fatalf("%d keys kept, want at most 100", n)
	}
}
