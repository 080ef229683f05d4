package health

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/fstest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fakeDB struct {
	pingErr    error
	pending    int
	pendingErr error
	latency    time.Duration
	clock      *stepClock
}

func (d *fakeDB) Ping(context.Context) error {
	if d.clock != nil {
		d.clock.advance(d.latency)
	}
	return d.pingErr
}
func (d *fakeDB) Stats() sql.DBStats {
	return sql.DBStats{OpenConnections: 4, InUse: 1, Idle: 3, WaitCount: 2, WaitDuration: 250 * time.Millisecond}
}
func (d *fakeDB) Pending(context.Context) (int, error) { return d.pending, d.pendingErr }

type stepClock struct{ t time.Time }

func (c *stepClock) now() time.Time          { return c.t }
func (c *stepClock) advance(d time.Duration) { c.t = c.t.Add(d) }

var procFS = fstest.MapFS{
	"meminfo":     {Data: []byte("MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n")},
	"loadavg":     {Data: []byte("0.50 0.25 0.10 1/200 12345\n")},
	"self/status": {Data: []byte("Name:\tqchat\nVmRSS:\t   20480 kB\n")},
}

func get(t *testing.T, h http.Handler, target string, mod func(*http.Request)) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	if mod != nil {
		mod(r)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var body map[string]any
	if w.Code != http.StatusNotFound {
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatalf("body %q: %v", w.Body, err)
		}
	}
	return w.Code, body
}

func TestHealthAndLive(t *testing.T) {
	clock := &stepClock{t: time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)}
	h := New(Config{Version: "1.2.3", Environment: "production", Started: clock.t.Add(-90 * time.Second), Clock: clock.now})
	code, body := get(t, h.Health(), "/health", nil)
	if code != 200 || body["status"] != "healthy" || body["uptime"] != float64(90) || body["version"] != "1.2.3" || body["environment"] != "production" {
		t.Fatalf("%d %v", code, body)
	}
	if code, body := get(t, h.Live(), "/health/live", nil); code != 200 || body["status"] != "alive" {
		t.Fatalf("%d %v", code, body)
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		name     string
		db       DB
		shutdown bool
		code     int
		reason   string
	}{
		{"ready", &fakeDB{}, false, 200, ""},
		{"database down", &fakeDB{pingErr: errors.New("refused")}, false, 503, "database unreachable"},
		{"migrations pending", &fakeDB{pending: 2}, false, 503, "2 migrations pending"},
		{"migration status unknown", &fakeDB{pendingErr: errors.New("boom")}, false, 503, "migration status unknown"},
		{"shutting down", &fakeDB{}, true, 503, "shutting down"},
		{"no database", nil, false, 503, "no database"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{DB: tt.db})
			if tt.shutdown {
				h.SetShuttingDown()
			}
			code, body := get(t, h.Ready(), "/health/ready", nil)
			if code != tt.code {
				t.Fatalf("code = %d, want %d (%v)", code, tt.code, body)
			}
			if tt.reason != "" && body["reason"] != tt.reason {
				t.Fatalf("reason = %v, want %q", body["reason"], tt.reason)
			}
		})
	}
}

func TestDetailed(t *testing.T) {
	tests := []struct {
		name      string
		db        *fakeDB
		brokerErr error
		code      int
		status    string
		dbStatus  string
		broker    string
	}{
		{"healthy", &fakeDB{}, nil, 200, "healthy", "up", "up"},
		{"broker down is degraded", &fakeDB{}, errors.New("redis gone"), 200, "degraded", "up", "down"},
		{"migrations pending is degraded", &fakeDB{pending: 1}, nil, 200, "degraded", "up", "up"},
		{"database down is unhealthy", &fakeDB{pingErr: errors.New("refused")}, nil, 503, "unhealthy", "down", "up"},
		{"both down is unhealthy", &fakeDB{pingErr: errors.New("refused")}, errors.New("x"), 503, "unhealthy", "down", "down"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := &stepClock{t: time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)}
			tt.db.clock, tt.db.latency = clock, 3*time.Millisecond
			h := New(Config{
				Version: "v", Environment: "test", Started: clock.t, Clock: clock.now,
				DB: tt.db, Dialect: "sqlite",
				Broker:     func(context.Context) error { return tt.brokerErr },
				Websockets: func() (int, int) { return 7, 11 },
				ProcFS:     procFS,
			})
			code, body := get(t, h.Detailed(), "/health/detailed", nil)
			if code != tt.code || body["status"] != tt.status {
				t.Fatalf("%d %v, want %d %s", code, body["status"], tt.code, tt.status)
			}
			db := body["database"].(map[string]any)
			if db["status"] != tt.dbStatus || db["dialect"] != "sqlite" || db["latency_ms"] != float64(3) {
				t.Fatalf("database = %v", db)
			}
			pool := db["pool"].(map[string]any)
			if pool["open"] != float64(4) || pool["in_use"] != float64(1) || pool["idle"] != float64(3) ||
				pool["waits"] != float64(2) || pool["wait_duration_ms"] != float64(250) {
				t.Fatalf("pool = %v", pool)
			}
			if b := body["broker"].(map[string]any); b["status"] != tt.broker {
				t.Fatalf("broker = %v", b)
			}
			if ws := body["websockets"].(map[string]any); ws["connections"] != float64(7) || ws["subscriptions"] != float64(11) {
				t.Fatalf("websockets = %v", ws)
			}
			mem := body["memory"].(map[string]any)
			if sys := mem["system"].(map[string]any); sys["total_bytes"] != float64(16000000*1024) || sys["available_bytes"] != float64(8000000*1024) {
				t.Fatalf("system memory = %v", sys)
			}
			if p := mem["process"].(map[string]any); p["rss_bytes"] != float64(20480*1024) || p["heap_alloc_bytes"] == nil {
				t.Fatalf("process memory = %v", p)
			}
			if la := body["load_average"].([]any); len(la) != 3 || la[0] != 0.5 {
				t.Fatalf("load = %v", la)
			}
			for _, k := range []string{"cpus", "go_version", "uptime", "version", "environment"} {
				if _, ok := body[k]; !ok {
					t.Errorf("%s missing", k)
				}
			}
		})
	}
}

func TestDetailedWithoutProc(t *testing.T) {
	// Other operating systems have no /proc: the fields are left out, nothing fails.
	h := New(Config{DB: &fakeDB{}, ProcFS: fstest.MapFS{}})
	code, body := get(t, h.Detailed(), "/health/detailed", nil)
	if code != 200 {
		t.Fatalf("code %d", code)
	}
	if _, ok := body["load_average"]; ok {
		t.Fatal("load_average without /proc")
	}
	mem := body["memory"].(map[string]any)
	if _, ok := mem["system"]; ok {
		t.Fatal("system memory without /proc")
	}
}

func TestProtect(t *testing.T) {
	tests := []struct {
		name   string
		public bool
		token  string
		remote string
		header map[string]string
		code   int
	}{
		{"public", true, "", "203.0.113.9:5000", nil, 200},
		{"loopback v4", false, "", "127.0.0.1:5000", nil, 200},
		{"loopback v6", false, "", "[::1]:5000", nil, 200},
		{"remote without token", false, "s3cret", "203.0.113.9:5000", nil, 404},
		{"remote with token", false, "s3cret", "203.0.113.9:5000", map[string]string{"Authorization": "Bearer s3cret"}, 200},
		{"scheme is case-insensitive", false, "s3cret", "203.0.113.9:5000", map[string]string{"Authorization": "bearer s3cret"}, 200},
		{"wrong token", false, "s3cret", "203.0.113.9:5000", map[string]string{"Authorization": "Bearer s3cre"}, 404},
		{"empty token configured accepts no bearer", false, "", "203.0.113.9:5000", map[string]string{"Authorization": "Bearer "}, 404},
		{"proxied from loopback", false, "", "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.9"}, 404},
		{"proxied with token", false, "s3cret", "127.0.0.1:5000", map[string]string{"X-Forwarded-For": "203.0.113.9", "Authorization": "Bearer s3cret"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := New(Config{Public: tt.public, Token: tt.token})
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, map[string]any{}) })
			code, _ := get(t, h.Protect(ok), "/metrics", func(r *http.Request) {
				r.RemoteAddr = tt.remote
				for k, v := range tt.header {
					r.Header.Set(k, v)
				}
			})
			if code != tt.code {
				t.Fatalf("code = %d, want %d", code, tt.code)
			}
		})
	}
}

func TestRealProcDoesNotFail(t *testing.T) {
	h := New(Config{DB: &fakeDB{}})
	if code, _ := get(t, h.Detailed(), "/health/detailed", nil); code != 200 {
		t.Fatalf("code %d", code)
	}
}
