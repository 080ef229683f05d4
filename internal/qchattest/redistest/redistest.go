// Package redistest gives tests a Redis: the shared one named by
// QCHAT_TEST_REDIS_URL under a prefix of their own, or a private redis-server
// they can stop and start again.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/qchat/qchat/internal/qchattest/testenv"
)

// URL returns QCHAT_TEST_REDIS_URL. Without it the test is skipped, except
// under CI=true where a missing service is a failure.
func URL(t testing.TB) string {
	t.Helper()
	return testenv.Service(t, "Redis", "QCHAT_TEST_REDIS_URL")
}

// Prefix returns a prefix no other run uses, and deletes its keys at cleanup.
func Prefix(t testing.TB, client redis.UniversalClient) string {
	t.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix := "qchattest:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		iter := client.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			client.Del(ctx, iter.Val())
		}
	})
	return prefix
}

// Client connects to QCHAT_TEST_REDIS_URL and returns a client closed at
// cleanup, with a prefix of the test's own.
func Client(t testing.TB) (*redis.Client, string) {
	t.Helper()
	opts, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("QCHAT_TEST_REDIS_URL: %v", err)
	}
	client := redis.NewClient(opts)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := client.Ping(ctx).Err(); err != nil {
		_ = client.Close()
		t.Fatalf("QCHAT_TEST_REDIS_URL does not answer: %v", err)
	}
	prefix := Prefix(t, client) // cleaned up before the client closes
	t.Cleanup(func() { _ = client.Close() })
	return client, prefix
}

// Server is a private redis-server without persistence on a loopback port.
type Server struct {
	Port int
	bin  string
	cmd  *exec.Cmd
	done chan struct{}
}

// Start runs a private redis-server on a free port; it is stopped at cleanup.
// Without redis-server on PATH the test is skipped, or fails under CI=true.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true but redis-server is not on PATH: %v", err)
		}
		testenv.Skip(t, "redis-server", "redis-server is not on PATH")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &Server{Port: port, bin: bin}
	s.Restart(t)
	t.Cleanup(func() { s.Stop(t) })
	return s
}

// URL is the server's redis:// URL.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Restart starts the server again on its port after Stop.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	if s.cmd != nil {
		t.Fatal("redistest: Restart of a running server")
	}
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.cmd, s.done = cmd, done
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)), time.Second)
		if err == nil {
			_ = c.Close()
			return
		}
		select {
		case <-done:
			s.cmd = nil
			t.Fatalf("redis-server on port %d exited at start (port taken?)", s.Port)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on port %d not listening within 10s: %v", s.Port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (SIGKILL: an outage, not a maintenance) and waits for
// its exit. Stopping a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Errorf("redis-server on port %d did not exit", s.Port)
	}
	s.cmd = nil
}
