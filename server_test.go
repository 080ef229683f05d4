package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// A bad configuration stops run before anything opens: the test holds the
// port the server is given, so a server that listened before validating would
// fail with "address already in use" instead of naming the bad settings. Every
// bad setting is reported at once, one line each, and the exit code is 2.
func TestRunRejectsBadConfiguration(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	port := strconv.Itoa(held.Addr().(*net.TCPAddr).Port)
	cases := []struct {
		name string
		env  map[string]string
		// want holds one substring per expected line, in order.
		want []string
		// hide must not appear in the output (secrets).
		hide string
	}{
		{"bad port", map[string]string{"PORT": "eighty"}, []string{`PORT="eighty": want a whole number from 0 to 65535`}, ""},
		{"bad env", map[string]string{"APP_ENV": "staging"}, []string{`APP_ENV="staging": want one of development, production, test`}, ""},
		{"bad database url", map[string]string{"DATABASE_URL": "mysql://x"},
			[]string{`DATABASE_URL="mysql://x": want postgres://`}, ""},
		{"database url names the sqlite form", map[string]string{"DATABASE_URL": "mysql://x"}, []string{"sqlite:/path/qchat.db"}, ""},
		{"database password masked", map[string]string{"DATABASE_URL": "mysql://qchat:s3cret@db/qchat"},
			[]string{`DATABASE_URL="mysql://qchat:***@db/qchat"`}, "s3cret"},
		{"empty sqlite path", map[string]string{"DATABASE_URL": "sqlite:"}, []string{"DATABASE_URL=\"sqlite:\": want a file path"}, ""},
		{"redis url", map[string]string{"REDIS_URL": "redis://:pw0rd@host:notaport"}, []string{"REDIS_URL="}, "pw0rd"},
		{"debug addr", map[string]string{"DEBUG_ADDR": "6060"}, []string{`DEBUG_ADDR="6060": want host:port`}, ""},
		{"missing CA file", map[string]string{"DB_SSL_CA": "/nonexistent/ca.pem"}, []string{`DB_SSL_CA="/nonexistent/ca.pem"`}, ""},
		{"user rate", map[string]string{"USER_RATE_LIMIT_RATE": "fast"}, []string{`USER_RATE_LIMIT_RATE="fast": want a number`}, ""},
		{"every bad setting at once", map[string]string{
			"DATABASE_URL": "mysql://x", "LOG_LEVEL": "loud", "RATE_LIMIT_WINDOW": "soon", "USER_RATE_LIMIT_BURST": "0", "DB_POOL_MAX": "0",
		}, []string{"LOG_LEVEL=", "DB_POOL_MAX=", "RATE_LIMIT_WINDOW=", "USER_RATE_LIMIT_BURST=", "DATABASE_URL="}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := map[string]string{"HOST": "127.0.0.1", "PORT": port, "DATA_DIR": t.TempDir()}
			for k, v := range tc.env {
				e[k] = v
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), nil, env(e), &stdout, &stderr)
			if err == nil {
				t.Fatal("run accepted the configuration")
			}
			if code := exitCode(err); code != 2 {
				t.Errorf("exit code %d for %v, want 2", code, err)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("%d lines, want %d:\n%s", len(lines), len(tc.want), err)
			}
			for i, w := range tc.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("line %d = %q, want it to contain %q", i+1, lines[i], w)
				}
			}
			if tc.hide != "" && strings.Contains(err.Error(), tc.hide) {
				t.Errorf("the error shows a secret: %s", err)
			}
			if stdout.Len() > 0 || stderr.Len() > 0 {
				t.Errorf("output before the error:\nstdout: %s\nstderr: %s", stdout.String(), stderr.String())
			}
		})
	}
}

// Failures that are not configuration errors exit 1, after one line.
func TestRunOtherFailures(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"unreachable postgres", nil, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?connect_timeout=2", "DB_STARTUP_TIMEOUT": "1s", "PORT": "0"}, "cannot reach the database"},
		{"unknown command", []string{"frobnicate"}, map[string]string{}, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.env["DATA_DIR"] = t.TempDir()
			err := run(context.Background(), tc.args, env(tc.env), io.Discard, io.Discard)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error is not one line: %q", err)
			}
			if code := exitCode(err); code != 1 {
				t.Errorf("exit code %d, want 1", code)
			}
		})
	}
}

func TestRunMigrateAndServe(t *testing.T) {
	dir := t.TempDir()
	debugAddr := freeAddr(t)
	e := env(map[string]string{"DATA_DIR": dir, "PORT": "0", "BCRYPT_COST": "4", "DEBUG_ADDR": debugAddr, "USER_RATE_LIMIT_RATE": "2.5", "AUTH_IP_RATE_LIMIT_MAX": "0"})
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
	line := make([]byte, 4096)
	n, _ := pr.Read(line)
	addr := regexp.MustCompile(`http://\S+?:(\d+)`).FindStringSubmatch(string(line[:n]))
	if addr == nil {
		t.Fatalf("no address in %q", line[:n])
	}
	// The banner shows the rate limits in effect, with their variables.
	for _, want := range []string{
		"requests without a session per IP: 100 per 15m (RATE_LIMIT_MAX, RATE_LIMIT_WINDOW)",
		"signed-in requests per user: 2.5/s sustained, bursts of 600 (USER_RATE_LIMIT_RATE, USER_RATE_LIMIT_BURST)",
		"failed logins per IP and username: 5 per 15m",
		"failed logins per IP: off",
	} {
		if !strings.Contains(string(line[:n]), want) {
			t.Errorf("banner lacks %q:\n%s", want, line[:n])
		}
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
