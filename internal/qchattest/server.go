package qchattest

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/ratelimit"
	"github.com/qchat/qchat/internal/server"
	"github.com/qchat/qchat/resolvers"
)

// Server is a real QChat handler on a loopback port.
type Server struct {
	URL    string // http://127.0.0.1:port
	Store  *db.Store
	Broker *broker.Memory
	HTTP   *httptest.Server
}

// Options adjust a test server.
type Options struct {
	Config func(*config.Config)
	Log    *slog.Logger
	// BrokerBuffer is each subscriber's event buffer (0: the broker's
	// default), small to show that an action cannot overflow it.
	BrokerBuffer int
}

// NewServer starts a server over store; it stops at cleanup.
func NewServer(t testing.TB, store *db.Store, opts ...Options) *Server {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.Env = "test"
	cfg.BcryptCost = 4 // the minimum: tests measure behaviour, not hashing
	// Limits that suit the internet get in the way of tests that make hundreds
	// of requests from one address; tests of the limits set them again.
	cfg.RateLimitMax, cfg.AuthRateLimitMax, cfg.WSInitPerMinute, cfg.WSMaxConnsPerIP = 0, 0, 0, 0
	cfg.UserRateLimitRate, cfg.AuthIPRateLimitMax, cfg.RegisterFailMax = 0, 0, 0
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	buffer := 0
	if os.Getenv("QCHAT_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	for _, o := range opts {
		if o.Config != nil {
			o.Config(&cfg)
		}
		if o.Log != nil {
			log = o.Log
		}
		if o.BrokerBuffer != 0 {
			buffer = o.BrokerBuffer
		}
	}
	authn := auth.New(store, auth.Config{BcryptCost: cfg.BcryptCost, SessionTTL: cfg.SessionTTL})
	brk := broker.NewMemory(buffer)
	svc := chat.New(chat.Deps{Store: store, Sessions: authn, Broker: brk, Presence: presence.NewMemory(), Log: log})
	res := resolvers.New(resolvers.Deps{
		Chat: svc, Auth: authn, Log: log,
		AuthLimiter:      ratelimit.NewMemory(cfg.AuthRateLimitMax, cfg.AuthRateLimitWindow, nil),
		AuthIPLimiter:    ratelimit.NewMemory(cfg.AuthIPRateLimitMax, cfg.AuthIPRateLimitWindow, nil),
		RegisterLimiter:  ratelimit.NewMemory(cfg.RegisterFailMax, cfg.RegisterFailWindow, nil),
		WSInitLimiter:    ratelimit.NewMemory(cfg.WSInitPerMinute, time.Minute, nil),
		MaxSubscriptions: cfg.WSMaxSubsPerConn,
	})
	h, err := server.New(server.Deps{Config: cfg, Store: store, Auth: authn, Chat: svc, Resolver: res, Log: log, Version: "test", Started: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	invCtx, stopInv := context.WithCancel(context.Background())
	go svc.RunInvalidations(invCtx)
	hs := httptest.NewServer(h)
	t.Cleanup(func() {
		stopInv()
		_ = brk.Close()
		hs.CloseClientConnections()
		hs.Close()
		// httptest does not track hijacked connections: websocket handlers
		// (and the database work of their close, such as presence) would
		// outlive the test and race the store's Close and its TempDir removal.
		h.BeginShutdown()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.WaitWebsockets(ctx); err != nil {
			t.Errorf("websocket handlers still running after the test: %v", err)
		}
		svc.Close()
		authn.Close()
	})
	return &Server{URL: hs.URL, Store: store, Broker: brk, HTTP: hs}
}

// GQLError is one error of a GraphQL response.
type GQLError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// Response is a GraphQL response.
type Response struct {
	Status int
	Data   json.RawMessage `json:"data"`
	Errors []GQLError      `json:"errors"`
	Header http.Header
}

// Code is the first error's extensions.code, or "".
func (r *Response) Code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// Decode unmarshals data into v, failing the test on errors.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if len(r.Errors) > 0 {
		t.Fatalf("unexpected GraphQL errors: %+v", r.Errors)
	}
	if err := json.Unmarshal(r.Data, v); err != nil {
		t.Fatalf("decode data %s: %v", r.Data, err)
	}
}

// Do posts a GraphQL request with an optional bearer token.
func (s *Server) Do(t testing.TB, token, query string, vars map[string]any) *Response {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post graphql: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &Response{Status: resp.StatusCode, Header: resp.Header}
	if err := json.Unmarshal(raw, out); err != nil {
		t.Fatalf("response is not JSON (status %d): %s", resp.StatusCode, raw)
	}
	return out
}

// MustDo is Do that fails on any GraphQL error and decodes data into v.
func (s *Server) MustDo(t testing.TB, token, query string, vars map[string]any, v any) {
	t.Helper()
	r := s.Do(t, token, query, vars)
	if v == nil {
		var discard map[string]any
		r.Decode(t, &discard)
		return
	}
	r.Decode(t, v)
}

// Raw sends one HTTP request and returns the response with its body read.
// It does not follow redirects or add anything but the given headers.
func (s *Server) Raw(t testing.TB, method, path string, header http.Header, body []byte) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	client := &http.Client{
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Transport:     &http.Transport{DisableCompression: true},
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	client.CloseIdleConnections()
	return resp, b
}

// GraphQLBody encodes a GraphQL request body.
func GraphQLBody(query string, vars map[string]any) []byte {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return b
}
