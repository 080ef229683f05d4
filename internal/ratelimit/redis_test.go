package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qchat/qchat/internal/qchattest/redistest"
)

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
