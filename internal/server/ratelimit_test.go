package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"testing"

	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/pqcrypto"
)

// defaultLimits puts back the production defaults that qchattest turns off,
// so that these tests prove the defaults themselves. Proxies on loopback are
// trusted, so that a test can speak from several client IPs.
func defaultLimits(more func(*config.Config)) qchattest.Options {
	return qchattest.Options{Config: func(c *config.Config) {
		d, err := config.Load(func(string) string { return "" })
		if err != nil {
			panic(err)
		}
		c.RateLimitMax, c.RateLimitWindow = d.RateLimitMax, d.RateLimitWindow
		c.UserRateLimitRate, c.UserRateLimitBurst = d.UserRateLimitRate, d.UserRateLimitBurst
		c.AuthRateLimitMax, c.AuthRateLimitWindow = d.AuthRateLimitMax, d.AuthRateLimitWindow
		c.AuthIPRateLimitMax, c.AuthIPRateLimitWindow = d.AuthIPRateLimitMax, d.AuthIPRateLimitWindow
		c.RegisterFailMax, c.RegisterFailWindow = d.RegisterFailMax, d.RegisterFailWindow
		c.TrustProxy = "loopback"
		if more != nil {
			more(c)
		}
	}}
}

// from posts a GraphQL request as client ip (through the trusted
// X-Forwarded-For), signed in with token unless it is empty.
func from(t *testing.T, srv *qchattest.Server, ip, token, query string, vars map[string]any) *qchattest.Response {
	t.Helper()
	h := http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {ip}}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	resp, body := srv.Raw(t, "POST", "/graphql", h, qchattest.GraphQLBody(query, vars))
	out := &qchattest.Response{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(body, out); err != nil {
		t.Fatalf("response is not JSON (%d): %s", resp.StatusCode, body)
	}
	return out
}

const loginMutation = `mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }`

// checkRateLimited asserts the RATE_LIMITED answer keeps its format: HTTP
// 429, Retry-After, extensions.retryAfter and the message that repeats it.
func checkRateLimited(t *testing.T, what string, r *qchattest.Response) {
	t.Helper()
	if r.Code() != "RATE_LIMITED" || r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" {
		t.Fatalf("%s: HTTP %d %+v, want 429 RATE_LIMITED", what, r.Status, r.Errors)
	}
	retry, ok := r.Errors[0].Extensions["retryAfter"].(float64)
	if !ok || retry < 1 || !regexp.MustCompile(fmt.Sprintf(`^too many requests, retry in %d seconds$`, int(retry))).MatchString(r.Errors[0].Message) {
		t.Fatalf("%s: message %q, retryAfter %v", what, r.Errors[0].Message, r.Errors[0].Extensions["retryAfter"])
	}
}

// With the default limits, two people behind one address (a NAT, an office
// proxy) each make 200 requests without meeting a limit: signed-in requests
// spend from their user's budget, not the shared IP's. The old per-IP window
// (100 per 15 minutes for everyone) refused the 99th.
func TestUsersBehindOneIPAreLimitedPerUser(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), defaultLimits(nil))
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	for i := range 200 {
		for _, u := range []*qchattest.User{alice, bob} {
			if r := from(t, srv, "203.0.113.7", u.Token, `{ me { id } }`, nil); r.Code() != "" || r.Status != http.StatusOK {
				t.Fatalf("request %d of %s: HTTP %d %+v", i+1, u.Name, r.Status, r.Errors)
			}
		}
	}
}

// A signed-in user over the bucket is refused, alone: another user at the
// same address is not.
func TestUserBucketLimitsOneUser(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), defaultLimits(func(c *config.Config) {
		c.UserRateLimitRate, c.UserRateLimitBurst = 0.01, 5 // a token per 100 s: no refill during the test
	}))
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	for i := range 5 {
		if r := from(t, srv, "203.0.113.7", alice.Token, `{ me { id } }`, nil); r.Code() != "" {
			t.Fatalf("request %d: %+v", i+1, r.Errors)
		}
	}
	r := from(t, srv, "203.0.113.7", alice.Token, `{ me { id } }`, nil)
	checkRateLimited(t, "alice's 6th request", r)
	if r.Header.Get("RateLimit-Limit") != "5" {
		t.Errorf("RateLimit-Limit %q, want the burst 5", r.Header.Get("RateLimit-Limit"))
	}
	if r := from(t, srv, "203.0.113.7", bob.Token, `{ me { id } }`, nil); r.Code() != "" {
		t.Fatalf("bob is limited by alice's requests: %+v", r.Errors)
	}
}

// Requests without a session still share their IP's window.
func TestAnonymousFloodIsLimitedPerIP(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), defaultLimits(nil))
	alice := srv.Register(t, "alice") // from 127.0.0.1, not the flooding address
	for i := range config.DefaultRateLimitMax {
		if r := from(t, srv, "198.51.100.1", "", `{ me { id } }`, nil); r.Status != http.StatusOK {
			t.Fatalf("anonymous request %d: HTTP %d %+v", i+1, r.Status, r.Errors)
		}
	}
	checkRateLimited(t, "anonymous request over the window", from(t, srv, "198.51.100.1", "", `{ me { id } }`, nil))
	// An invalid token is no way around it.
	checkRateLimited(t, "request with a bad token", from(t, srv, "198.51.100.1", "not-a-token", `{ me { id } }`, nil))
	// Another address, and a signed-in user at the flooded one, go on.
	if r := from(t, srv, "198.51.100.2", "", `{ me { id } }`, nil); r.Status != http.StatusOK {
		t.Fatalf("another address: HTTP %d", r.Status)
	}
	if r := from(t, srv, "198.51.100.1", alice.Token, `{ me { id } }`, nil); r.Code() != "" {
		t.Fatalf("signed-in user at the flooded address: %+v", r.Errors)
	}
}

// Failed logins count per (IP, username): five typos for alice block alice
// at that address only, not bob there nor alice elsewhere.
func TestFailedLoginsCountPerIPAndUsername(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), defaultLimits(nil))
	alice, bob := srv.Register(t, "alice"), srv.Register(t, "bob")
	const home, office = "192.0.2.10", "192.0.2.20"
	for i := range config.DefaultAuthRateLimitMax {
		if r := from(t, srv, home, "", loginMutation, map[string]any{"u": "alice", "p": "typo"}); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("wrong password %d: %+v", i+1, r.Errors)
		}
	}
	if r := from(t, srv, home, "", loginMutation, map[string]any{"u": "bob", "p": bob.Password}); r.Code() != "" {
		t.Fatalf("bob's login from the same address after alice's typos: %+v", r.Errors)
	}
	if r := from(t, srv, office, "", loginMutation, map[string]any{"u": "alice", "p": alice.Password}); r.Code() != "" {
		t.Fatalf("alice's login from another address: %+v", r.Errors)
	}
	r := from(t, srv, home, "", loginMutation, map[string]any{"u": "alice", "p": alice.Password})
	checkRateLimited(t, "alice's login where her password was guessed", r)
}

// Trying many usernames from one address (credential stuffing) meets the
// looser per-IP cap: then even a correct login from there is refused, while
// other addresses are not affected.
func TestCredentialStuffingIsCappedPerIP(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), defaultLimits(nil))
	bob := srv.Register(t, "bob")
	const stuffer = "192.0.2.66"
	for i := range config.DefaultAuthIPRateLimitMax {
		r := from(t, srv, stuffer, "", loginMutation, map[string]any{"u": fmt.Sprintf("victim%d", i), "p": "123456"})
		if r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("stuffed login %d: %+v", i+1, r.Errors)
		}
	}
	checkRateLimited(t, "login past the per-IP cap", from(t, srv, stuffer, "", loginMutation, map[string]any{"u": "bob", "p": bob.Password}))
	if r := from(t, srv, "192.0.2.67", "", loginMutation, map[string]any{"u": "bob", "p": bob.Password}); r.Code() != "" {
		t.Fatalf("bob from another address: %+v", r.Errors)
	}
}

// Failed registrations (a taken name) have their own budget: they never
// lock out a login.
func TestFailedRegistrationsDoNotBlockLogins(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), defaultLimits(nil))
	alice := srv.Register(t, "alice")
	const ip = "192.0.2.30"
	for i := range 10 {
		if r := from(t, srv, ip, "", registerMutation, registerVars("alice", "another password", pqcrypto.EncodeB64(alice.Key.PublicKey), "")); r.Code() == "" {
			t.Fatalf("registration %d of a taken name succeeded", i+1)
		}
	}
	if r := from(t, srv, ip, "", loginMutation, map[string]any{"u": "alice", "p": alice.Password}); r.Code() != "" {
		t.Fatalf("login after failed registrations: %+v", r.Errors)
	}
}
