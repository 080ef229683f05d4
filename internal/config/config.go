// Package config loads QChat's configuration from the environment into one
// typed struct with defaults, and validates it before anything starts.
package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/qchat/qchat/internal/clientip"
)

// Config is every setting of the server.
type Config struct {
	Env         string // APP_ENV: development or production
	Host        string // HOST: address to listen on (empty: every interface)
	Port        int    // PORT
	DataDir     string // DATA_DIR
	DatabaseURL string // DATABASE_URL (secret: masked when printed)
	LogLevel    string // LOG_LEVEL: error, warn, info, debug

	BcryptCost int           // BCRYPT_COST
	SessionTTL time.Duration // SESSION_TTL

	DBPoolMax int // DB_POOL_MAX
	DBPoolMin int // DB_POOL_MIN

	DBConnMaxLifetime time.Duration // DB_CONN_MAX_LIFETIME
	DBConnMaxIdleTime time.Duration // DB_CONN_MAX_IDLE_TIME
	DBSlowQuery       time.Duration // DB_SLOW_QUERY_MS
	DBStartupTimeout  time.Duration // DB_STARTUP_TIMEOUT: how long start-up waits for the database
	DBSSLMode         string        // DB_SSL_MODE: disable, require, verify-ca, verify-full
	DBSSLCA           string        // DB_SSL_CA: CA certificate file for verify-full

	Introspection  bool          // GRAPHQL_INTROSPECTION (default: on outside production)
	CORSOrigins    []string      // CORS_ORIGINS: comma-separated origins
	ShutdownTimout time.Duration // SHUTDOWN_TIMEOUT
	TrustProxy     string        // TRUST_PROXY: IPs, CIDRs, loopback, private

	RateLimitMax        int           // RATE_LIMIT_MAX requests per client IP and window; 0 disables
	RateLimitWindow     time.Duration // RATE_LIMIT_WINDOW
	AuthRateLimitMax    int           // AUTH_RATE_LIMIT_MAX failed logins/registrations per IP and window; 0 disables
	AuthRateLimitWindow time.Duration // AUTH_RATE_LIMIT_WINDOW

	ComplexityLimit int // GRAPHQL_COMPLEXITY_LIMIT
	DepthLimit      int // GRAPHQL_DEPTH_LIMIT
	AliasLimit      int // GRAPHQL_ALIAS_LIMIT

	WSMaxConnsPerIP  int // WS_MAX_CONNECTIONS_PER_IP
	WSMaxSubsPerConn int // WS_MAX_SUBSCRIPTIONS
	WSInitPerMinute  int // WS_INIT_RATE_LIMIT: connection_init attempts per IP and minute
	// WS_WRITE_TIMEOUT: a websocket whose client does not take a frame within
	// it is closed (a client that stops reading holds buffers otherwise).
	WSWriteTimeout time.Duration

	LogDir       string // LOG_DIR: also write rotated log files here
	HealthToken  string // HEALTH_TOKEN: bearer token for /health/detailed and /metrics (secret)
	HealthPublic bool   // HEALTH_PUBLIC: expose them to anyone (default: outside production)

	RedisURL    string        // REDIS_URL: share broker, presence and limits between instances (secret: masked when printed)
	RedisPrefix string        // REDIS_PREFIX: starts every Redis key and channel
	PresenceTTL time.Duration // PRESENCE_TTL: how long the users of a dead instance stay online

	DebugAddr string // DEBUG_ADDR: host:port for Go's pprof profiles (empty: off)
}

// Production says whether APP_ENV is production.
func (c Config) Production() bool { return c.Env == "production" }

// Error names the variable that is wrong and what it expects.
type Error struct{ Var, Want string }

func (e *Error) Error() string { return e.Var + ": " + e.Want }

// Load reads the configuration through getenv.
func Load(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		Env:            l.oneOf("APP_ENV", "development", "development", "production", "test"),
		Host:           l.str("HOST", ""),
		Port:           l.intRange("PORT", 8080, 0, 65535),
		DataDir:        l.str("DATA_DIR", "./data"),
		DatabaseURL:    l.str("DATABASE_URL", ""),
		LogLevel:       l.oneOf("LOG_LEVEL", "info", "error", "warn", "info", "debug"),
		BcryptCost:     l.intRange("BCRYPT_COST", 10, 4, 31),
		SessionTTL:     l.duration("SESSION_TTL", 7*24*time.Hour),
		DBPoolMax:      l.intRange("DB_POOL_MAX", 20, 1, 1000),
		DBPoolMin:      l.intRange("DB_POOL_MIN", 2, 0, 1000),
		CORSOrigins:    l.list("CORS_ORIGINS"),
		ShutdownTimout: l.duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		TrustProxy:     l.str("TRUST_PROXY", ""),

		DBConnMaxLifetime: l.duration("DB_CONN_MAX_LIFETIME", time.Hour),
		DBConnMaxIdleTime: l.duration("DB_CONN_MAX_IDLE_TIME", 10*time.Minute),
		DBSlowQuery:       time.Duration(l.intRange("DB_SLOW_QUERY_MS", 200, 0, 3_600_000)) * time.Millisecond,
		DBStartupTimeout:  l.duration("DB_STARTUP_TIMEOUT", 30*time.Second),
		DBSSLMode:         l.oneOf("DB_SSL_MODE", "", "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
		DBSSLCA:           l.str("DB_SSL_CA", ""),

		RateLimitMax:        l.intRange("RATE_LIMIT_MAX", 100, 0, 100_000_000),
		RateLimitWindow:     l.duration("RATE_LIMIT_WINDOW", 15*time.Minute),
		AuthRateLimitMax:    l.intRange("AUTH_RATE_LIMIT_MAX", 5, 0, 100_000_000),
		AuthRateLimitWindow: l.duration("AUTH_RATE_LIMIT_WINDOW", 15*time.Minute),

		ComplexityLimit: l.intRange("GRAPHQL_COMPLEXITY_LIMIT", 2000, 0, 10_000_000),
		DepthLimit:      l.intRange("GRAPHQL_DEPTH_LIMIT", 12, 0, 1000),
		AliasLimit:      l.intRange("GRAPHQL_ALIAS_LIMIT", 30, 0, 100_000),

		WSMaxConnsPerIP:  l.intRange("WS_MAX_CONNECTIONS_PER_IP", 50, 0, 1_000_000),
		WSMaxSubsPerConn: l.intRange("WS_MAX_SUBSCRIPTIONS", 50, 0, 100_000),
		WSInitPerMinute:  l.intRange("WS_INIT_RATE_LIMIT", 60, 0, 1_000_000),
		WSWriteTimeout:   l.duration("WS_WRITE_TIMEOUT", 10*time.Second),

		LogDir:      l.str("LOG_DIR", ""),
		HealthToken: l.str("HEALTH_TOKEN", ""),

		RedisURL:    l.str("REDIS_URL", ""),
		RedisPrefix: l.str("REDIS_PREFIX", "qchat:"),
		PresenceTTL: l.duration("PRESENCE_TTL", 30*time.Second),

		DebugAddr: l.str("DEBUG_ADDR", ""),
	}
	c.HealthPublic = l.boolean("HEALTH_PUBLIC", c.Env != "production")
	c.Introspection = l.boolean("GRAPHQL_INTROSPECTION", c.Env != "production")
	if _, err := clientip.ParseTrustProxy(c.TrustProxy); err != nil && l.err == nil {
		l.err = &Error{"TRUST_PROXY", "comma-separated IPs, CIDRs or loopback, private, linklocal (" + err.Error() + ")"}
	}
	if l.err == nil && c.DBPoolMin > c.DBPoolMax {
		l.err = &Error{"DB_POOL_MIN", fmt.Sprintf("must not exceed DB_POOL_MAX (%d)", c.DBPoolMax)}
	}
	if _, port, err := net.SplitHostPort(c.DebugAddr); l.err == nil && c.DebugAddr != "" && (err != nil || port == "") {
		l.err = &Error{"DEBUG_ADDR", "host:port, e.g. 127.0.0.1:6060"}
	}
	if l.err == nil && c.RedisURL != "" && !strings.HasPrefix(c.RedisURL, "redis://") && !strings.HasPrefix(c.RedisURL, "rediss://") && !strings.HasPrefix(c.RedisURL, "unix://") {
		l.err = &Error{"REDIS_URL", "redis://[user:password@]host:port[/db], rediss://... or unix://..."}
	}
	if l.err == nil && c.PresenceTTL < time.Second {
		l.err = &Error{"PRESENCE_TTL", "a duration of at least 1s"}
	}
	if l.err != nil {
		return Config{}, l.err
	}
	return c, nil
}

// String prints the configuration with secrets masked.
func (c Config) String() string {
	token := ""
	if c.HealthToken != "" {
		token = "***"
	}
	redis := "none"
	if c.RedisURL != "" {
		redis = MaskURL(c.RedisURL)
	}
	return fmt.Sprintf("env=%s port=%d data_dir=%s database=%s log_level=%s log_dir=%q trust_proxy=%q cors=%v rate_limit=%d/%s auth_rate_limit=%d/%s health_token=%q health_public=%v redis=%s redis_prefix=%q presence_ttl=%s",
		c.Env, c.Port, c.DataDir, MaskURL(c.DatabaseURL), c.LogLevel, c.LogDir, c.TrustProxy, c.CORSOrigins,
		c.RateLimitMax, c.RateLimitWindow, c.AuthRateLimitMax, c.AuthRateLimitWindow, token, c.HealthPublic, redis, c.RedisPrefix, c.PresenceTTL)
}

// MaskURL hides the password of a database URL.
func MaskURL(u string) string {
	if u == "" {
		return "sqlite"
	}
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return "***"
	}
	creds, host, ok := strings.Cut(rest, "@")
	if !ok {
		return u
	}
	user, _, _ := strings.Cut(creds, ":")
	return scheme + "://" + user + ":***@" + host
}

type loader struct {
	getenv func(string) string
	err    error
}

func (l *loader) fail(name, want string) {
	if l.err == nil {
		l.err = &Error{name, want}
	}
}

func (l *loader) str(name, def string) string {
	if v := strings.TrimSpace(l.getenv(name)); v != "" {
		return v
	}
	return def
}

func (l *loader) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(l.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	var names []string
	for _, a := range allowed {
		if a != "" {
			names = append(names, a)
		}
	}
	l.fail(name, "one of "+strings.Join(names, ", "))
	return def
}

func (l *loader) intRange(name string, def, lo, hi int) int {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		l.fail(name, fmt.Sprintf("a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

func (l *loader) duration(name string, def time.Duration) time.Duration {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		// Plain numbers are milliseconds, as in the Node product.
		if n, err2 := strconv.Atoi(s); err2 == nil && n >= 0 {
			return time.Duration(n) * time.Millisecond
		}
		l.fail(name, "a duration such as 30s, 15m or 168h (or milliseconds)")
		return def
	}
	return d
}

func (l *loader) boolean(name string, def bool) bool {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		l.fail(name, "true or false")
		return def
	}
	return b
}

func (l *loader) list(name string) []string {
	var out []string
	for _, p := range strings.Split(l.str(name, ""), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
