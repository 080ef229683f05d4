package middleware

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/clientip"
)

func TestHTTPSRedirect(t *testing.T) {
	exempt := func(path string) bool { return path == "/health" || strings.HasPrefix(path, "/health/") }
	tests := []struct {
		name         string
		enabled      bool
		trust        string
		method       string
		target       string
		host         string
		remote       string
		tls          bool
		proto        string
		wantStatus   int
		wantLocation string
	}{
		{name: "disabled passes plain http", enabled: false, method: "GET", target: "/graphql", wantStatus: 200},
		{name: "GET redirected 301", enabled: true, method: "GET", target: "/graphql?query=%7Bme%7D", host: "chat.example.com", wantStatus: 301, wantLocation: "https://chat.example.com/graphql?query=%7Bme%7D"},
		{name: "HEAD redirected 301", enabled: true, method: "HEAD", target: "/", host: "chat.example.com", wantStatus: 301, wantLocation: "https://chat.example.com/"},
		{name: "POST redirected 308", enabled: true, method: "POST", target: "/graphql", host: "chat.example.com", wantStatus: 308, wantLocation: "https://chat.example.com/graphql"},
		{name: "port 80 dropped", enabled: true, method: "GET", target: "/x", host: "chat.example.com:80", wantStatus: 301, wantLocation: "https://chat.example.com/x"},
		{name: "ipv6 port 80 dropped", enabled: true, method: "GET", target: "/x", host: "[2001:db8::1]:80", wantStatus: 301, wantLocation: "https://[2001:db8::1]/x"},
		{name: "other port kept", enabled: true, method: "GET", target: "/x", host: "chat.example.com:8443", wantStatus: 301, wantLocation: "https://chat.example.com:8443/x"},
		{name: "health exempt", enabled: true, method: "GET", target: "/health", host: "10.0.0.5:8080", wantStatus: 200},
		{name: "readiness exempt", enabled: true, method: "GET", target: "/health/ready", host: "10.0.0.5:8080", wantStatus: 200},
		{name: "direct tls passes", enabled: true, method: "POST", target: "/graphql", host: "chat.example.com", tls: true, wantStatus: 200},
		{name: "trusted proxy says https", enabled: true, trust: "loopback", remote: "127.0.0.1:9000", proto: "https", method: "POST", target: "/graphql", host: "chat.example.com", wantStatus: 200},
		{name: "trusted proxy says http", enabled: true, trust: "loopback", remote: "127.0.0.1:9000", proto: "http", method: "GET", target: "/", host: "chat.example.com", wantStatus: 301, wantLocation: "https://chat.example.com/"},
		{name: "spoofed proto from untrusted client", enabled: true, trust: "loopback", remote: "198.51.100.7:9000", proto: "https", method: "GET", target: "/", host: "chat.example.com", wantStatus: 301, wantLocation: "https://chat.example.com/"},
		{name: "spoofed proto nobody trusted", enabled: true, remote: "127.0.0.1:9000", proto: "https", method: "GET", target: "/", host: "chat.example.com", wantStatus: 301, wantLocation: "https://chat.example.com/"},
		{name: "no host", enabled: true, method: "GET", target: "/", host: "", wantStatus: 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := clientip.ParseTrustProxy(tt.trust)
			if err != nil {
				t.Fatal(err)
			}
			called := false
			h := clientip.Middleware(p)(HTTPSRedirect(tt.enabled, exempt)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				called = true
			})))
			r := httptest.NewRequest(tt.method, tt.target, nil)
			r.Host = tt.host
			if tt.remote != "" {
				r.RemoteAddr = tt.remote
			}
			r.TLS = nil
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.proto != "" {
				r.Header.Set("X-Forwarded-Proto", tt.proto)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", w.Code, tt.wantStatus)
			}
			if got := w.Header().Get("Location"); got != tt.wantLocation {
				t.Errorf("Location %q, want %q", got, tt.wantLocation)
			}
			if called != (tt.wantStatus == 200) {
				t.Errorf("next called = %v", called)
			}
		})
	}
}

func TestHTTPSRedirectNilExempt(t *testing.T) {
	h := HTTPSRedirect(true, nil)(http.NotFoundHandler())
	r := httptest.NewRequest(http.MethodGet, "/health", nil)
	r.Host = "chat.example.com"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != http.StatusMovedPermanently {
		t.Fatalf("status %d", w.Code)
	}
}
