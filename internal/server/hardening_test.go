package server_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/qchat/qchat/internal/app"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/observability/logging"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/syncbuf"
	"github.com/qchat/qchat/internal/server"
	"github.com/qchat/qchat/pqcrypto"
	"github.com/qchat/qchat/resolvers"
)

var jsonHeader = http.Header{"Content-Type": {"application/json"}}

func withHeaders(h http.Header, kv ...string) http.Header {
	out := h.Clone()
	if out == nil {
		out = http.Header{}
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out.Set(kv[i], kv[i+1])
	}
	return out
}

func TestSecurityHeaders(t *testing.T) {
	dev := qchattest.NewServer(t, qchattest.NewSQLite(t))
	prod := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.Env, c.TrustProxy, c.Introspection = "production", "loopback", false
	}})
	body := qchattest.GraphQLBody(`{ me { id } }`, nil)
	resp, _ := dev.Raw(t, "POST", "/graphql", jsonHeader, body)
	want := map[string]string{
		"X-Frame-Options":         "DENY",
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "strict-origin-when-cross-origin",
		"Content-Security-Policy": "default-src 'self'",
	}
	for k, v := range want {
		if !strings.Contains(resp.Header.Get(k), v) {
			t.Errorf("%s = %q, want %q", k, resp.Header.Get(k), v)
		}
	}
	if resp.Header.Get("Strict-Transport-Security") != "" {
		t.Error("HSTS outside production")
	}
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no request id")
	}
	resp, _ = prod.Raw(t, "POST", "/graphql", withHeaders(jsonHeader, "X-Forwarded-Proto", "https"), body)
	if hsts := resp.Header.Get("Strict-Transport-Security"); !strings.Contains(hsts, "max-age=31536000") || !strings.Contains(hsts, "includeSubDomains") {
		t.Errorf("production HSTS = %q", hsts)
	}
	// The Playground page gets its own policy, and only where introspection is on.
	resp, _ = dev.Raw(t, "GET", "/playground", nil, nil)
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src") {
		t.Errorf("playground status %d CSP %q", resp.StatusCode, resp.Header.Get("Content-Security-Policy"))
	}
	if resp, _ = prod.Raw(t, "GET", "/playground", withHeaders(nil, "X-Forwarded-Proto", "https"), nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("production playground status %d", resp.StatusCode)
	}
}

func TestHTTPSRedirectInProductionOnly(t *testing.T) {
	prod := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) { c.Env = "production" }})
	dev := qchattest.NewServer(t, qchattest.NewSQLite(t))
	resp, _ := prod.Raw(t, "GET", "/graphql?query=%7Bme%7Bid%7D%7D", nil, nil)
	if resp.StatusCode != http.StatusMovedPermanently || !strings.HasPrefix(resp.Header.Get("Location"), "https://") {
		t.Fatalf("production plain HTTP: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := prod.Raw(t, "GET", "/health/live", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("probe redirected: %d", resp.StatusCode)
	}
	// X-Forwarded-Proto from an untrusted peer changes nothing.
	if resp, _ := prod.Raw(t, "GET", "/graphql", withHeaders(nil, "X-Forwarded-Proto", "https"), nil); resp.StatusCode != http.StatusMovedPermanently {
		t.Fatalf("untrusted X-Forwarded-Proto honoured: %d", resp.StatusCode)
	}
	if resp, _ := dev.Raw(t, "POST", "/graphql", jsonHeader, qchattest.GraphQLBody(`{ me { id } }`, nil)); resp.StatusCode != http.StatusOK {
		t.Fatalf("development redirected: %d", resp.StatusCode)
	}
}

func TestCORS(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.CORSOrigins = []string{"https://app.example.com"}
	}})
	pre := http.Header{"Origin": {"https://app.example.com"}, "Access-Control-Request-Method": {"POST"}, "Access-Control-Request-Headers": {"authorization,content-type"}}
	resp, _ := srv.Raw(t, "OPTIONS", "/graphql", pre, nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" || resp.Header.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("allowed origin preflight: %d %v", resp.StatusCode, resp.Header)
	}
	pre.Set("Origin", "https://evil.example")
	resp, _ = srv.Raw(t, "OPTIONS", "/graphql", pre, nil)
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign origin allowed: %v", resp.Header)
	}
	resp, _ = srv.Raw(t, "POST", "/graphql", withHeaders(jsonHeader, "Origin", "https://evil.example"), qchattest.GraphQLBody(`{ me { id } }`, nil))
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("foreign origin allowed on a simple request")
	}
	// Websockets check Origin against the same whitelist.
	if _, err := srv.Dial(t, qchattest.TransportWS, http.Header{"Origin": {"https://app.example.com"}}); err != nil {
		t.Fatalf("whitelisted websocket origin refused: %v", err)
	}
	if _, err := srv.Dial(t, qchattest.TransportWS, http.Header{"Origin": {"https://evil.example"}}); err == nil {
		t.Fatal("foreign websocket origin accepted")
	}
}

func TestCompression(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	big := qchattest.GraphQLBody(`{ __schema { types { name description fields { name } } } }`, nil)
	resp, body := srv.Raw(t, "POST", "/graphql", withHeaders(jsonHeader, "Accept-Encoding", "gzip"), big)
	if resp.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("large response not gzipped: %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if !json.Valid(plain) || len(plain) < 1024 {
		t.Fatalf("decompressed %d bytes", len(plain))
	}
	if resp, _ := srv.Raw(t, "POST", "/graphql", withHeaders(jsonHeader, "Accept-Encoding", "gzip", "X-No-Compression", "1"), big); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("x-no-compression ignored")
	}
	if resp, _ := srv.Raw(t, "POST", "/graphql", withHeaders(jsonHeader, "Accept-Encoding", "gzip"), qchattest.GraphQLBody(`{ me { id } }`, nil)); resp.Header.Get("Content-Encoding") != "" {
		t.Fatal("tiny response gzipped")
	}
}

func TestBodyLimits(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	huge := qchattest.GraphQLBody(`{ me { id } }`, map[string]any{"pad": strings.Repeat("x", 1<<20)})
	resp, body := srv.Raw(t, "POST", "/graphql", jsonHeader, huge)
	var out qchattest.Response
	if resp.StatusCode != http.StatusRequestEntityTooLarge || json.Unmarshal(body, &out) != nil || out.Code() == "" {
		t.Fatalf("oversize JSON: %d %s", resp.StatusCode, body)
	}
}

func TestRateLimits(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.RateLimitMax, c.RateLimitWindow = 8, time.Minute
		c.AuthRateLimitMax, c.AuthRateLimitWindow = 3, time.Minute
	}})
	alice := srv.Register(t, "alice") // 1 API request
	login := `mutation($p: String!) { login(username: "alice", password: $p) { token } }`
	// Successful logins do not count against the auth budget.
	for range 2 {
		srv.MustDo(t, "", login, map[string]any{"p": alice.Password}, nil)
	}
	// Three failures use up the auth budget; the fourth attempt, even with the
	// right password, is refused.
	for range 3 {
		if r := srv.Do(t, "", login, map[string]any{"p": "wrong-password"}); r.Code() != "UNAUTHENTICATED" {
			t.Fatalf("failed login: %q", r.Code())
		}
	}
	r := srv.Do(t, "", login, map[string]any{"p": alice.Password})
	if r.Code() != "RATE_LIMITED" || r.Errors[0].Extensions["retryAfter"] == nil {
		t.Fatalf("login after 3 failures: %+v", r.Errors)
	}
	if r.Status != http.StatusTooManyRequests || r.Header.Get("Retry-After") == "" || r.Header.Get("RateLimit-Limit") != "3" {
		t.Fatalf("login after 3 failures: HTTP %d %v", r.Status, r.Header)
	}
	// 1 + 2 + 3 + 1 = 7 API requests so far: one more is allowed, then 429.
	resp, _ := srv.Raw(t, "POST", "/graphql", jsonHeader, qchattest.GraphQLBody(`{ me { id } }`, nil))
	if resp.StatusCode != http.StatusOK || resp.Header.Get("RateLimit-Remaining") != "0" || resp.Header.Get("RateLimit-Limit") != "8" {
		t.Fatalf("8th request: %d %v", resp.StatusCode, resp.Header)
	}
	resp, body := srv.Raw(t, "POST", "/graphql", jsonHeader, qchattest.GraphQLBody(`{ me { id } }`, nil))
	var out qchattest.Response
	_ = json.Unmarshal(body, &out)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || out.Code() != "RATE_LIMITED" {
		t.Fatalf("9th request: %d %v %s", resp.StatusCode, resp.Header, body)
	}
	if resp, _ := srv.Raw(t, "GET", "/health/live", nil, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("probes are rate limited: %d", resp.StatusCode)
	}
}

func TestGraphQLGuards(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t))
	u := srv.Register(t, "alice")
	deep := `{ myRooms { members { user { keys { id } } } messages { edges { node { room { members { user { publicKey { id } } } messages { edges { node { sender { id } } } } } } } } } }`
	complex := `{ myRooms { messages(first: 100) { edges { node { room { messages(first: 100) { edges { node { id } } } } } } } } }`
	var aliases strings.Builder
	aliases.WriteString("{")
	for i := range 40 {
		aliases.WriteString(" a")
		aliases.WriteString(string(rune('a'+i%26)) + string(rune('a'+i/26)))
		aliases.WriteString(": me { id }")
	}
	aliases.WriteString(" }")
	for name, q := range map[string]string{"depth": deep, "complexity": complex, "aliases": aliases.String()} {
		r := srv.Do(t, u.Token, q, nil)
		if r.Code() != "COMPLEXITY_LIMIT_EXCEEDED" || len(r.Data) > 0 && string(r.Data) != "null" {
			t.Errorf("%s: code %q data %s", name, r.Code(), r.Data)
		}
	}
	prod := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.Env, c.TrustProxy, c.Introspection = "production", "loopback", false
	}})
	resp, body := prod.Raw(t, "POST", "/graphql", withHeaders(jsonHeader, "X-Forwarded-Proto", "https"), qchattest.GraphQLBody(`{ __schema { types { name } } }`, nil))
	if resp.StatusCode == http.StatusOK && !strings.Contains(string(body), "introspection disabled") && !strings.Contains(string(body), "errors") {
		t.Fatalf("introspection in production: %s", body)
	}
}

// An unknown error and a resolver panic both reach the client as
// INTERNAL_SERVER_ERROR with a request id and no detail; the log keeps it.
func TestSanitisedErrorsAndPanics(t *testing.T) {
	store := qchattest.NewSQLite(t)
	var logs syncbuf.Buffer
	log := slog.New(logging.RequestContext(slog.NewJSONHandler(&logs, nil)))
	cfg, _ := config.Load(func(string) string { return "" })
	cfg.Env, cfg.BcryptCost, cfg.RateLimitMax, cfg.AuthRateLimitMax = "production", 4, 0, 0
	cfg.TrustProxy = "loopback"
	opts, err := app.ServerOptions(cfg, "test", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	authn := auth.New(store, auth.Config{BcryptCost: 4})
	defer authn.Close()
	// No broker: the first publish panics, as a bug would.
	svc := chat.New(chat.Deps{Store: store, Sessions: authn, Presence: presence.NewMemory(), Log: log})
	defer svc.Close()
	res := resolvers.New(resolvers.Deps{Chat: svc, Auth: authn, Log: log})
	h, err := server.New(server.Deps{Options: opts, Store: store, Auth: authn, Chat: svc, Resolver: res, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(h)
	defer hs.Close()
	srv := &qchattest.Server{URL: hs.URL, Store: store}
	https := withHeaders(jsonHeader, "X-Forwarded-Proto", "https")
	do := func(token, q string, vars map[string]any) qchattest.Response {
		hdr := https
		if token != "" {
			hdr = withHeaders(https, "Authorization", "Bearer "+token)
		}
		_, body := srv.Raw(t, "POST", "/graphql", hdr, qchattest.GraphQLBody(q, vars))
		var out qchattest.Response
		if err := json.Unmarshal(body, &out); err != nil {
			t.Fatalf("not JSON: %s", body)
		}
		return out
	}
	var reg struct {
		Register struct {
			Token string
			User  struct{ ID string }
		}
	}
	r := do("", registerMutation, registerVars("alice", "password1", mustKey(t), ""))
	r.Decode(t, &reg)
	other := do("", registerMutation, registerVars("bob", "password1", mustKey(t), ""))
	var bob struct {
		Register struct{ User struct{ ID string } }
	}
	other.Decode(t, &bob)

	// Creating a room publishes (a cache invalidation) whoever the caller knows.
	p := do(reg.Register.Token, `mutation($u: ID!) { createRoom(input: { name: "boom", memberIds: [$u] }) { id } }`, map[string]any{"u": bob.Register.User.ID})
	if p.Code() != "INTERNAL_SERVER_ERROR" || p.Errors[0].Message != "internal server error" || p.Errors[0].Extensions["requestId"] == "" {
		t.Fatalf("panic answered %+v", p.Errors)
	}
	if !strings.Contains(logs.String(), "panic") {
		t.Fatal("panic not logged")
	}
	_ = store.Close() // every query now fails inside the driver
	e := do(reg.Register.Token, `{ myRooms { id } }`, nil)
	if e.Code() != "INTERNAL_SERVER_ERROR" || e.Errors[0].Message != "internal server error" {
		t.Fatalf("database failure answered %+v", e.Errors)
	}
	for _, leak := range []string{"sql", "database", "closed", ".go:"} {
		if strings.Contains(strings.ToLower(e.Errors[0].Message), leak) {
			t.Fatalf("error leaks %q: %s", leak, e.Errors[0].Message)
		}
	}
	if !strings.Contains(logs.String(), e.Errors[0].Extensions["requestId"].(string)) {
		t.Fatal("the log does not carry the request id the client saw")
	}
}

func mustKey(t *testing.T) string {
	t.Helper()
	kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
	if err != nil {
		t.Fatal(err)
	}
	return pqcrypto.EncodeB64(kp.PublicKey)
}

func TestWebsocketLimits(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.WSInitPerMinute, c.WSMaxConnsPerIP, c.WSMaxSubsPerConn = 3, 3, 2
	}})
	u := srv.Register(t, "alice")
	// Three sockets are allowed; the fourth upgrade from the address is 429.
	var socks []*qchattest.WS
	for range 3 {
		socks = append(socks, srv.Connect(t, qchattest.TransportWS, u.Token))
	}
	if _, err := srv.Dial(t, qchattest.TransportWS, nil); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("fourth socket: %v", err)
	}
	// Two subscriptions per connection; the third is refused with RATE_LIMITED.
	a := socks[0].Subscribe(`subscription { typing { isTyping } }`, nil)
	b := socks[0].Subscribe(`subscription { presence { online } }`, nil)
	srv.WaitSubscribers(t, 2) // the transport starts subscriptions concurrently
	c := socks[0].Subscribe(`subscription { roomEvents { type } }`, nil)
	if m, ok := c.Raw(t, 5*time.Second); !ok || !strings.Contains(string(m.Payload), "RATE_LIMITED") {
		t.Fatalf("third subscription: %s %s", m.Type, m.Payload)
	}
	a.ExpectNone(t, 50*time.Millisecond)
	b.ExpectNone(t, 10*time.Millisecond)
	// Three connection_init attempts a minute: the fourth closes with 4429.
	socks[1].Shutdown()
	// The server counts the socket until its side of the close is done,
	// which can be just after the client's.
	ws, err := srv.Dial(t, qchattest.TransportWS, nil)
	for deadline := time.Now().Add(5 * time.Second); err != nil && strings.Contains(err.Error(), "429") && time.Now().Before(deadline); {
		time.Sleep(2 * time.Millisecond)
		ws, err = srv.Dial(t, qchattest.TransportWS, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	err = ws.Init(map[string]any{"authToken": u.Token})
	if err == nil || websocket.CloseStatus(err) != 4429 {
		var ie *qchattest.InitError
		if !errors.As(err, &ie) {
			t.Fatalf("fourth connection_init: %v", err)
		}
	}
}

// Operations over an open (signed-in) websocket spend the same per-user
// budget as that user's HTTP requests.
func TestWebsocketOperationsAreRateLimited(t *testing.T) {
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{Config: func(c *config.Config) {
		c.UserRateLimitRate, c.UserRateLimitBurst = 0.01, 3 // no refill within the test
	}})
	u := srv.Register(t, "alice")
	srv.MustDo(t, u.Token, `{ me { id } }`, nil, nil)    // the user's request 1
	ws := srv.Connect(t, qchattest.TransportWS, u.Token) // the upgrade carries no token: not the user's
	for i := range 3 {
		s := ws.Subscribe(`query { me { id } }`, nil)
		m, ok := s.Raw(t, 5*time.Second)
		if !ok {
			t.Fatalf("operation %d: no answer", i)
		}
		limited := strings.Contains(string(m.Payload), "RATE_LIMITED")
		if want := i >= 2; limited != want { // operations 1 and 2 fit the burst of 3; the 3rd is over
			t.Fatalf("operation %d over the socket: %s %s", i, m.Type, m.Payload)
		}
	}
}
