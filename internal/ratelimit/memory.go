package ratelimit

import (
	"context"
	"time"

	"github.com/maypok86/otter/v2"
)

// DefaultMaxKeys bounds the keys a Memory limiter tracks at once. At about a
// hundred bytes per key that is some 10 MB in the worst case.
const DefaultMaxKeys = 100_000

var _ Limiter = (*Memory)(nil)

// Memory is a fixed-window counter kept in process memory.
//
// Fixed window rather than a sliding log: one counter and one timestamp per key
// whatever the limit (a log of 100 timestamps per IP would cost ~1 KB each),
// the same semantics as the express-rate-limit store of the Node product, and
// a direct translation to Redis (INCR plus PEXPIRE on first hit) for the shared
// implementation. The price is that a client can spend up to twice the limit
// across a window boundary, which is acceptable for abuse protection. Each
// key's window starts at its first request, so windows of different clients
// are not aligned and do not all reset at once.
//
// Memory is bounded: entries expire with their window, and beyond maxKeys the
// cache evicts the keys least likely to be used again (W-TinyLFU), so a flood
// of one-off addresses cannot exhaust memory. An evicted key starts over, which
// errs on the side of allowing.
type Memory struct {
	limit  int
	window time.Duration
	now    func() time.Time
	cache  *otter.Cache[string, counter]
}

// counter is one key's current window.
type counter struct {
	start time.Time
	count int
}

// MemoryOption tunes a Memory limiter.
type MemoryOption func(*memoryOptions)

type memoryOptions struct{ maxKeys int }

// WithMaxKeys sets how many keys are tracked at most (DefaultMaxKeys).
func WithMaxKeys(n int) MemoryOption {
	return func(o *memoryOptions) {
		if n > 0 {
			o.maxKeys = n
		}
	}
}

// NewMemory returns a limiter allowing limit requests per window and key.
// limit <= 0 or window <= 0 disables it: every request is allowed, as the
// configuration's "0 disables a limit" (for benchmarks) asks. clock is the time
// source (time.Now when nil); tests pass a fake one instead of sleeping.
func NewMemory(limit int, window time.Duration, clock func() time.Time, opts ...MemoryOption) *Memory {
	if clock == nil {
		clock = time.Now
	}
	o := memoryOptions{maxKeys: DefaultMaxKeys}
	for _, opt := range opts {
		opt(&o)
	}
	m := &Memory{limit: limit, window: window, now: clock}
	if m.disabled() {
		return m
	}
	m.cache = otter.Must(&otter.Options[string, counter]{
		MaximumSize: o.maxKeys,
		// Expiry counts from the last write, so an entry never disappears
		// before the window it holds has ended (Take checks the window itself).
		ExpiryCalculator: otter.ExpiryWriting[string, counter](window),
		Clock:            otterClock{clock},
		// Maintenance runs on the caller's goroutine: no goroutine outlives a
		// request, and nothing runs in the background between them.
		Executor: func(fn func()) { fn() },
	})
	return m
}

func (m *Memory) disabled() bool { return m.limit <= 0 || m.window <= 0 }

// Take counts one request for key. A rejected request is not counted, so a
// client hammering a closed window does not extend or deepen its penalty.
func (m *Memory) Take(_ context.Context, key string) (Result, error) {
	if m.disabled() {
		return Result{Allowed: true}, nil
	}
	now := m.now()
	var res Result
	m.cache.Compute(key, func(w counter, found bool) (counter, otter.ComputeOp) {
		if !found || !now.Before(w.start.Add(m.window)) {
			w = counter{start: now}
		}
		if w.count >= m.limit {
			res = m.result(w, now, false)
			return w, otter.CancelOp
		}
		w.count++
		res = m.result(w, now, true)
		return w, otter.WriteOp
	})
	return res, nil
}

// Peek reports key's state without counting a request. Allowed says whether a
// Take now would be allowed.
func (m *Memory) Peek(_ context.Context, key string) (Result, error) {
	if m.disabled() {
		return Result{Allowed: true}, nil
	}
	now := m.now()
	w, found := m.cache.GetIfPresent(key)
	if !found || !now.Before(w.start.Add(m.window)) {
		w = counter{start: now}
	}
	return m.result(w, now, w.count < m.limit), nil
}

// Reset forgets key, e.g. after an administrator unblocks a client.
func (m *Memory) Reset(_ context.Context, key string) error {
	if m.disabled() {
		return nil
	}
	m.cache.Invalidate(key)
	return nil
}

func (m *Memory) result(w counter, now time.Time, allowed bool) Result {
	reset := w.start.Add(m.window).Sub(now)
	res := Result{
		Allowed:   allowed,
		Limit:     m.limit,
		Remaining: max(m.limit-w.count, 0),
		Reset:     reset,
	}
	if !res.Allowed {
		res.RetryAfter = reset
	}
	return res
}

// otterClock adapts the injected clock to otter. Its Tick returns nil, which
// tells otter to skip its once-a-second clean-up goroutine: expired entries are
// then dropped during reads and writes, and Take treats an expired window as a
// new one anyway, so correctness never depends on when they are dropped.
type otterClock struct{ now func() time.Time }

func (c otterClock) NowNano() int64                      { return c.now().UnixNano() }
func (c otterClock) Tick(time.Duration) <-chan time.Time { return nil }
