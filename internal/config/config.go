// Package config loads QChat's configuration from the environment into one
// typed struct with defaults, and validates it before anything starts.
package config

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

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

	Introspection   bool          // GRAPHQL_INTROSPECTION (default: on outside production)
	WebApp          bool          // WEB_APP: serve the web app at / (default on; off for an API-only deployment)
	CORSOrigins     []string      // CORS_ORIGINS: comma-separated origins
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT
	TrustProxy      string        // TRUST_PROXY: IPs, CIDRs, loopback, private

	RateLimitMax          int           // RATE_LIMIT_MAX requests without a valid session per client IP and window; 0 disables
	RateLimitWindow       time.Duration // RATE_LIMIT_WINDOW
	UserRateLimitRate     float64       // USER_RATE_LIMIT_RATE requests per second a signed-in user sustains; 0 disables
	UserRateLimitBurst    int           // USER_RATE_LIMIT_BURST requests a signed-in user may make at once
	AuthRateLimitMax      int           // AUTH_RATE_LIMIT_MAX failed logins per client IP and username and window; 0 disables
	AuthRateLimitWindow   time.Duration // AUTH_RATE_LIMIT_WINDOW
	AuthIPRateLimitMax    int           // AUTH_IP_RATE_LIMIT_MAX failed logins (any username) per client IP and window; 0 disables
	AuthIPRateLimitWindow time.Duration // AUTH_IP_RATE_LIMIT_WINDOW
	RegisterFailMax       int           // REGISTER_RATE_LIMIT_MAX failed registrations per client IP and window; 0 disables
	RegisterFailWindow    time.Duration // REGISTER_RATE_LIMIT_WINDOW

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

// Error names the variable that is wrong, what was wrong with it and what it
// accepts, on one line. Got is the offending value as it may be shown: secrets
// (URLs with passwords, tokens) are masked or left out.
type Error struct{ Var, Got, Want string }

func (e *Error) Error() string {
	if e.Got == "" {
		return e.Var + ": want " + e.Want
	}
	return e.Var + "=" + strconv.Quote(e.Got) + ": want " + e.Want
}

// Errors is every invalid setting found at once, so that an operator fixes
// them in one pass rather than one per start. Error prints one line each;
// errors.As finds each *Error inside.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each *Error to errors.Is and errors.As.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// Defaults of the rate limits, exported for the tests that prove a real
// client's traffic fits in them.
const (
	DefaultRateLimitMax       = 100
	DefaultRateLimitWindow    = 15 * time.Minute
	DefaultUserRateLimitRate  = 30.0
	DefaultUserRateLimitBurst = 600
	DefaultAuthRateLimitMax   = 5
	DefaultAuthIPRateLimitMax = 50
	DefaultRegisterFailMax    = 50
	DefaultAuthWindow         = 15 * time.Minute
)

// Load reads the configuration through getenv and validates every setting
// before anything is opened. All invalid settings are reported together, as
// Errors (one *Error per variable).
func Load(getenv func(string) string) (Config, error) {
	l := loader{getenv: getenv}
	c := Config{
		Env:             l.oneOf("APP_ENV", "development", "development", "production", "test"),
		Host:            l.str("HOST", ""),
		Port:            l.intRange("PORT", 8080, 0, 65535),
		DataDir:         l.str("DATA_DIR", "./data"),
		DatabaseURL:     l.str("DATABASE_URL", ""),
		LogLevel:        l.oneOf("LOG_LEVEL", "info", "error", "warn", "info", "debug"),
		BcryptCost:      l.intRange("BCRYPT_COST", 10, 4, 31),
		SessionTTL:      l.duration("SESSION_TTL", 7*24*time.Hour),
		DBPoolMax:       l.intRange("DB_POOL_MAX", 20, 1, 1000),
		DBPoolMin:       l.intRange("DB_POOL_MIN", 2, 0, 1000),
		CORSOrigins:     l.list("CORS_ORIGINS"),
		ShutdownTimeout: l.duration("SHUTDOWN_TIMEOUT", 30*time.Second),
		TrustProxy:      l.str("TRUST_PROXY", ""),

		DBConnMaxLifetime: l.duration("DB_CONN_MAX_LIFETIME", time.Hour),
		DBConnMaxIdleTime: l.duration("DB_CONN_MAX_IDLE_TIME", 10*time.Minute),
		DBSlowQuery:       time.Duration(l.intRange("DB_SLOW_QUERY_MS", 200, 0, 3_600_000)) * time.Millisecond,
		DBStartupTimeout:  l.duration("DB_STARTUP_TIMEOUT", 30*time.Second),
		DBSSLMode:         l.oneOf("DB_SSL_MODE", "", "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full"),
		DBSSLCA:           l.str("DB_SSL_CA", ""),

		RateLimitMax:          l.intRange("RATE_LIMIT_MAX", DefaultRateLimitMax, 0, 100_000_000),
		RateLimitWindow:       l.duration("RATE_LIMIT_WINDOW", DefaultRateLimitWindow),
		UserRateLimitRate:     l.floatRange("USER_RATE_LIMIT_RATE", DefaultUserRateLimitRate, 0, 1_000_000),
		UserRateLimitBurst:    l.intRange("USER_RATE_LIMIT_BURST", DefaultUserRateLimitBurst, 1, 100_000_000),
		AuthRateLimitMax:      l.intRange("AUTH_RATE_LIMIT_MAX", DefaultAuthRateLimitMax, 0, 100_000_000),
		AuthRateLimitWindow:   l.duration("AUTH_RATE_LIMIT_WINDOW", DefaultAuthWindow),
		AuthIPRateLimitMax:    l.intRange("AUTH_IP_RATE_LIMIT_MAX", DefaultAuthIPRateLimitMax, 0, 100_000_000),
		AuthIPRateLimitWindow: l.duration("AUTH_IP_RATE_LIMIT_WINDOW", DefaultAuthWindow),
		RegisterFailMax:       l.intRange("REGISTER_RATE_LIMIT_MAX", DefaultRegisterFailMax, 0, 100_000_000),
		RegisterFailWindow:    l.duration("REGISTER_RATE_LIMIT_WINDOW", DefaultAuthWindow),

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
	c.WebApp = l.boolean("WEB_APP", true)
	if _, err := clientip.ParseTrustProxy(c.TrustProxy); err != nil {
		l.fail("TRUST_PROXY", c.TrustProxy, "comma-separated IPs, CIDRs or loopback, private, linklocal ("+err.Error()+")")
	}
	if c.DBPoolMin > c.DBPoolMax {
		l.fail("DB_POOL_MIN", strconv.Itoa(c.DBPoolMin), fmt.Sprintf("at most DB_POOL_MAX (%d)", c.DBPoolMax))
	}
	if _, port, err := net.SplitHostPort(c.DebugAddr); c.DebugAddr != "" && (err != nil || port == "") {
		l.fail("DEBUG_ADDR", c.DebugAddr, "host:port, e.g. 127.0.0.1:6060")
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			// ParseURL's error may quote the URL, password included.
			l.fail("REDIS_URL", MaskURL(c.RedisURL), "redis://[user:password@]host:port[/db], rediss://... or unix:///path/redis.sock")
		}
	}
	if c.PresenceTTL < time.Second {
		l.fail("PRESENCE_TTL", c.PresenceTTL.String(), "a duration of at least 1s")
	}
	if c.DatabaseURL != "" {
		if want := checkDatabaseURL(c.DatabaseURL); want != "" {
			got := MaskURL(c.DatabaseURL)
			if strings.HasPrefix(c.DatabaseURL, "sqlite:") || strings.HasPrefix(c.DatabaseURL, "file:") {
				got = c.DatabaseURL // a path, no credentials
			}
			l.fail("DATABASE_URL", got, want)
		}
	}
	if c.DBSSLCA != "" {
		if _, err := os.Stat(c.DBSSLCA); err != nil {
			l.fail("DB_SSL_CA", c.DBSSLCA, "a readable CA certificate file ("+err.Error()+")")
		}
	}
	if len(l.errs) > 0 {
		return Config{}, l.errs
	}
	return c, nil
}

// databaseForms names every DATABASE_URL the server accepts.
const databaseForms = "postgres://user:pass@host:5432/db (or postgresql://...) for PostgreSQL, " +
	"sqlite:/path/qchat.db for a SQLite file, or nothing for SQLite in DATA_DIR"

// checkDatabaseURL returns what is wrong with a non-empty DATABASE_URL, or "".
// It checks the forms db.Open accepts, so that a mistake stops the server
// before it opens its port rather than after.
func checkDatabaseURL(u string) string {
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		pu, err := url.Parse(u)
		if err != nil || pu.Host == "" {
			return "a valid URL with a host: " + databaseForms
		}
		return ""
	case strings.HasPrefix(u, "sqlite:"), strings.HasPrefix(u, "file:"):
		path := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(u, "sqlite:"), "file:"), "//")
		if path == "" {
			return "a file path after sqlite:, e.g. sqlite:./data/qchat.db"
		}
		return ""
	default:
		return databaseForms
	}
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
	return fmt.Sprintf("env=%s port=%d data_dir=%s database=%s log_level=%s log_dir=%q trust_proxy=%q cors=%v rate_limit=%d/%s user_rate_limit=%g/s,burst=%d auth_rate_limit=%d/%s auth_ip_rate_limit=%d/%s register_rate_limit=%d/%s health_token=%q health_public=%v redis=%s redis_prefix=%q presence_ttl=%s",
		c.Env, c.Port, c.DataDir, MaskURL(c.DatabaseURL), c.LogLevel, c.LogDir, c.TrustProxy, c.CORSOrigins,
		c.RateLimitMax, c.RateLimitWindow, c.UserRateLimitRate, c.UserRateLimitBurst, c.AuthRateLimitMax, c.AuthRateLimitWindow,
		c.AuthIPRateLimitMax, c.AuthIPRateLimitWindow, c.RegisterFailMax, c.RegisterFailWindow,
		token, c.HealthPublic, redis, c.RedisPrefix, c.PresenceTTL)
}

// Limits describes the effective rate limits in words, one per line, for the
// start-up banner: an operator (or a newcomer) sees what a client may do
// without reading the configuration table.
func (c Config) Limits() []string {
	per := func(n int, what string, w time.Duration) string {
		if n <= 0 || w <= 0 {
			return what + ": off"
		}
		return fmt.Sprintf("%s: %d per %s", what, n, shortDuration(w))
	}
	user := "signed-in requests per user: off"
	if c.UserRateLimitRate > 0 {
		user = fmt.Sprintf("signed-in requests per user: %g/s sustained, bursts of %d (USER_RATE_LIMIT_RATE, USER_RATE_LIMIT_BURST)", c.UserRateLimitRate, c.UserRateLimitBurst)
	}
	return []string{
		per(c.RateLimitMax, "requests without a session per IP", c.RateLimitWindow) + " (RATE_LIMIT_MAX, RATE_LIMIT_WINDOW)",
		user,
		per(c.AuthRateLimitMax, "failed logins per IP and username", c.AuthRateLimitWindow) + " (AUTH_RATE_LIMIT_MAX, AUTH_RATE_LIMIT_WINDOW)",
		per(c.AuthIPRateLimitMax, "failed logins per IP", c.AuthIPRateLimitWindow) + " (AUTH_IP_RATE_LIMIT_MAX, AUTH_IP_RATE_LIMIT_WINDOW)",
		per(c.RegisterFailMax, "failed registrations per IP", c.RegisterFailWindow) + " (REGISTER_RATE_LIMIT_MAX, REGISTER_RATE_LIMIT_WINDOW)",
		per(c.WSInitPerMinute, "websocket connection_init per IP", time.Minute) + " (WS_INIT_RATE_LIMIT)",
	}
}

// shortDuration prints 15m rather than 15m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
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
	errs   Errors
}

// fail records that name's value got is invalid; want says what is accepted.
func (l *loader) fail(name, got, want string) {
	l.errs = append(l.errs, &Error{Var: name, Got: got, Want: want})
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
	l.fail(name, v, "one of "+strings.Join(names, ", "))
	return def
}

func (l *loader) intRange(name string, def, lo, hi int) int {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		l.fail(name, s, fmt.Sprintf("a whole number from %d to %d", lo, hi))
		return def
	}
	return n
}

func (l *loader) floatRange(name string, def, lo, hi float64) float64 {
	s := l.str(name, "")
	if s == "" {
		return def
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < lo || f > hi || f != f {
		l.fail(name, s, fmt.Sprintf("a number from %g to %g (decimals allowed)", lo, hi))
		return def
	}
	return f
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
		l.fail(name, s, "a duration such as 30s, 15m or 168h (or a whole number of milliseconds)")
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
		l.fail(name, s, "true or false")
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
