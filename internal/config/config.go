// Package config loads QChat's configuration from the environment into one
// typed struct with defaults, and validates it before anything starts.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Config is every setting of the server.
type Config struct {
	Env         string // APP_ENV: development or production
	Port        int    // PORT
	DataDir     string // DATA_DIR
	DatabaseURL string // DATABASE_URL (secret: masked when printed)
	LogLevel    string // LOG_LEVEL: error, warn, info, debug

	BcryptCost int           // BCRYPT_COST
	SessionTTL time.Duration // SESSION_TTL

	DBPoolMax int // DB_POOL_MAX
	DBPoolMin int // DB_POOL_MIN

	Introspection  bool          // GRAPHQL_INTROSPECTION (default: on outside production)
	CORSOrigins    []string      // CORS_ORIGINS: comma-separated origins
	ShutdownTimout time.Duration // SHUTDOWN_TIMEOUT
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
	}
	c.Introspection = l.boolean("GRAPHQL_INTROSPECTION", c.Env != "production")
	if l.err == nil && c.DBPoolMin > c.DBPoolMax {
		l.err = &Error{"DB_POOL_MIN", fmt.Sprintf("must not exceed DB_POOL_MAX (%d)", c.DBPoolMax)}
	}
	if l.err != nil {
		return Config{}, l.err
	}
	return c, nil
}

// String prints the configuration with secrets masked.
func (c Config) String() string {
	return fmt.Sprintf("env=%s port=%d data_dir=%s database=%s log_level=%s", c.Env, c.Port, c.DataDir, MaskURL(c.DatabaseURL), c.LogLevel)
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
	l.fail(name, "one of "+strings.Join(allowed, ", "))
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
