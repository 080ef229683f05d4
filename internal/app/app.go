// Package app builds a QChat instance from its configuration: the store, the
// authenticator, the state shared with other instances (in memory or in Redis), the metrics,
// the resolvers and the HTTP handler. The server command and the test server
// (internal/qchattest) both start through New, so tests run the wiring that
// production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qchat/qchat/db"
	"github.com/qchat/qchat/internal/auth"
	"github.com/qchat/qchat/internal/chat"
	"github.com/qchat/qchat/internal/clientip"
	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/observability/dbhook"
	"github.com/qchat/qchat/internal/observability/metrics"
	"github.com/qchat/qchat/internal/server"
	"github.com/qchat/qchat/internal/sharedstate"
	"github.com/qchat/qchat/resolvers"
)

// Options are what the configuration does not hold.
type Options struct {
	Version string
	Started time.Time
	// Store, when set, is used instead of opening DATABASE_URL: the test
	// server brings a migrated one. Close leaves it open.
	Store *db.Store
	// BrokerBuffer is each subscriber's event buffer (0: the broker's
	// default); tests make it small.
	BrokerBuffer int
	// SessionPruneInterval is how often Start deletes expired sessions
	// (default one hour).
	SessionPruneInterval time.Duration
}

// App is a built instance. Its fields are for the caller's lifecycle
// (shutdown) and for tests; requests go through Server.
type App struct {
	Store    *db.Store
	Auth     *auth.Authenticator
	Shared   *sharedstate.State
	Metrics  *metrics.Metrics
	Chat     *chat.Service
	Resolver *resolvers.Resolver
	Server   *server.Server

	log       *slog.Logger
	prune     time.Duration
	closers   []func() error // in the order they run
	closeOnce sync.Once
	stop      context.CancelFunc
	running   sync.WaitGroup
}

// OpenStore opens DATABASE_URL (or SQLite in DATA_DIR) with the pool settings
// of cfg; it neither waits for the database nor migrates.
func OpenStore(ctx context.Context, cfg config.Config) (*db.Store, error) {
	return db.Open(ctx, cfg.DatabaseURL, cfg.DataDir, db.Options{
		MaxOpenConns: cfg.DBPoolMax, MaxIdleConns: cfg.DBPoolMin, MinConns: cfg.DBPoolMin,
		SSLMode: cfg.DBSSLMode, SSLRootCert: cfg.DBSSLCA,
		ConnMaxLifetime: cfg.DBConnMaxLifetime, ConnMaxIdleTime: cfg.DBConnMaxIdleTime,
	})
}

// ServerOptions are the handler's settings taken from cfg.
func ServerOptions(cfg config.Config, version string, started time.Time) (server.Options, error) {
	proxies, err := clientip.ParseTrustProxy(cfg.TrustProxy)
	if err != nil {
		return server.Options{}, fmt.Errorf("TRUST_PROXY: %w", err)
	}
	return server.Options{
		Environment: cfg.Env, Production: cfg.Production(), TrustProxy: proxies, CORSOrigins: cfg.CORSOrigins,
		Introspection: cfg.Introspection, WebApp: cfg.WebApp, HealthToken: cfg.HealthToken, HealthPublic: cfg.HealthPublic,
		WSMaxConnsPerIP: cfg.WSMaxConnsPerIP, WSWriteTimeout: cfg.WSWriteTimeout,
		DepthLimit: cfg.DepthLimit, AliasLimit: cfg.AliasLimit, ComplexityLimit: cfg.ComplexityLimit,
		Version: version, Started: started,
	}, nil
}

// New builds the instance. Without Options.Store it opens the database,
// waits up to DB_STARTUP_TIMEOUT for it to answer and migrates it. On error
// everything built so far is closed again.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (_ *App, err error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.SessionPruneInterval <= 0 {
		opts.SessionPruneInterval = time.Hour
	}
	a := &App{log: log, prune: opts.SessionPruneInterval, stop: func() {}}
	// Closed in reverse order of building, so collect and reverse at the end.
	var closers []func() error
	defer func() {
		for i, j := 0, len(closers)-1; i < j; i, j = i+1, j-1 {
			closers[i], closers[j] = closers[j], closers[i]
		}
		a.closers = closers
		if err != nil {
			_ = a.Close()
		}
	}()

	a.Store = opts.Store
	if a.Store == nil {
		if a.Store, err = OpenStore(ctx, cfg); err != nil {
			return nil, err
		}
		closers = append(closers, a.Store.Close)
		a.Store.AddQueryHook(dbhook.New(log, cfg.DBSlowQuery))
		err = a.Store.WaitReachable(ctx, cfg.DBStartupTimeout, func(err error, next time.Duration) {
			log.Warn("database not reachable yet, retrying", "in", next.String(), "err", err)
		})
		if err != nil {
			return nil, err
		}
		if err := a.Store.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	a.Metrics = metrics.New(prometheus.NewRegistry())
	if err := a.Metrics.RegisterDBStats(a.Store.Stats); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	a.Auth = auth.New(a.Store, auth.Config{BcryptCost: cfg.BcryptCost, SessionTTL: cfg.SessionTTL})
	closers = append(closers, func() error { a.Auth.Close(); return nil })
	// Broker, presence and limits: in memory, or shared through REDIS_URL.
	bk, err := sharedstate.Open(ctx, cfg.RedisURL, cfg.RedisPrefix, log,
		sharedstate.WithPresenceTTL(cfg.PresenceTTL), sharedstate.WithBrokerBuffer(opts.BrokerBuffer))
	if err != nil {
		return nil, err
	}
	a.Shared = bk
	closers = append(closers, bk.Close)
	if err := a.Metrics.RegisterBrokerStats(bk.BrokerStats); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	a.Chat = chat.New(chat.Deps{Store: a.Store, Sessions: a.Auth, Broker: bk.Broker, Presence: bk.Presence, Log: log, Metrics: a.Metrics})
	closers = append(closers, func() error { a.Chat.Close(); return nil })
	a.Resolver = resolvers.New(resolvers.Deps{
		Chat: a.Chat, Auth: a.Auth, Log: log, Observer: a.Metrics,
		AuthLimiter:      bk.NewLimiter("auth", cfg.AuthRateLimitMax, cfg.AuthRateLimitWindow),
		AuthIPLimiter:    bk.NewLimiter("authip", cfg.AuthIPRateLimitMax, cfg.AuthIPRateLimitWindow),
		RegisterLimiter:  bk.NewLimiter("register", cfg.RegisterFailMax, cfg.RegisterFailWindow),
		WSInitLimiter:    bk.NewLimiter("wsinit", cfg.WSInitPerMinute, time.Minute),
		MaxSubscriptions: cfg.WSMaxSubsPerConn,
	})
	sopts, err := ServerOptions(cfg, opts.Version, opts.Started)
	if err != nil {
		return nil, err
	}
	a.Server, err = server.New(server.Deps{
		Options: sopts, Store: a.Store, Auth: a.Auth, Chat: a.Chat, Resolver: a.Resolver, Log: log, Metrics: a.Metrics,
		APILimiter:   bk.NewLimiter("api", cfg.RateLimitMax, cfg.RateLimitWindow),
		UserLimiter:  bk.NewBucket("user", cfg.UserRateLimitRate, cfg.UserRateLimitBurst),
		BrokerHealth: bk.BrokerHealth,
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Start runs the instance's background work until ctx ends or Close: the
// cache invalidations from other instances and the pruning of expired
// sessions.
func (a *App) Start(ctx context.Context) {
	ctx, a.stop = context.WithCancel(ctx)
	a.running.Add(2)
	go func() { defer a.running.Done(); a.Chat.RunInvalidations(ctx) }()
	go func() { defer a.running.Done(); pruneSessions(ctx, a.Store, a.log, a.prune) }()
}

// Close stops the background work and releases what New built, the
// resolvers first and the store (when New opened it) last. The HTTP server
// and the websockets must have stopped already (Server.BeginShutdown,
// Server.WaitWebsockets).
func (a *App) Close() error {
	var errs []error
	a.closeOnce.Do(func() {
		a.stop()
		a.running.Wait()
		for _, c := range a.closers {
			if err := c(); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
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
