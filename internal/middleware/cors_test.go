package middleware

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestCORS(t *testing.T) {
	const app = "https://app.example.com"
	tests := []struct {
		name          string
		origins       []string
		origin        string
		preflight     bool
		reqHeaders    string
		wantOrigin    string
		wantCreds     string
		wantNextCalls bool
	}{
		{name: "allowed origin", origins: []string{app}, origin: app, wantOrigin: app, wantCreds: "true", wantNextCalls: true},
		{name: "allowed origin trailing slash in config", origins: []string{" " + app + "/ "}, origin: app, wantOrigin: app, wantCreds: "true", wantNextCalls: true},
		{name: "disallowed origin", origins: []string{app}, origin: "https://evil.example", wantNextCalls: true},
		{name: "lookalike origin", origins: []string{app}, origin: "https://app.example.com.evil.example", wantNextCalls: true},
		{name: "scheme matters", origins: []string{app}, origin: "http://app.example.com", wantNextCalls: true},
		{name: "same-origin request without Origin", origins: []string{app}, wantNextCalls: true},
		{name: "empty list allows nobody", origins: nil, origin: app, wantNextCalls: true},
		{name: "empty strings allow nobody", origins: []string{"", " "}, origin: app, wantNextCalls: true},
		{name: "wildcard without credentials", origins: []string{"*", app}, origin: "https://any.example", wantOrigin: "*", wantNextCalls: true},
		{name: "subdomain pattern", origins: []string{"https://*.example.com"}, origin: "https://a.example.com", wantOrigin: "https://a.example.com", wantCreds: "true", wantNextCalls: true},
		// Browsers send Access-Control-Request-Headers lower-case and sorted (Fetch standard).
		{name: "preflight allowed", origins: []string{app}, origin: app, preflight: true, reqHeaders: "apollo-require-preflight,authorization,content-type,x-no-compression,x-request-id", wantOrigin: app, wantCreds: "true"},
		{name: "preflight disallowed origin", origins: []string{app}, origin: "https://evil.example", preflight: true, reqHeaders: "authorization"},
		{name: "preflight disallowed header", origins: []string{app}, origin: app, preflight: true, reqHeaders: "x-evil"},
		{name: "preflight empty list", origins: nil, origin: app, preflight: true, reqHeaders: "content-type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := CORS(tt.origins)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
				w.WriteHeader(http.StatusOK)
			}))
			method := http.MethodPost
			if tt.preflight {
				method = http.MethodOptions
			}
			r := httptest.NewRequest(method, "/graphql", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if tt.preflight {
				r.Header.Set("Access-Control-Request-Method", "POST")
				r.Header.Set("Access-Control-Request-Headers", tt.reqHeaders)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if got := w.Header().Get("Access-Control-Allow-Origin"); got != tt.wantOrigin {
				t.Errorf("Allow-Origin %q, want %q", got, tt.wantOrigin)
			}
			if got := w.Header().Get("Access-Control-Allow-Credentials"); got != tt.wantCreds {
				t.Errorf("Allow-Credentials %q, want %q", got, tt.wantCreds)
			}
			if called != tt.wantNextCalls {
				t.Errorf("next called = %v", called)
			}
			if !strings.Contains(strings.Join(w.Header().Values("Vary"), ","), "Origin") {
				t.Errorf("Vary lacks Origin: %v", w.Header())
			}
			if tt.wantOrigin == "" {
				return
			}
			if tt.preflight {
				if got := w.Header().Get("Access-Control-Allow-Methods"); got != "POST" {
					t.Errorf("Allow-Methods %q", got)
				}
				if got := w.Header().Get("Access-Control-Allow-Headers"); got != tt.reqHeaders {
					t.Errorf("Allow-Headers %q, want %q", got, tt.reqHeaders)
				}
				if w.Header().Get("Access-Control-Max-Age") != "600" {
					t.Errorf("Max-Age %q", w.Header().Get("Access-Control-Max-Age"))
				}
				return
			}
			exposed := w.Header().Get("Access-Control-Expose-Headers")
			for _, h := range []string{"X-Request-Id", "Retry-After", "Ratelimit-Limit", "Ratelimit-Remaining", "Ratelimit-Reset"} {
				if !strings.Contains(exposed, h) {
					t.Errorf("Expose-Headers %q lacks %s", exposed, h)
				}
			}
		})
	}
}

func TestCORSMethodNotAllowed(t *testing.T) {
	h := CORS([]string{"https://app.example.com"})(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	r := httptest.NewRequest(http.MethodOptions, "/graphql", nil)
	r.Header.Set("Origin", "https://app.example.com")
	r.Header.Set("Access-Control-Request-Method", "DELETE")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" {
		t.Errorf("DELETE preflight allowed: %q", got)
	}
}
