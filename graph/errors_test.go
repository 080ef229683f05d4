package graph

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/qchat/qchat/internal/apierr"
	"github.com/qchat/qchat/internal/middleware"
	"github.com/qchat/qchat/models"
)

// The presenter maps every error of the contract to its code and, over
// HTTP, chooses the status: a rate limit answers 429 with the headers it
// carries; every other GraphQL error leaves the answer 200.
func TestPresenterMapsTheContract(t *testing.T) {
	retry := http.Header{"Retry-After": {"7"}}
	tests := []struct {
		name       string
		err        error
		code       string
		msg        string
		status     int
		retryAfter string
	}{
		{"a domain error", fmt.Errorf("load: %w", models.NotFound("room")), apierr.CodeNotFound, "room not found", http.StatusOK, ""},
		{"a bare kind", fmt.Errorf("x: %w", models.ErrForbidden), apierr.CodeForbidden, "forbidden", http.StatusOK, ""},
		{"an edge error", apierr.New(apierr.CodeComplexityLimit, "too big", nil), apierr.CodeComplexityLimit, "too big", http.StatusOK, ""},
		{"a rate limit", &apierr.Error{Code: apierr.CodeRateLimited, Message: "slow down", Header: retry}, apierr.CodeRateLimited, "slow down", http.StatusTooManyRequests, "7"},
		{"an unknown error", errors.New("pq: connection reset"), apierr.CodeInternal, "internal server error", http.StatusOK, ""},
	}
	present := ErrorPresenter(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var code, msg any
			h := middleware.WithStatusControl(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gerr := present(r.Context(), tt.err)
				code, msg = gerr.Extensions["code"], gerr.Message
				_, _ = w.Write([]byte("{}"))
			}))
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequestWithContext(context.Background(), http.MethodPost, "/graphql", nil))
			if code != tt.code || msg != tt.msg {
				t.Errorf("presented %v %q, want %v %q", code, msg, tt.code, tt.msg)
			}
			if rec.Code != tt.status || rec.Header().Get("Retry-After") != tt.retryAfter {
				t.Errorf("HTTP %d Retry-After %q, want %d %q", rec.Code, rec.Header().Get("Retry-After"), tt.status, tt.retryAfter)
			}
		})
	}
}
