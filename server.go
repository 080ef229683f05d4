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
	"syscall"
	"time"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/broker"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/presence"
	"github.com/qchat/qchat/internal/server"
	"github.com/qchat/qchat/resolvers"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "qchat:", err)
		var cerr *config.Error
		if errors.As(err, &cerr) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run is the whole program, testable: args without the program name, the
// environment through getenv, output through stdout and stderr.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, stderr)
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

func newLogger(cfg config.Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Production() {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func openStore(ctx context.Context, cfg config.Config) (*db.Store, error) {
	return db.Open(ctx, cfg.DatabaseURL, cfg.DataDir, db.Options{MaxOpenConns: cfg.DBPoolMax, MaxIdleConns: cfg.DBPoolMin})
}

func migrate(ctx context.Context, cfg config.Config, args []string, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: migrate up|down|status")
	}
	store, err := openStore(ctx, cfg)
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
	store, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer store.Close()
	if err := store.Migrate(ctx); err != nil {
		return err
	}
	authn := auth.New(store, auth.Config{BcryptCost: cfg.BcryptCost, SessionTTL: cfg.SessionTTL})
	defer authn.Close()
	brk := broker.NewMemory(0)
	defer brk.Close()
	res := resolvers.New(resolvers.Deps{Store: store, Auth: authn, Broker: brk, Presence: presence.NewMemory(), Log: log})
	defer res.Close()
	handler := server.New(server.Deps{Config: cfg, Store: store, Auth: authn, Resolver: res, Log: log, Version: version, Started: time.Now()})

	go pruneSessions(ctx, store, log, time.Hour)

	ln, err := net.Listen("tcp", ":"+strconv.Itoa(cfg.Port))
	if err != nil {
		return fmt.Errorf("listen on PORT %d: %w", cfg.Port, err)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	log.Info("qchat listening", "addr", ln.Addr().String(), "config", cfg.String(), "version", version)
	fmt.Fprintf(stdout, "QChat %s listening on http://%s (GraphQL Playground at /, API at /graphql)\n", version, ln.Addr())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimout)
	defer cancel()
	_ = brk.Close() // ends every subscription so websockets can finish
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// pruneSessions deletes expired sessions periodically until ctx ends; expired
// ones are already refused, this only keeps the table small.
func pruneSessions(ctx context.Context, store *db.Store, log *slog.Logger, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if n, err := store.DeleteExpiredSessions(ctx); err != nil {
				log.Warn("prune sessions", "err", err)
			} else if n > 0 {
				log.Info("pruned expired sessions", "count", n)
			}
		}
	}
}
