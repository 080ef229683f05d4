package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestRunRejectsBadConfiguration(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"bad port", map[string]string{"PORT": "eighty"}, "PORT:"},
		{"bad env", map[string]string{"APP_ENV": "staging"}, "APP_ENV:"},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://x"}, "DATABASE_URL must start with postgres://"},
		{"unreachable postgres", map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", "DB_STARTUP_TIMEOUT": "1s", "PORT": "0"}, "cannot reach the database"},
		{"unknown command", map[string]string{"DATA_DIR": "DIR"}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.env["DATA_DIR"] == "DIR" {
				tc.env["DATA_DIR"] = t.TempDir()
			}
			args := []string{}
			if tc.name == "unknown command" {
				args = []string{"frobnicate"}
			}
			err := run(context.Background(), args, env(tc.env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
		})
	}
}

func TestRunMigrateAndServe(t *testing.T) {
	dir := t.TempDir()
	debugAddr := freeAddr(t)
	e := env(map[string]string{"DATA_DIR": dir, "PORT": "0", "BCRYPT_COST": "4", "DEBUG_ADDR": debugAddr})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate", "up"}, e, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"migrate", "status"}, e, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "applied") || strings.Contains(out.String(), "pending") {
		t.Fatalf("status: %s", out.String())
	}

	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- run(ctx, nil, e, pw, io.Discard); _ = pw.Close() }()
	line := make([]byte, 256)
	n, _ := pr.Read(line)
	addr := regexp.MustCompile(`http://\S+?:(\d+)`).FindStringSubmatch(string(line[:n]))
	if addr == nil {
		t.Fatalf("no address in %q", line[:n])
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	// The listener opens before the database is ready: readiness turns 200
	// once migrations are applied.
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + addr[1] + "/health/ready")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ready = %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Profiles are served on DEBUG_ADDR only, never on the API's port.
	for url, want := range map[string]int{
		"http://" + debugAddr + "/debug/pprof/":             http.StatusOK,
		"http://127.0.0.1:" + addr[1] + "/debug/pprof/":     http.StatusNotFound,
		"http://127.0.0.1:" + addr[1] + "/debug/pprof/heap": http.StatusNotFound,
	} {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s = %d, want %d", url, resp.StatusCode, want)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop")
	}
}

// freeAddr returns a loopback address nobody listens on at the moment.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
