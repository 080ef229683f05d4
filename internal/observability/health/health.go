// Package health answers the probes an operator and an orchestrator ask: is
// the process up, is it ready for traffic, and, for a person diagnosing it,
// how are its database, broker, sockets and host doing.
package health

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"
)

// DB is what the probes need from the store (db.Store satisfies it).
type DB interface {
	Ping(ctx context.Context) error
	Stats() sql.DBStats
	Pending(ctx context.Context) (int, error)
}

// Config is what the probes report on.
type Config struct {
	Version     string
	Environment string
	Started     time.Time
	// Clock measures uptime and latency; nil means time.Now.
	Clock func() time.Time
	DB    DB
	// Dialect names the database engine (string(store.Dialect())); it is a
	// field rather than a DB method so this package need not import db.
	Dialect string
	// Broker reports the broker's health; nil error means healthy, and a nil
	// func means there is nothing to check (the in-memory broker).
	Broker func(ctx context.Context) error
	// Websockets reports open sockets and running subscriptions.
	Websockets func() (conns, subs int)
	// Token (HEALTH_TOKEN) lets a request with "Authorization: Bearer <Token>"
	// through Protect; empty allows loopback only.
	Token string
	// Public exposes the protected endpoints to anyone.
	Public bool
	// CheckTimeout bounds each dependency check; 0 means 2 seconds.
	CheckTimeout time.Duration
	// ProcFS is /proc, replaceable in tests; nil means os.DirFS("/proc").
	ProcFS fs.FS
	// Log receives the causes of failed checks, which responses do not show.
	Log *slog.Logger
}

// Health serves the probes.
type Health struct {
	cfg          Config
	tokenHash    [sha256.Size]byte
	shuttingDown atomic.Bool
}

// New returns the probes for cfg.
func New(cfg Config) *Health {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Started.IsZero() {
		cfg.Started = cfg.Clock()
	}
	if cfg.CheckTimeout <= 0 {
		cfg.CheckTimeout = 2 * time.Second
	}
	if cfg.ProcFS == nil {
		cfg.ProcFS = os.DirFS("/proc")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Health{cfg: cfg, tokenHash: sha256.Sum256([]byte(cfg.Token))}
}

// SetShuttingDown makes readiness fail from now on, so that a load balancer
// stops sending traffic while in-flight requests finish.
func (h *Health) SetShuttingDown() { h.shuttingDown.Store(true) }

func (h *Health) uptime() float64 {
	return math.Round(h.cfg.Clock().Sub(h.cfg.Started).Seconds()*1000) / 1000
}

// Health answers GET /health: the process serves, and which build it is.
func (h *Health) Health() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"status":      "healthy",
			"uptime":      h.uptime(),
			"version":     h.cfg.Version,
			"environment": h.cfg.Environment,
		})
	})
}

// Live answers GET /health/live: 200 while the process can serve at all.
func (h *Health) Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "alive"})
	})
}

// Ready answers GET /health/ready: 200 only when the database answers, every
// migration is applied and the server is not shutting down. The reason for a
// 503 is coarse on purpose (the endpoint is public); the cause is logged.
func (h *Health) Ready() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := h.notReady(r.Context()); reason != "" {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "reason": reason})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
}

func (h *Health) notReady(ctx context.Context) string {
	if h.shuttingDown.Load() {
		return "shutting down"
	}
	if h.cfg.DB == nil {
		return "no database"
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CheckTimeout)
	defer cancel()
	if err := h.cfg.DB.Ping(ctx); err != nil {
		h.cfg.Log.WarnContext(ctx, "readiness: database unreachable", "err", err)
		return "database unreachable"
	}
	n, err := h.cfg.DB.Pending(ctx)
	if err != nil {
		h.cfg.Log.WarnContext(ctx, "readiness: migration status", "err", err)
		return "migration status unknown"
	}
	if n > 0 {
		return fmt.Sprintf("%d migrations pending", n)
	}
	return ""
}

// Detailed answers GET /health/detailed (wrap it in Protect). A database
// failure makes the service unhealthy (503): it can do nothing useful. A
// broker failure or pending migrations only degrade it (200): it still serves.
func (h *Health) Detailed() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, code := "healthy", http.StatusOK
		degrade := func() {
			if status == "healthy" {
				status = "degraded"
			}
		}

		database := h.checkDatabase(r.Context())
		if database["status"] != "up" {
			status, code = "unhealthy", http.StatusServiceUnavailable
		} else if p, _ := database["pending_migrations"].(int); p != 0 {
			degrade()
		}

		broker := map[string]any{"status": "up"}
		if h.cfg.Broker != nil {
			ctx, cancel := context.WithTimeout(r.Context(), h.cfg.CheckTimeout)
			err := h.cfg.Broker(ctx)
			cancel()
			if err != nil {
				h.cfg.Log.WarnContext(r.Context(), "health: broker", "err", err)
				broker["status"] = "down"
				degrade()
			}
		}

		var conns, subs int
		if h.cfg.Websockets != nil {
			conns, subs = h.cfg.Websockets()
		}

		body := map[string]any{
			"status":        status,
			"database":      database,
			"broker":        broker,
			"websockets":    map[string]any{"connections": conns, "subscriptions": subs},
			"memory":        h.memory(),
			"cpus":          runtime.NumCPU(),
			"go_version":    runtime.Version(),
			"uptime":        h.uptime(),
			"version":       h.cfg.Version,
			"environment":   h.cfg.Environment,
			"shutting_down": h.shuttingDown.Load(),
		}
		if load, ok := loadAverage(h.cfg.ProcFS); ok {
			body["load_average"] = load
		}
		writeJSON(w, code, body)
	})
}

func (h *Health) checkDatabase(ctx context.Context) map[string]any {
	out := map[string]any{"dialect": h.cfg.Dialect}
	if h.cfg.DB == nil {
		out["status"] = "down"
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.CheckTimeout)
	defer cancel()
	start := h.cfg.Clock()
	err := h.cfg.DB.Ping(ctx)
	out["latency_ms"] = float64(h.cfg.Clock().Sub(start).Microseconds()) / 1000
	s := h.cfg.DB.Stats()
	out["pool"] = map[string]any{
		"open":             s.OpenConnections,
		"in_use":           s.InUse,
		"idle":             s.Idle,
		"waits":            s.WaitCount,
		"wait_duration_ms": s.WaitDuration.Milliseconds(),
		"max_open":         s.MaxOpenConnections,
	}
	if err != nil {
		h.cfg.Log.WarnContext(ctx, "health: database", "err", err)
		out["status"] = "down"
		return out
	}
	out["status"] = "up"
	if n, err := h.cfg.DB.Pending(ctx); err == nil {
		out["pending_migrations"] = n
	}
	return out
}

// memory reports the Go heap, the process's resident set and the host's
// memory. The /proc parts are left out where /proc does not exist.
func (h *Health) memory() map[string]any {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	process := map[string]any{
		"heap_alloc_bytes": ms.HeapAlloc,
		"heap_sys_bytes":   ms.HeapSys,
		"go_sys_bytes":     ms.Sys,
	}
	if rss, ok := procKB(h.cfg.ProcFS, "self/status", "VmRSS"); ok {
		process["rss_bytes"] = rss
	}
	out := map[string]any{"process": process}
	total, okT := procKB(h.cfg.ProcFS, "meminfo", "MemTotal")
	avail, okA := procKB(h.cfg.ProcFS, "meminfo", "MemAvailable")
	if okT && okA {
		out["system"] = map[string]any{"total_bytes": total, "available_bytes": avail}
	}
	return out
}

// procKB reads a "Key:   123 kB" line of a /proc file, in bytes.
func procKB(fsys fs.FS, name, key string) (uint64, bool) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		k, rest, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		var n uint64
		var unit string
		if _, err := fmt.Sscan(rest, &n, &unit); err != nil || unit != "kB" {
			return 0, false
		}
		return n * 1024, true
	}
	return 0, false
}

// loadAverage reads the 1, 5 and 15 minute load averages from /proc/loadavg.
func loadAverage(fsys fs.FS) ([]float64, bool) {
	b, err := fs.ReadFile(fsys, "loadavg")
	if err != nil {
		return nil, false
	}
	var l1, l5, l15 float64
	if _, err := fmt.Sscan(string(b), &l1, &l5, &l15); err != nil {
		return nil, false
	}
	return []float64{l1, l5, l15}, true
}

// Protect lets a request through only when the endpoints are public, when it
// comes straight from loopback, or when it carries the health token. Anything
// else gets 404, so the endpoints' existence is not revealed.
//
// A request that passed through a reverse proxy on the same host arrives from
// loopback too; one carrying forwarding headers is therefore not treated as
// local, so that nginx in front of QChat does not open the door to everyone.
func (h *Health) Protect(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h.cfg.Public || h.fromLoopback(r) || h.hasToken(r) {
			next.ServeHTTP(w, r)
			return
		}
		http.NotFound(w, r)
	})
}

func (h *Health) fromLoopback(r *http.Request) bool {
	for _, hdr := range []string{"X-Forwarded-For", "X-Real-Ip", "Forwarded"} {
		if r.Header.Get(hdr) != "" {
			return false
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (h *Health) hasToken(r *http.Request) bool {
	if h.cfg.Token == "" {
		return false
	}
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false
	}
	// Comparing hashes keeps the comparison constant-time whatever the
	// lengths, so the token's length does not leak either.
	got := sha256.Sum256([]byte(strings.TrimSpace(token)))
	return subtle.ConstantTimeCompare(got[:], h.tokenHash[:]) == 1
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
