package ratelimit

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestHTTP(t *testing.T) {
	clk := newFakeClock()
	l := NewMemory(3, 15*time.Minute, clk.Now)
	var rejected []Result
	h := HTTP(l, func(r *http.Request) string { return r.Header.Get("X-Test-Key") },
		func(r *http.Request, res Result) { rejected = append(rejected, res) },
	)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "ok")
	}))

	do := func(key string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
		if key != "" {
			r.Header.Set("X-Test-Key", key)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}

	for i, wantRemaining := range []string{"2", "1", "0"} {
		w := do("a")
		if w.Code != http.StatusOK || w.Body.String() != "ok" {
			t.Fatalf("request %d: %d %q", i+1, w.Code, w.Body)
		}
		if got := w.Header().Get("RateLimit-Remaining"); got != wantRemaining {
			t.Errorf("request %d: RateLimit-Remaining %q, want %q", i+1, got, wantRemaining)
		}
		if w.Header().Get("RateLimit-Limit") != "3" || w.Header().Get("RateLimit-Reset") != "900" {
			t.Errorf("request %d: headers %v", i+1, w.Header())
		}
		if w.Header().Get("Retry-After") != "" {
			t.Errorf("request %d: Retry-After on an allowed response", i+1)
		}
	}

	clk.Advance(100*time.Second + 500*time.Millisecond)
	w := do("a")
	if w.Code != http.StatusTooManyRequests {
		t.Fatalf("fourth request: %d", w.Code)
	}
	wantHeaders := map[string]string{
		"Retry-After":         "800", // 799.5 s rounded up
		"RateLimit-Limit":     "3",
		"RateLimit-Remaining": "0",
		"RateLimit-Reset":     "800",
		"Content-Type":        "application/json",
	}
	for k, v := range wantHeaders {
		if got := w.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	var body struct {
		Errors []struct {
			Message    string
			Extensions map[string]any
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", w.Body, err)
	}
	if len(body.Errors) != 1 || body.Errors[0].Message != "too many requests, retry in 800 seconds" ||
		body.Errors[0].Extensions["code"] != "RATE_LIMITED" || body.Errors[0].Extensions["retryAfter"] != float64(800) {
		t.Errorf("body = %s", w.Body)
	}
	if len(rejected) != 1 || rejected[0].Allowed {
		t.Errorf("onReject calls = %+v", rejected)
	}

	if w := do("b"); w.Code != http.StatusOK {
		t.Errorf("other key: %d", w.Code)
	}
	if w := do(""); w.Code != http.StatusOK || w.Header().Get("RateLimit-Limit") != "" {
		t.Errorf("empty key: %d %v", w.Code, w.Header())
	}
}

type failingLimiter struct{}

func (failingLimiter) Take(context.Context, string) (Result, error) {
	return Result{}, errors.New("store down")
}
func (failingLimiter) Peek(context.Context, string) (Result, error) {
	return Result{}, errors.New("store down")
}
func (failingLimiter) Reset(context.Context, string) error { return errors.New("store down") }

func TestHTTPEdgeCases(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	key := func(*http.Request) string { return "k" }
	tests := []struct {
		name        string
		limiter     Limiter
		wantCode    int
		wantHeaders bool
	}{
		{name: "limiter error fails open", limiter: failingLimiter{}, wantCode: http.StatusNoContent},
		{name: "disabled limiter sets no headers", limiter: NewMemory(0, time.Minute, nil), wantCode: http.StatusNoContent},
		{name: "nil onReject", limiter: NewMemory(1, time.Minute, nil), wantCode: http.StatusNoContent, wantHeaders: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := HTTP(tt.limiter, key, nil)(ok)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
			if w.Code != tt.wantCode {
				t.Fatalf("code %d", w.Code)
			}
			if got := w.Header().Get("RateLimit-Limit") != ""; got != tt.wantHeaders {
				t.Fatalf("headers %v", w.Header())
			}
			if tt.wantHeaders {
				w = httptest.NewRecorder()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/", nil))
				if w.Code != http.StatusTooManyRequests {
					t.Fatalf("second request %d", w.Code)
				}
			}
		})
	}
}
