// Command qchat-server runs the QChat GraphQL server.
//
//	qchat-server [serve]            start the server (default)
//	qchat-server migrate up|down|status
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/joho/godotenv"

	"github.com/qchat/qchat/internal/app"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/observability/debug"
	"github.com/qchat/qchat/internal/observability/logging"
	"github.com/qchat/qchat/internal/server"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// A .env file fills in variables the environment does not set.
	if err := godotenv.Load(); err != nil && !errors.Is(err, os.ErrNotExist) {
		fmt.Fprintln(os.Stderr, "qchat: .env:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		// One line per problem: a configuration error lists every bad setting.
		for _, line := range strings.Split(err.Error(), "\n") {
			fmt.Fprintln(os.Stderr, "qchat:", line)
		}
		os.Exit(exitCode(err))
	}
}

// exitCode is 2 for an invalid configuration (as README promises), 1 for any
// other failure.
func exitCode(err error) int {
	var cerr *config.Error
	if errors.As(err, &cerr) || errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

// run is the whole program, testable: args without the program name, the
// environment through getenv, output through stdout and stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if done, err := commandLine(args, stdout); done {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log, closeLog, err := logging.New(logging.Config{Production: cfg.Production(), Level: cfg.LogLevel, Dir: cfg.LogDir, Stdout: stderr})
	if err != nil {
		return &config.Error{Var: "LOG_DIR", Got: cfg.LogDir, Want: "a directory the server can create and write to (" + err.Error() + ")"}
	}
	defer closeLog.Close()
	cmd := "serve"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, cfg, log, stdout)
	case "migrate":
		return migrate(ctx, cfg, args, stdout)
	case "version":
		fmt.Fprintln(stdout, version)
		return nil
	default:
		return fmt.Errorf("unknown command %q (want serve, migrate up|down|status, version)", cmd)
	}
}

func migrate(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: migrate up|down|status")
	}
	store, err := app.OpenStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	m := store.Migrator()
	if err := m.Init(ctx); err != nil {
		return fmt.Errorf("init migrations: %w", err)
	}
	switch args[0] {
	case "up":
		if err := store.Migrate(ctx); err != nil {
			return err
		}
		fmt.Fprintln(stdout, "migrations applied")
	case "down":
		group, err := m.Rollback(ctx)
		if err != nil {
			return fmt.Errorf("rollback: %w", err)
		}
		fmt.Fprintf(stdout, "rolled back %s\n", group)
	case "status":
		ms, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return fmt.Errorf("migration status: %w", err)
		}
		for _, mg := range ms {
			state := "pending"
			if mg.IsApplied() {
				state = "applied"
			}
			fmt.Fprintf(stdout, "%s %s %s\n", mg.Name, mg.Comment, state)
		}
	default:
		return fmt.Errorf("unknown migrate command %q (want up, down or status)", args[0])
	}
	return nil
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	started := time.Now()
	// The configuration is valid (config.Load checked every setting); the
	// debug listener opens first so that its failure is never preceded by a
	// "listening on" that would suggest the server runs.
	if cfg.DebugAddr != "" {
		stop, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)))
	if err != nil {
		return fmt.Errorf("listen on HOST %q PORT %d: %w", cfg.Host, cfg.Port, err)
	}
	// Until the database answers and is migrated, the process is live but not
	// ready: probes see that instead of a refused connection.
	var root atomic.Pointer[http.Handler]
	starting := http.Handler(startingHandler())
	root.Store(&starting)
	hs := &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*root.Load()).ServeHTTP(w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       2 * time.Minute, // a 10 MiB upload on a slow link
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	log.Info("qchat listening", "addr", ln.Addr().String(), "config", cfg.String(), "version", version)
	closeEarly := func(err error) error {
		_ = hs.Close()
		return err
	}

	a, err := app.New(ctx, cfg, log, app.Options{Version: version, Started: started})
	if err != nil {
		return closeEarly(err)
	}
	defer a.Close()
	a.Start(ctx)
	srv := a.Server
	ready := http.Handler(srv)
	root.Store(&ready)
	log.Info("qchat ready", "database", string(a.Store.Dialect()), "startup", time.Since(started).String())
	// The banner comes once requests can be served: a person (or a script
	// reading the port from it) who acts on "listening on" never meets the
	// starting handler's 503.
	paths := "API at /graphql"
	if cfg.Introspection {
		paths = "GraphiQL at /playground, " + paths
	}
	if cfg.WebApp {
		paths = "the web app at /, " + paths
	}
	banner := fmt.Sprintf("QChat %s listening on http://%s (%s)\nrate limits:\n", version, ln.Addr(), paths)
	for _, l := range cfg.Limits() {
		banner += "  " + l + "\n"
	}
	fmt.Fprint(stdout, banner)

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return shutdown(hs, srv, a.Shared.Broker, log, cfg.ShutdownTimeout)
}

// serveDebug starts the pprof listener on DEBUG_ADDR; stop closes it. It is
// separate from the API so profiles are reachable only where the operator
// binds them, and a CPU profile's 30 s request never meets WriteTimeout.
func serveDebug(addr string, log *slog.Logger) (stop func(), err error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on DEBUG_ADDR %q: %w", addr, err)
	}
	ds := &http.Server{Handler: debug.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = ds.Serve(ln) }()
	log.Info("debug profiles listening", "addr", ln.Addr().String())
	return func() { _ = ds.Close() }, nil
}

// startingHandler answers while the database is not ready yet.
func startingHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/health/live" {
			_, _ = io.WriteString(w, `{"status":"alive"}`)
			return
		}
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `{"status":"starting","errors":[{"message":"server is starting","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}`)
	})
}

// shutdown stops in order: readiness turns 503 and websockets get 1001 at once,
// the listener stops accepting, requests in flight finish, then the broker
// closes (the store closes when serve returns). Past the timeout it gives up
// with an error, so the process exits non-zero.
func shutdown(hs *http.Server, srv *server.Server, brk broker.Broker, log *slog.Logger, timeout time.Duration) error {
	log.Info("shutting down", "timeout", timeout.String())
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	srv.BeginShutdown()
	errs := make(chan error, 2)
	go func() { errs <- hs.Shutdown(ctx) }()
	go func() { errs <- srv.WaitWebsockets(ctx) }()
	var err error
	for range 2 {
		if e := <-errs; e != nil && err == nil {
			err = e
		}
	}
	_ = brk.Close()
	if err != nil {
		_ = hs.Close()
		return fmt.Errorf("graceful shutdown did not finish within SHUTDOWN_TIMEOUT %s: %w", timeout, err)
	}
	log.Info("shutdown complete")
	return nil
}
