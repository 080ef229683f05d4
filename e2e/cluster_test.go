package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/redistest"
	"github.com/qchat/qchat/internal/qchattest/testenv"
	"github.com/qchat/qchat/pqcrypto"
)

// presenceTTL is short so that a killed instance's users go offline quickly.
const presenceTTL = 3 * time.Second

// cluster is several instances of the binary sharing one PostgreSQL schema
// and one Redis prefix.
type cluster struct {
	t     *testing.T
	bin   string
	env   map[string]string
	nodes []*server
}

// newCluster starts n instances on a fresh schema. Without
// QCHAT_TEST_POSTGRES_URL or QCHAT_TEST_REDIS_URL the test is skipped (failed
// under CI=true); redisURL "" means QCHAT_TEST_REDIS_URL.
func newCluster(t *testing.T, n int, redisURL string, env map[string]string) *cluster {
	t.Helper()
	base := testenv.Service(t, "PostgreSQL", "QCHAT_TEST_POSTGRES_URL")
	if redisURL == "" {
		redisURL = redistest.URL(t)
	}
	_, dsn, _ := freshSchema(t, base)
	var b [6]byte
	_, _ = rand.Read(b[:])
	c := &cluster{t: t, bin: serverBinary(t), env: map[string]string{
		"DATA_DIR": t.TempDir(), "DATABASE_URL": dsn, "REDIS_URL": redisURL,
		"REDIS_PREFIX": "qchat-e2e-" + hex.EncodeToString(b[:]) + ":",
		"PRESENCE_TTL": presenceTTL.String(),
	}}
	for k, v := range env {
		c.env[k] = v
	}
	// One after the other: the first migrates the schema.
	for range n {
		c.start()
	}
	return c
}

func (c *cluster) start() *server {
	c.t.Helper()
	s := startServer(c.t, c.bin, c.env)
	c.nodes = append(c.nodes, s)
	return s
}

func (c *cluster) api(i int) *qchattest.Server { return &qchattest.Server{URL: baseURL(c.nodes[i])} }

// detailed returns /health/detailed of instance i (public: APP_ENV=development).
func (c *cluster) detailed(i int) (status int, body struct {
	Status     string
	Broker     struct{ Status string }
	Websockets struct{ Connections, Subscriptions int }
}) {
	c.t.Helper()
	resp, err := http.Get(baseURL(c.nodes[i]) + "/health/detailed")
	if err != nil {
		c.t.Fatalf("health/detailed: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &body); err != nil {
		c.t.Fatalf("health/detailed %d: %s", resp.StatusCode, raw)
	}
	return resp.StatusCode, body
}

// waitBroker waits until instance i reports its broker in state want.
func (c *cluster) waitBroker(i int, want string, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		code, h := c.detailed(i)
		if h.Broker.Status == want {
			if want == "down" && (code != http.StatusOK || h.Status != "degraded") {
				c.t.Fatalf("instance %d with the broker down: %d %s, want 200 degraded", i, code, h.Status)
			}
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("instance %d: broker %q after %v, want %q", i, h.Broker.Status, within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitSubscriptions waits until instance i runs at least n subscriptions, so
// that an event sent afterwards is not raced against the subscribe.
func (c *cluster) waitSubscriptions(i, n int) {
	c.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, h := c.detailed(i)
		if h.Websockets.Subscriptions >= n {
			time.Sleep(20 * time.Millisecond) // counted just before the broker subscription
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("instance %d runs %d subscriptions, want %d", i, h.Websockets.Subscriptions, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func online(t *testing.T, api *qchattest.Server, token, userID string) bool {
	t.Helper()
	var out struct{ User struct{ Online bool } }
	api.MustDo(t, token, `query($id: ID!) { user(id: $id) { online } }`, map[string]any{"id": userID}, &out)
	return out.User.Online
}

// waitOnline polls instance api until userID's online state is want.
func waitOnline(t *testing.T, api *qchattest.Server, token, userID string, want bool, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for online(t, api, token, userID) != want {
		if time.Since(start) > within {
			t.Fatalf("user %s online != %v on %s after %v", userID, want, api.URL, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start)
}

// sendDirect sends text from one user to another through api.
func sendDirect(t *testing.T, api *qchattest.Server, from, to *qchattest.User, text string) string {
	t.Helper()
	id := uuid.NewString()
	api.MustDo(t, from.Token, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`,
		map[string]any{"in": qchattest.Seal(t, id, from, "", to.ID, text, from, to)}, nil)
	return id
}

const messageAdded = `subscription { messageAdded { ` + qchattest.MessageFields + ` } }`

// TestCluster runs three instances on one database and one Redis and checks
// that a user sees one service whichever instance each request reaches.
func TestCluster(t *testing.T) {
	start := time.Now()
	c := newCluster(t, 3, "", nil)
	t.Logf("3 instances up in %v", time.Since(start).Round(time.Millisecond))
	a, b := c.api(0), c.api(1)
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")

	t.Run("subscriber on A receives a message sent through B", func(t *testing.T) {
		ws := a.Connect(t, qchattest.TransportWS, bob.Token)
		defer ws.Shutdown()
		sub := ws.Subscribe(messageAdded, nil)
		c.waitSubscriptions(0, 1)
		sent := time.Now()
		id := sendDirect(t, b, alice, bob, "hello across instances")
		var got struct{ MessageAdded qchattest.WireMessage }
		sub.Next(t, &got)
		t.Logf("delivered across instances in %v", time.Since(sent).Round(time.Microsecond))
		if got.MessageAdded.ID != id {
			t.Fatalf("got message %s, want %s", got.MessageAdded.ID, id)
		}
		if pt := qchattest.Open(t, bob, got.MessageAdded); pt != "hello across instances" {
			t.Fatalf("decrypted %q", pt)
		}
		sub.ExpectNone(t, 200*time.Millisecond) // once, not once per instance
	})

	t.Run("presence is seen from every instance", func(t *testing.T) {
		ws := a.Connect(t, qchattest.TransportWS, bob.Token)
		for i := range c.nodes {
			if !online(t, c.api(i), alice.Token, bob.ID) {
				t.Fatalf("bob offline on instance %d while his socket is on A", i)
			}
		}
		ws.Shutdown()
		d := waitOnline(t, b, alice.Token, bob.ID, false, 2*time.Second)
		t.Logf("offline on B %v after the socket on A closed", d.Round(time.Millisecond))
	})

	// B evicts its cached session when A's invalidation arrives through
	// Redis: milliseconds, but not before B's next request can be served
	// on a loaded machine, so the test waits for the rejection (bounded)
	// instead of racing the message.
	t.Run("logout on A is rejected on B within moments", func(t *testing.T) {
		var login struct{ Login struct{ Token string } }
		a.MustDo(t, "", `mutation { login(username: "alice", password: "password-alice") { token } }`, nil, &login)
		token := login.Login.Token
		me := `{ me { id } }`
		var out struct{ Me *struct{ ID string } }
		b.MustDo(t, token, me, nil, &out) // now cached on B
		if out.Me == nil || out.Me.ID != alice.ID {
			t.Fatalf("me on B before logout: %+v", out.Me)
		}
		a.MustDo(t, token, `mutation { logout }`, nil, nil)
		start := time.Now()
		for {
			r := b.Do(t, token, me, nil)
			if r.Status != http.StatusOK || len(r.Errors) > 0 || strings.Contains(string(r.Data), `"me":null`) {
				break
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("B still serves the token 5 s after logout on A: %d %s", r.Status, r.Data)
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Logf("rejected on B %v after logout on A", time.Since(start).Round(time.Millisecond))
	})

	t.Run("SIGKILL: the others serve and its users go offline within the TTL", func(t *testing.T) {
		cNode := c.api(2)
		ws := cNode.Connect(t, qchattest.TransportWS, bob.Token)
		defer ws.Shutdown()
		if !online(t, a, alice.Token, bob.ID) {
			t.Fatal("bob offline on A while his socket is on C")
		}
		if err := c.nodes[2].cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-c.nodes[2].done
		c.nodes[2].exited = true
		killed := time.Now()
		d := waitOnline(t, a, alice.Token, bob.ID, false, presenceTTL+2*time.Second)
		t.Logf("offline on A %v after SIGKILL (PRESENCE_TTL %v)", d.Round(time.Millisecond), presenceTTL)
		if time.Since(killed) > presenceTTL+time.Second {
			t.Errorf("offline only %v after the kill", time.Since(killed))
		}
		// A and B still serve, live delivery included.
		sub := a.Connect(t, qchattest.TransportWS, bob.Token).Subscribe(messageAdded, nil)
		c.waitSubscriptions(0, 1)
		id := sendDirect(t, b, alice, bob, "after the kill")
		var got struct{ MessageAdded qchattest.WireMessage }
		sub.Next(t, &got)
		if got.MessageAdded.ID != id {
			t.Fatalf("got message %s, want %s", got.MessageAdded.ID, id)
		}
	})

	t.Run("keyChanged reaches a contact on another instance", func(t *testing.T) {
		_, h := c.detailed(0)
		ws := a.Connect(t, qchattest.TransportWS, alice.Token)
		defer ws.Shutdown()
		sub := ws.Subscribe(`subscription { keyChanged { user { id } kind } }`, nil)
		c.waitSubscriptions(0, h.Websockets.Subscriptions+1)
		kp, err := pqcrypto.GenerateKeyPair(pqcrypto.MLKEM768, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.MustDo(t, bob.Token, `mutation($k: String!, $seq: Int!, $sig: String!) { rotateKey(publicKey: $k, seq: $seq, signature: $sig) { id } }`, bob.RotateVars(t, kp), nil)
		var got struct {
			KeyChanged struct {
				User struct{ ID string }
				Kind string
			}
		}
		sub.Next(t, &got)
		if got.KeyChanged.User.ID != bob.ID || got.KeyChanged.Kind != "KEM_ROTATED" {
			t.Fatalf("alice on A heard %+v, want KEM_ROTATED of bob", got.KeyChanged)
		}
		sub.ExpectNone(t, 200*time.Millisecond) // once, not once per instance
	})
}

// TestClusterRateLimit spends one budget across two instances.
func TestClusterRateLimit(t *testing.T) {
	const limit = 6
	c := newCluster(t, 2, "", map[string]string{"RATE_LIMIT_MAX": strconv.Itoa(limit), "RATE_LIMIT_WINDOW": "1m"})
	body := qchattest.GraphQLBody(`{ __typename }`, nil)
	header := http.Header{"Content-Type": {"application/json"}}
	for i := range limit {
		resp, b := c.api(i%2).Raw(t, http.MethodPost, "/graphql", header, body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d on instance %d: %d %s", i+1, i%2, resp.StatusCode, b)
		}
		if got, want := resp.Header.Get("RateLimit-Remaining"), strconv.Itoa(limit-i-1); got != want {
			t.Fatalf("request %d on instance %d: RateLimit-Remaining %s, want %s (one budget for both)", i+1, i%2, got, want)
		}
	}
	for i := range c.nodes {
		resp, b := c.api(i).Raw(t, http.MethodPost, "/graphql", header, body)
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(b), "RATE_LIMITED") {
			t.Fatalf("request %d on instance %d: %d %s, want 429 RATE_LIMITED", limit+1, i, resp.StatusCode, b)
		}
		if resp.Header.Get("Retry-After") == "" {
			t.Fatal("429 without Retry-After")
		}
	}
}

// TestClusterRedisRestart takes a private Redis away mid-run: requests and
// storage go on, the broker shows degraded while readiness stays up, and live
// delivery across instances resumes once Redis is back, without restarting
// any instance. What was sent meanwhile is found in history.
func TestClusterRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	c := newCluster(t, 2, srv.URL(), nil)
	a, b := c.api(0), c.api(1)
	alice, bob := a.Register(t, "alice"), a.Register(t, "bob")
	c.waitBroker(0, "up", 5*time.Second)
	c.waitBroker(1, "up", 5*time.Second)
	ws := a.Connect(t, qchattest.TransportWS, bob.Token)
	sub := ws.Subscribe(messageAdded, nil)
	c.waitSubscriptions(0, 1)

	srv.Stop(t)
	for i := range c.nodes {
		c.waitBroker(i, "down", 5*time.Second)
		resp, raw := c.api(i).Raw(t, http.MethodGet, "/health/ready", nil, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("instance %d not ready with redis down: %d %s", i, resp.StatusCode, raw)
		}
	}
	sent := time.Now()
	missed := sendDirect(t, b, alice, bob, "sent while redis is down")
	t.Logf("sendMessage with redis down: %v", time.Since(sent).Round(time.Millisecond))
	sub.ExpectNone(t, 300*time.Millisecond) // at most once: this one is lost live

	srv.Restart(t)
	restarted := time.Now()
	c.waitBroker(0, "up", 10*time.Second)
	c.waitBroker(1, "up", 10*time.Second)
	t.Logf("brokers up %v after redis restarted", time.Since(restarted).Round(time.Millisecond))
	id := sendDirect(t, b, alice, bob, "after redis came back")
	var got struct{ MessageAdded qchattest.WireMessage }
	sub.Next(t, &got)
	if got.MessageAdded.ID != id {
		t.Fatalf("got message %s, want %s", got.MessageAdded.ID, id)
	}

	// The client catches up through history.
	var hist struct {
		DirectMessages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	a.MustDo(t, bob.Token, `query($with: ID!) { directMessages(withUserId: $with) { edges { node { id } } } }`,
		map[string]any{"with": alice.ID}, &hist)
	found := false
	for _, e := range hist.DirectMessages.Edges {
		found = found || e.Node.ID == missed
	}
	if !found {
		t.Fatalf("the message sent while redis was down is not in history: %+v", hist)
	}
}

// Issue 14, item 2, across instances: a markRead of 300 messages on B reaches
// a subscriber on A through Redis as one event, delivered there as 300
// receipts, and the subscriber's other subscriptions go on. One Redis message
// per receipt ended them past the 256-event buffer.
func TestClusterReceiptBatch(t *testing.T) {
	const n = 300
	c := newCluster(t, 2, "", map[string]string{"RATE_LIMIT_MAX": "0"})
	a, b := c.api(0), c.api(1)
	alice, bob := a.Register(t, "alice"), b.Register(t, "bob")
	ids := make([]string, n)
	for i := range ids {
		ids[i] = sendDirect(t, a, alice, bob, "message "+strconv.Itoa(i))
	}
	ws := a.Connect(t, qchattest.TransportWS, alice.Token)
	defer ws.Shutdown()
	receipts := ws.Subscribe(`subscription { readReceipts { messageId user { id } } }`, nil)
	added := ws.Subscribe(messageAdded, nil)
	c.waitSubscriptions(0, 2)

	b.MustDo(t, bob.Token, `mutation($ids: [ID!]!) { markRead(messageIds: $ids) }`, map[string]any{"ids": ids}, nil)
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	for range n {
		var ev struct {
			ReadReceipts struct {
				MessageID string
				User      struct{ ID string }
			}
		}
		receipts.Next(t, &ev)
		if !want[ev.ReadReceipts.MessageID] || ev.ReadReceipts.User.ID != bob.ID {
			t.Fatalf("unexpected or repeated receipt %+v", ev.ReadReceipts)
		}
		delete(want, ev.ReadReceipts.MessageID)
	}
	id := sendDirect(t, b, bob, alice, "read them all")
	var got struct{ MessageAdded qchattest.WireMessage }
	added.Next(t, &got)
	if got.MessageAdded.ID != id {
		t.Fatalf("messageAdded %s, want %s", got.MessageAdded.ID, id)
	}
}
