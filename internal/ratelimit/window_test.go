package ratelimit

import (
	"context"
	"testing"
	"time"

	"github.com/qchat/qchat/internal/qchattest/redistest"
)

// windowFactory makes two limiters of one implementation that share their
// counts, as two instances would: the same value for Memory, two values on
// one Redis prefix for Redis.
type windowFactory struct {
	name string
	make func(t *testing.T, limit int, window time.Duration) (a, b Limiter)
}

func windowFactories() []windowFactory {
	return []windowFactory{
		{"memory", func(_ *testing.T, limit int, window time.Duration) (Limiter, Limiter) {
			// A clock that stands still: the answers below are within one window.
			m := NewMemory(limit, window, newFakeClock().Now)
			return m, m
		}},
		{"redis", func(t *testing.T, limit int, window time.Duration) (Limiter, Limiter) {
			client, prefix := redistest.Client(t)
			return NewRedis(client, prefix, limit, window), NewRedis(client, prefix, limit, window)
		}},
	}
}

// Within one window, every implementation answers the same, whichever
// instance a request reaches. (The window's end is tested per
// implementation: Memory's with a fake clock, Redis's on Redis's clock.)
func TestWindowConformance(t *testing.T) {
	const window = time.Minute
	type step struct {
		op        string // take, peek, reset
		key       string
		onB       bool
		allowed   bool
		remaining int
	}
	take := func(allowed bool, remaining int) step { return step{"take", "a", false, allowed, remaining} }
	peek := func(allowed bool, remaining int) step { return step{"peek", "a", false, allowed, remaining} }
	onB := func(s step) step { s.onB = true; return s }
	key := func(k string, s step) step { s.key = k; return s }
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{"take up to the limit and beyond", 3, []step{take(true, 2), take(true, 1), take(true, 0), take(false, 0), take(false, 0)}},
		{"peek does not count", 2, []step{peek(true, 2), take(true, 1), peek(true, 1), peek(true, 1), take(true, 0), peek(false, 0), take(false, 0)}},
		{"reset forgets", 1, []step{take(true, 0), take(false, 0), {op: "reset", key: "a"}, take(true, 0), take(false, 0)}},
		{"instances share the budget", 3, []step{take(true, 2), onB(take(true, 1)), take(true, 0), onB(take(false, 0)), onB(peek(false, 0))}},
		{"a reset reaches every instance", 1, []step{take(true, 0), onB(step{op: "reset", key: "a"}), take(true, 0)}},
		{"keys are independent", 1, []step{take(true, 0), key("c", take(true, 0)), onB(take(false, 0)), onB(key("c", take(false, 0)))}},
	}
	for _, f := range windowFactories() {
		t.Run(f.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					a, b := f.make(t, tt.limit, window)
					ctx := context.Background()
					for i, s := range tt.steps {
						got, ok := runStep(ctx, t, i, pick(s.onB, a, b), s.op, s.key)
						if !ok {
							continue
						}
						if got.Allowed != s.allowed || got.Limit != tt.limit || got.Remaining != s.remaining {
							t.Fatalf("step %d (%s %s): got %+v, want allowed %v, limit %d, remaining %d", i, s.op, s.key, got, s.allowed, tt.limit, s.remaining)
						}
						// Memory's clock stands still; Redis's does not, by little.
						if got.Reset <= 0 || got.Reset > window || window-got.Reset > 5*time.Second {
							t.Fatalf("step %d: reset %v, want about %v", i, got.Reset, window)
						}
						if got.Allowed != (got.RetryAfter == 0) || (!got.Allowed && got.RetryAfter != got.Reset) {
							t.Fatalf("step %d: retry after %v with %+v", i, got.RetryAfter, got)
						}
					}
				})
			}
		})
	}
}

// runStep runs step i of a conformance table, op ("take", "peek" or
// "reset") on key, and returns the answer; ok is false for a reset, which
// has none.
func runStep(ctx context.Context, t *testing.T, i int, l Limiter, op, key string) (res Result, ok bool) {
	t.Helper()
	var err error
	switch op {
	case "take":
		res, err = l.Take(ctx, key)
	case "peek":
		res, err = l.Peek(ctx, key)
	case "reset":
		if err := l.Reset(ctx, key); err != nil {
			t.Fatalf("step %d: reset: %v", i, err)
		}
		return Result{}, false
	default:
		t.Fatalf("step %d: unknown op %q", i, op)
	}
	if err != nil {
		t.Fatalf("step %d: %s: %v", i, op, err)
	}
	return res, true
}

// pick is b when onB, else a: the instance a step goes to.
func pick(onB bool, a, b Limiter) Limiter {
	if onB {
		return b
	}
	return a
}

// A disabled window limiter allows everything, advertises no limit, and
// (for Redis) never touches the store.
func TestWindowDisabled(t *testing.T) {
	for _, f := range windowFactories() {
		t.Run(f.name, func(t *testing.T) {
			for _, c := range []struct {
				limit  int
				window time.Duration
			}{{0, time.Minute}, {-1, time.Minute}, {5, 0}} {
				l, _ := f.make(t, c.limit, c.window)
				for range 3 {
					res, err := l.Take(context.Background(), "k")
					if err != nil || res != (Result{Allowed: true}) {
						t.Fatalf("limit %d window %v: %+v %v", c.limit, c.window, res, err)
					}
				}
				if res, err := l.Peek(context.Background(), "k"); err != nil || res != (Result{Allowed: true}) {
					t.Fatalf("peek: %+v %v", res, err)
				}
				if err := l.Reset(context.Background(), "k"); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
