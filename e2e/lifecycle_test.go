package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/google/uuid"

	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/testenv"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// serverBinary builds the server once per test process.
func serverBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "qchat-e2e-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "qchat-server")
		if out, err := exec.Command("go", "build", "-o", binPath, "..").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func baseURL(s *server) string { return strings.TrimSuffix(s.url, "/graphql") }

// TestGracefulShutdown holds a request in flight and a subscription open,
// sends SIGTERM, and checks that the request completes, the socket is closed
// with 1001 (going away), readiness had turned 503, and the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	srv := startServer(t, serverBinary(t), map[string]string{"DATA_DIR": t.TempDir(), "SHUTDOWN_TIMEOUT": "10s"})
	api := &qchattest.Server{URL: baseURL(srv)}
	alice := api.Register(t, "alice")
	ws := api.Connect(t, qchattest.TransportWS, alice.Token)
	sub := ws.Subscribe(`subscription { roomEvents { type } }`, nil)

	// A request whose body is still arriving when the signal comes.
	host := strings.TrimPrefix(api.URL, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"query":"{ me { username } }"}`
	fmt.Fprintf(conn, "POST /graphql HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: Bearer %s\r\nContent-Length: %d\r\n\r\n%s",
		host, alice.Token, len(body), body[:10])
	time.Sleep(100 * time.Millisecond) // the server is now reading the body

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The socket is told the server is going away.
	select {
	case <-ws.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("websocket not closed after SIGTERM")
	}
	if ws.Close != websocket.StatusGoingAway {
		t.Fatalf("websocket close status %d, want 1001", ws.Close)
	}
	_, _ = sub.Raw(t, 10*time.Millisecond)

	// The in-flight request still completes.
	if _, err := io.WriteString(conn, body[10:]); err != nil {
		t.Fatalf("finish body: %v", err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"alice"`) {
		t.Fatalf("in-flight request answered %d %s", resp.StatusCode, b)
	}
	select {
	case err := <-srv.done:
		srv.exited = true
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("process did not exit within the shutdown bound")
	}
}

// TestNoAcknowledgedMessageLost kills the process with SIGKILL right after
// sendMessage answers, restarts it, and finds every acknowledged message.
func TestNoAcknowledgedMessageLost(t *testing.T) {
	dataDir := t.TempDir()
	bin := serverBinary(t)
	srv := startServer(t, bin, map[string]string{"DATA_DIR": dataDir})
	api := &qchattest.Server{URL: baseURL(srv)}
	alice := api.Register(t, "alice")
	bob := api.Register(t, "bob")
	var ids []string
	for range 20 {
		id := uuid.NewString()
		in := qchattest.Seal(t, id, alice, "", bob.ID, "durable "+id, alice, bob)
		api.MustDo(t, alice.Token, `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id } }`, map[string]any{"in": in}, nil)
		ids = append(ids, id)
	}
	_ = srv.cmd.Process.Signal(syscall.SIGKILL)
	<-srv.done
	srv.exited = true

	again := startServer(t, bin, map[string]string{"DATA_DIR": dataDir})
	api = &qchattest.Server{URL: baseURL(again)}
	var out struct {
		DirectMessages struct {
			Edges []struct{ Node struct{ ID string } }
		}
	}
	api.MustDo(t, bob.Token, `query($u: ID!) { directMessages(withUserId: $u, first: 100) { edges { node { id } } } }`, map[string]any{"u": alice.ID}, &out)
	got := map[string]bool{}
	for _, e := range out.DirectMessages.Edges {
		got[e.Node.ID] = true
	}
	for _, id := range ids {
		if !got[id] {
			t.Fatalf("acknowledged message %s lost after SIGKILL (%d of %d survived)", id, len(got), len(ids))
		}
	}
	again.stop(t)
}

// TestDatabaseOutage points the server at PostgreSQL through a proxy that the
// test cuts and restores: readiness goes 503 then 200 without a restart.
func TestDatabaseOutage(t *testing.T) {
	base := testenv.Service(t, "PostgreSQL", "QCHAT_TEST_POSTGRES_URL")
	_, dsn, _ := freshSchema(t, base)
	p := newProxy(t, "127.0.0.1:5432")
	dsn = strings.Replace(dsn, "127.0.0.1:5432", p.addr, 1)
	srv := startServer(t, serverBinary(t), map[string]string{"DATA_DIR": t.TempDir(), "DATABASE_URL": dsn})
	ready := baseURL(srv) + "/health/ready"
	waitStatus(t, ready, http.StatusOK)
	p.cut()
	waitStatus(t, ready, http.StatusServiceUnavailable)
	p.restore()
	waitStatus(t, ready, http.StatusOK)
	api := &qchattest.Server{URL: baseURL(srv)}
	api.Register(t, "after-outage") // and it serves again
	srv.stop(t)
}

func waitStatus(t *testing.T, url string, want int) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	last := 0
	for time.Now().Before(deadline) {
		if resp, err := client.Get(url); err == nil {
			last = resp.StatusCode
			resp.Body.Close()
			if last == want {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s stayed %d, want %d", url, last, want)
}

// proxy forwards TCP to target until cut, which closes every connection and
// refuses new ones until restore.
type proxy struct {
	t      *testing.T
	addr   string
	target string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	p := &proxy{t: t, target: target, conns: map[net.Conn]bool{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns[c], p.conns[up] = true, true
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	p.conns = map[net.Conn]bool{}
}

func (p *proxy) restore() {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("reopen proxy: %v", err)
	}
	p.serve(ln)
}
