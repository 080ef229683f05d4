package main

import (
	"slices"
	"sync"
	"time"
)

// recorder keeps every latency sample of a run; a run of minutes at tens of
// thousands of events per second is a few megabytes, and exact percentiles
// beat a histogram's buckets when the numbers are published.
type recorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

// latency is a summary in milliseconds.
type latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P95   float64 `json:"p95_ms"`
	P99   float64 `json:"p99_ms"`
	Max   float64 `json:"max_ms"`
}

func (r *recorder) summary() latency {
	r.mu.Lock()
	d := slices.Clone(r.d)
	r.mu.Unlock()
	if len(d) == 0 {
		return latency{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	q := func(p float64) float64 {
		i := int(p*float64(len(d))+0.5) - 1
		return ms(d[min(max(i, 0), len(d)-1)])
	}
	return latency{
		Count: int64(len(d)), Mean: ms(sum / time.Duration(len(d))),
		P50: q(0.50), P95: q(0.95), P99: q(0.99), Max: ms(d[len(d)-1]),
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// window is the measured part of a run: load starts at start, counts from
// from (after the warm-up) and stops at to.
type window struct {
	start, from, to time.Time
}

func newWindow(warmup, duration time.Duration) window {
	now := time.Now()
	return window{start: now, from: now.Add(warmup), to: now.Add(warmup + duration)}
}

func (w window) measured(t time.Time) bool { return !t.Before(w.from) && t.Before(w.to) }
func (w window) over() bool                { return !time.Now().Before(w.to) }

// waitUntil sleeps until t or until done closes.
func waitUntil(t time.Time, done <-chan struct{}) {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-done:
	}
}
