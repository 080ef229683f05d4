package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qchat/qchat/internal/backends/redistest"
)

// Within one window, Redis answers exactly as Memory does, whichever
// instance (limiter value) a request reaches.
func TestRedisMatchesMemory(t *testing.T) {
	client, prefix := redistest.Client(t)
	const window = time.Minute
	tests := []struct {
		name  string
		limit int
		ops   string // t: Take, p: Peek, r: Reset; on keys a (upper: instance b) and c
	}{
		{"take up to the limit and beyond", 3, "ttttt"},
		{"peek does not count", 2, "ptpptpt"},
		{"reset forgets", 1, "ttrtt"},
		{"instances share the budget", 3, "tTtTtT"},
		{"keys are independent", 1, "tcTC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newFakeClock()
			mem := NewMemory(tt.limit, window, clock.Now)
			p := prefix + t.Name() + ":"
			a, b := NewRedis(client, p, tt.limit, window), NewRedis(client, p, tt.limit, window)
			ctx := context.Background()
			for i, op := range tt.ops {
				key, inst := "a", a
				switch op {
				case 'T', 'P', 'R':
					inst = b
				case 'c':
					key, op = "c", 't'
				case 'C':
					key, op, inst = "c", 't', b
				}
				var want, got Result
				var err error
				switch op {
				case 't', 'T':
					want, _ = mem.Take(ctx, key)
					got, err = inst.Take(ctx, key)
				case 'p', 'P':
					want, _ = mem.Peek(ctx, key)
					got, err = inst.Peek(ctx, key)
				case 'r', 'R':
					_ = mem.Reset(ctx, key)
					err = inst.Reset(ctx, key)
					continue
				}
				if err != nil {
					t.Fatalf("op %d %c: %v", i, op, err)
				}
				if got.Allowed != want.Allowed || got.Limit != want.Limit || got.Remaining != want.Remaining {
					t.Fatalf("op %d %c: got %+v, want %+v", i, op, got, want)
				}
				// Memory's clock stands still; Redis's does not, by little.
				if got.Reset <= 0 || got.Reset > window || window-got.Reset > 5*time.Second {
					t.Fatalf("op %d %c: reset %v, want about %v", i, op, got.Reset, window)
				}
				if got.Allowed != (got.RetryAfter == 0) || (!got.Allowed && got.RetryAfter != got.Reset) {
					t.Fatalf("op %d %c: retry after %v with %+v", i, op, got.RetryAfter, got)
				}
			}
		})
	}
}

// The window starts at the first request and ends whole: rejected requests do
// not extend it.
func TestRedisWindowEnds(t *testing.T) {
	client, prefix := redistest.Client(t)
	const window = 300 * time.Millisecond
	l := NewRedis(client, prefix, 1, window)
	ctx := context.Background()
	if res, err := l.Take(ctx, "k"); err != nil || !res.Allowed || res.Remaining != 0 {
		t.Fatalf("first: %+v, %v", res, err)
	}
	deadline := time.Now().Add(window)
	for time.Now().Before(deadline.Add(-50 * time.Millisecond)) {
		res, err := l.Take(ctx, "k")
		if err != nil || res.Allowed {
			t.Fatalf("within the window: %+v, %v", res, err)
		}
		if res.RetryAfterSeconds() != 1 || res.RetryAfter > window {
			t.Fatalf("retry after %v", res.RetryAfter)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(time.Until(deadline) + 20*time.Millisecond)
	if res, err := l.Peek(ctx, "k"); err != nil || !res.Allowed || res.Remaining != 1 || res.Reset != window {
		t.Fatalf("peek after the window: %+v, %v", res, err)
	}
	if res, err := l.Take(ctx, "k"); err != nil || !res.Allowed {
		t.Fatalf("after the window: %+v, %v", res, err)
	}
}

// Concurrent requests from many instances never exceed the budget: the count
// is one atomic script.
func TestRedisConcurrentTakes(t *testing.T) {
	client, prefix := redistest.Client(t)
	const limit, workers, each = 50, 8, 20
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range workers {
		l := NewRedis(client, prefix, limit, time.Minute)
		wg.Go(func() {
			for range each {
				res, err := l.Take(context.Background(), "k")
				if err != nil {
					t.Error(err)
					return
				}
				if res.Allowed {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if allowed != limit {
		t.Fatalf("%d allowed, want %d", allowed, limit)
	}
}

func TestRedisDisabledAndFailing(t *testing.T) {
	// Disabled: Redis is never asked (a nil client would panic).
	for _, l := range []*Redis{NewRedis(nil, "p:", 0, time.Minute), NewRedis(nil, "p:", 5, 0)} {
		ctx := context.Background()
		if res, err := l.Take(ctx, "k"); err != nil || !res.Allowed || res.Limit != 0 {
			t.Fatalf("disabled take: %+v, %v", res, err)
		}
		if res, err := l.Peek(ctx, "k"); err != nil || !res.Allowed {
			t.Fatalf("disabled peek: %+v, %v", res, err)
		}
		if err := l.Reset(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	// Unreachable: the error reaches the caller, which decides to fail open.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, DialerRetries: 1, MaxRetries: -1})
	defer down.Close()
	l := NewRedis(down, "p:", 5, time.Minute)
	if _, err := l.Take(context.Background(), "k"); err == nil {
		t.Fatal("take with redis down: no error")
	}
	if _, err := l.Peek(context.Background(), "k"); err == nil {
		t.Fatal("peek with redis down: no error")
	}
}
