package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestMemoryTake(t *testing.T) {
	type step struct {
		advance       time.Duration
		key           string
		wantAllowed   bool
		wantRemaining int
		wantReset     time.Duration
	}
	const window = 15 * time.Minute
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{
			name:  "exactly limit then reject",
			limit: 3,
			steps: []step{
				{key: "a", wantAllowed: true, wantRemaining: 2, wantReset: window},
				{advance: time.Minute, key: "a", wantAllowed: true, wantRemaining: 1, wantReset: window - time.Minute},
				{key: "a", wantAllowed: true, wantRemaining: 0, wantReset: window - time.Minute},
				{key: "a", wantAllowed: false, wantRemaining: 0, wantReset: window - time.Minute},
				{advance: 13 * time.Minute, key: "a", wantAllowed: false, wantRemaining: 0, wantReset: time.Minute},
			},
		},
		{
			name:  "window ends and count starts over",
			limit: 1,
			steps: []step{
				{key: "a", wantAllowed: true, wantRemaining: 0, wantReset: window},
				{advance: window - time.Nanosecond, key: "a", wantAllowed: false, wantRemaining: 0, wantReset: time.Nanosecond},
				{advance: time.Nanosecond, key: "a", wantAllowed: true, wantRemaining: 0, wantReset: window},
			},
		},
		{
			name:  "keys are independent",
			limit: 1,
			steps: []step{
				{key: "a", wantAllowed: true, wantRemaining: 0, wantReset: window},
				{key: "b", wantAllowed: true, wantRemaining: 0, wantReset: window},
				{key: "a", wantAllowed: false, wantRemaining: 0, wantReset: window},
			},
		},
		{
			name:  "rejections do not extend the window",
			limit: 1,
			steps: []step{
				{key: "a", wantAllowed: true, wantRemaining: 0, wantReset: window},
				{advance: 10 * time.Minute, key: "a", wantAllowed: false, wantRemaining: 0, wantReset: 5 * time.Minute},
				{advance: 5 * time.Minute, key: "a", wantAllowed: true, wantRemaining: 0, wantReset: window},
			},
		},
		{
			name:  "long idle keys expire",
			limit: 2,
			steps: []step{
				{key: "a", wantAllowed: true, wantRemaining: 1, wantReset: window},
				{advance: 10 * window, key: "a", wantAllowed: true, wantRemaining: 1, wantReset: window},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			m := NewMemory(tt.limit, window, clk.Now)
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				res, err := m.Take(context.Background(), s.key)
				if err != nil {
					t.Fatal(err)
				}
				if res.Allowed != s.wantAllowed || res.Remaining != s.wantRemaining || res.Reset != s.wantReset || res.Limit != tt.limit {
					t.Fatalf("step %d: got %+v; want allowed=%v remaining=%d reset=%v", i, res, s.wantAllowed, s.wantRemaining, s.wantReset)
				}
				if s.wantAllowed && res.RetryAfter != 0 {
					t.Errorf("step %d: RetryAfter %v on an allowed request", i, res.RetryAfter)
				}
				if !s.wantAllowed && res.RetryAfter != s.wantReset {
					t.Errorf("step %d: RetryAfter %v, want %v", i, res.RetryAfter, s.wantReset)
				}
			}
		})
	}
}

// TestMemoryFailedOnly shows the pattern for counting failed logins only:
// Peek before the attempt, Take after a failure, nothing after a success.
func TestMemoryFailedOnly(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(5, 15*time.Minute, clk.Now)
	ctx := context.Background()
	attempt := func(ok bool) (rejected bool) {
		res, err := m.Peek(ctx, "ip")
		if err != nil {
			t.Fatal(err)
		}
		if !res.Allowed {
			return true
		}
		if !ok {
			if _, err := m.Take(ctx, "ip"); err != nil {
				t.Fatal(err)
			}
		}
		return false
	}
	for range 10 {
		if attempt(true) {
			t.Fatal("successful attempts were counted")
		}
	}
	for i := range 5 {
		if attempt(false) {
			t.Fatalf("failure %d rejected", i+1)
		}
	}
	if !attempt(false) || !attempt(true) {
		t.Fatal("sixth attempt after five failures allowed")
	}
	res, _ := m.Peek(ctx, "ip")
	if res.Remaining != 0 || res.RetryAfterSeconds() != 900 {
		t.Errorf("Peek after lockout = %+v", res)
	}
	if err := m.Reset(ctx, "ip"); err != nil {
		t.Fatal(err)
	}
	if attempt(false) {
		t.Fatal("rejected after Reset")
	}
}

func TestMemoryPeekDoesNotConsume(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(2, time.Minute, clk.Now)
	ctx := context.Background()
	for range 5 {
		res, _ := m.Peek(ctx, "k")
		if !res.Allowed || res.Remaining != 2 || res.Reset != time.Minute {
			t.Fatalf("Peek on fresh key = %+v", res)
		}
	}
	_, _ = m.Take(ctx, "k")
	clk.Advance(10 * time.Second)
	res, _ := m.Peek(ctx, "k")
	if !res.Allowed || res.Remaining != 1 || res.Reset != 50*time.Second {
		t.Fatalf("Peek after one Take = %+v", res)
	}
}

func TestMemoryConcurrentExact(t *testing.T) {
	clk := newFakeClock()
	const limit = 100
	m := NewMemory(limit, time.Minute, clk.Now)
	var allowed atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				res, _ := m.Take(context.Background(), "shared")
				if res.Allowed {
					allowed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if allowed.Load() != limit {
		t.Fatalf("allowed %d of 400 concurrent requests, want exactly %d", allowed.Load(), limit)
	}
}

func TestMemoryBounded(t *testing.T) {
	clk := newFakeClock()
	m := NewMemory(1, time.Hour, clk.Now, WithMaxKeys(100))
	ctx := context.Background()
	for i := range 5000 {
		_, _ = m.Take(ctx, fmt.Sprint("ip-", i))
	}
	m.cache.CleanUp()
	if n := m.cache.EstimatedSize(); n > 150 {
		t.Fatalf("cache holds %d keys, bound is 100", n)
	}
}

func TestResultSeconds(t *testing.T) {
	tests := []struct {
		res         Result
		retry, rset int
	}{
		{Result{Allowed: true, Reset: 90 * time.Second}, 0, 90},
		{Result{Allowed: false, RetryAfter: 1500 * time.Millisecond, Reset: 1500 * time.Millisecond}, 2, 2},
		{Result{Allowed: false, RetryAfter: time.Nanosecond, Reset: time.Nanosecond}, 1, 1},
		{Result{Allowed: false}, 1, 0},
	}
	for _, tt := range tests {
		if got := tt.res.RetryAfterSeconds(); got != tt.retry {
			t.Errorf("%+v RetryAfterSeconds = %d, want %d", tt.res, got, tt.retry)
		}
		if got := tt.res.ResetSeconds(); got != tt.rset {
			t.Errorf("%+v ResetSeconds = %d, want %d", tt.res, got, tt.rset)
		}
	}
}
