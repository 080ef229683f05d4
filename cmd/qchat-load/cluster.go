package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qchat/qchat/client"
	"github.com/qchat/qchat/pqcrypto"
)

// rateLimitHint is printed once when the server refuses the load with its
// limits: they are meant for the internet, not for a load test.
const rateLimitHint = "hint: the server is rate limiting the load; start it with " +
	"RATE_LIMIT_MAX=0 USER_RATE_LIMIT_RATE=0 AUTH_RATE_LIMIT_MAX=0 WS_INIT_RATE_LIMIT=0 WS_MAX_CONNECTIONS_PER_IP=0 BCRYPT_COST=4"

// cluster is the servers under test and what every scenario shares: one
// HTTP client with enough idle connections for the load, the run id that
// keeps user names unique, and the log.
type cluster struct {
	o      *options
	urls   []string
	hc     *http.Client
	runID  string
	stderr io.Writer
	pids   []int

	logMu    sync.Mutex
	hintOnce sync.Once
	nextUser atomic.Int64
	// identities holds every registered user's identity key by user id:
	// what a real client would have pinned, to verify what it opens.
	identities sync.Map
}

// identity is the identity key of a user this run registered, nil for
// another.
func (c *cluster) identity(userID string) *pqcrypto.IdentityPublicKey {
	if k, ok := c.identities.Load(userID); ok {
		return k.(*pqcrypto.IdentityPublicKey)
	}
	return nil
}

func newCluster(o *options, stderr io.Writer) *cluster {
	var b [3]byte
	_, _ = rand.Read(b[:])
	conns := 4*o.Concurrency + 4*o.senders() + 64
	tr := &http.Transport{
		Proxy:               nil, // the tool talks to the given URLs only, never through a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
	}
	return &cluster{
		o: o, urls: o.Servers, runID: hex.EncodeToString(b[:]), stderr: stderr,
		hc: &http.Client{Transport: tr, Timeout: 60 * time.Second},
	}
}

func (c *cluster) close() { c.hc.CloseIdleConnections() }

func (c *cluster) logf(format string, args ...any) {
	c.logMu.Lock()
	defer c.logMu.Unlock()
	fmt.Fprintf(c.stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}

// isRateLimited recognises the server's limits in any form: the GraphQL
// code, the websocket close code (which the SDK turns into the same code),
// or a plain HTTP 429 on the handshake.
func isRateLimited(err error) bool {
	return client.HasCode(err, client.CodeRateLimited) || strings.Contains(err.Error(), "429")
}

// explain adds the rate-limit hint to an error caused by the limits.
func (c *cluster) explain(err error) error {
	if err != nil && isRateLimited(err) {
		c.hint()
		return fmt.Errorf("%w (%s)", err, rateLimitHint)
	}
	return err
}

func (c *cluster) hint() {
	c.hintOnce.Do(func() { c.logf("%s", rateLimitHint) })
}

// version asks GET /health for the server's version; "" if it will not say.
func (c *cluster) version(ctx context.Context, base string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
	if err != nil {
		return ""
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	var h struct {
		Version string `json:"version"`
	}
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&h) != nil {
		return ""
	}
	return h.Version
}

// user is a registered load user with its secret key. Its socket lives on
// urls[home]; its requests go to the next instance, so that in
// multi-instance mode every delivery crosses instances.
type user struct {
	id, name, keyID string
	kp              *pqcrypto.KeyPair
	ik              *pqcrypto.IdentityKey // signs everything the user sends
	home            int
	sock            *client.Client
	api             *client.Client
}

func (u *user) keyring() client.Keyring { return client.Keyring{u.keyID: u.kp} }

// registerUsers creates n users with fresh ML-DSA-65 identity keys and
// ML-KEM-768 keys certified by them, spread round-robin over the instances.
// Every message they send is signed, as every client's must be.
func (c *cluster) registerUsers(ctx context.Context, n int) ([]*user, error) {
	users := make([]*user, n)
	err := parallel(ctx, n, max(c.o.Concurrency, 8), func(ctx context.Context, i int) error {
		seq := int(c.nextUser.Add(1))
		kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		if err != nil {
			return err
		}
		ik, err := pqcrypto.GenerateIdentityKey(nil)
		if err != nil {
			return err
		}
		home := seq % len(c.urls)
		u := &user{name: fmt.Sprintf("ld-%s-%d", c.runID, seq), kp: kp, ik: ik, home: home}
		if u.sock, err = client.New(c.urls[home], client.WithHTTPClient(c.hc)); err != nil {
			return err
		}
		s, err := u.sock.Register(ctx, u.name, c.password(), ik, kp)
		if err != nil {
			return fmt.Errorf("register %s: %w", u.name, err)
		}
		if s.User.PublicKey == nil {
			return fmt.Errorf("register %s: no public key in the answer", u.name)
		}
		u.id, u.keyID = s.User.Id, s.User.PublicKey.Id
		c.identities.Store(u.id, ik.Public())
		// One trust store per user: its two clients pin the same keys.
		if u.api, err = client.New(c.urls[(home+1)%len(c.urls)], client.WithHTTPClient(c.hc),
			client.WithToken(s.Token), client.WithIdentity(ik), client.WithPins(u.sock.Pins())); err != nil {
			return err
		}
		users[i] = u
		return nil
	})
	return users, err
}

// password is every user's password in this run; --history-state saves it
// so that a later run can log the users in again.
func (c *cluster) password() string { return "load-password-" + c.runID }

// loginUsers logs users of an earlier run in, spread over the instances as
// registerUsers spreads new ones. They have no secret keys (the state file
// keeps none): they can read envelopes, not seal or open them.
func (c *cluster) loginUsers(ctx context.Context, creds []credential) ([]*user, error) {
	users := make([]*user, len(creds))
	err := parallel(ctx, len(creds), max(c.o.Concurrency, 8), func(ctx context.Context, i int) error {
		home := (i + 1) % len(c.urls)
		u := &user{name: creds[i].Username, home: home}
		var err error
		if u.api, err = client.New(c.urls[(home+1)%len(c.urls)], client.WithHTTPClient(c.hc)); err != nil {
			return err
		}
		s, err := u.api.Login(ctx, u.name, creds[i].Password)
		if err != nil {
			return fmt.Errorf("log in %s: %w", u.name, err)
		}
		u.id = s.User.Id
		users[i] = u
		return nil
	})
	return users, err
}

// createRoom makes a group room owned by members[0] holding all of members.
func (c *cluster) createRoom(ctx context.Context, name string, members []*user) (string, error) {
	ids := make([]string, 0, len(members)-1)
	for _, m := range members[1:] {
		ids = append(ids, m.id)
	}
	r, err := members[0].api.CreateRoom(ctx, name, true, ids...)
	if err != nil {
		return "", fmt.Errorf("create room %s: %w", name, err)
	}
	if r.MemberCount != len(members) {
		return "", fmt.Errorf("create room %s: %d members, want %d", name, r.MemberCount, len(members))
	}
	return r.Id, nil
}

// parallel runs fn(0..n-1) on at most workers goroutines and returns the
// first error, after which no new calls start.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// errorCounts counts failures by extensions.code; errors without a code are
// named by their kind (TRANSPORT, TIMEOUT, SOCKET, HTTP_nnn).
type errorCounts struct {
	c      *cluster
	mu     sync.Mutex
	counts map[string]int64
	first  map[string]string
}

func newErrorCounts(c *cluster) *errorCounts {
	return &errorCounts{c: c, counts: map[string]int64{}, first: map[string]string{}}
}

func errorCode(err error) string {
	var e *client.Error
	switch {
	case errors.As(err, &e) && e.Code != "":
		return e.Code
	case errors.As(err, &e) && e.Status != 0:
		return fmt.Sprintf("HTTP_%d", e.Status)
	case errors.Is(err, context.DeadlineExceeded):
		return "TIMEOUT"
	case strings.Contains(err.Error(), "subscription socket"):
		return "SOCKET"
	case strings.Contains(err.Error(), "429"):
		return client.CodeRateLimited
	}
	return "TRANSPORT"
}

func (e *errorCounts) add(err error) {
	code := errorCode(err)
	if code == client.CodeRateLimited {
		e.c.hint()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.counts[code]++
	if _, ok := e.first[code]; !ok {
		e.first[code] = err.Error()
		e.c.logf("first %s error: %v", code, err)
	}
}

func (e *errorCounts) snapshot() (map[string]int64, int64) {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make(map[string]int64, len(e.counts))
	var total int64
	for k, v := range e.counts {
		out[k] = v
		total += v
	}
	return out, total
}

func formatErrors(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
