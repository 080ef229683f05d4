package config

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 8080 || c.DataDir != "./data" || c.BcryptCost != 10 || c.SessionTTL != 7*24*time.Hour ||
		c.RateLimitMax != 100 || c.RateLimitWindow != 15*time.Minute || c.AuthRateLimitMax != 5 ||
		c.UserRateLimitRate != DefaultUserRateLimitRate || c.UserRateLimitBurst != DefaultUserRateLimitBurst || c.AuthIPRateLimitMax != 50 ||
		c.DBPoolMin != 2 || c.DBPoolMax != 20 || c.ShutdownTimeout != 30*time.Second || !c.Introspection || c.Production() {
		t.Fatalf("defaults: %+v", c)
	}
	p, _ := Load(func(k string) string {
		if k == "APP_ENV" {
			return "production"
		}
		return ""
	})
	if p.Introspection || p.HealthPublic {
		t.Fatal("production exposes introspection or health details by default")
	}
}

// Every invalid value names its variable and what it expects, on one line.
func TestInvalidValues(t *testing.T) {
	cases := map[string]string{
		"APP_ENV":                   "staging",
		"PORT":                      "70000",
		"LOG_LEVEL":                 "loud",
		"BCRYPT_COST":               "3",
		"SESSION_TTL":               "forever",
		"DB_POOL_MAX":               "0",
		"DB_SLOW_QUERY_MS":          "-1",
		"DB_SSL_MODE":               "sometimes",
		"GRAPHQL_INTROSPECTION":     "maybe",
		"TRUST_PROXY":               "*",
		"RATE_LIMIT_MAX":            "many",
		"RATE_LIMIT_WINDOW":         "soon",
		"AUTH_RATE_LIMIT_MAX":       "-5",
		"GRAPHQL_COMPLEXITY_LIMIT":  "x",
		"WS_MAX_SUBSCRIPTIONS":      "-1",
		"HEALTH_PUBLIC":             "perhaps",
		"SHUTDOWN_TIMEOUT":          "later",
		"DEBUG_ADDR":                "6060",
		"DATABASE_URL":              "mysql://x",
		"REDIS_URL":                 "http://cache",
		"DB_SSL_CA":                 "/nonexistent/ca.pem",
		"USER_RATE_LIMIT_RATE":      "-1",
		"USER_RATE_LIMIT_BURST":     "0",
		"AUTH_IP_RATE_LIMIT_MAX":    "lots",
		"REGISTER_RATE_LIMIT_MAX":   "1.5",
		"AUTH_IP_RATE_LIMIT_WINDOW": "tomorrow",
	}
	for name, value := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Load(func(k string) string {
				if k == name {
					return value
				}
				return ""
			})
			var cerr *Error
			if !errors.As(err, &cerr) || cerr.Var != name {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
			if strings.Contains(err.Error(), "\n") || cerr.Want == "" {
				t.Fatalf("message %q", err.Error())
			}
		})
	}
	_, err := Load(func(k string) string {
		return map[string]string{"DB_POOL_MIN": "30", "DB_POOL_MAX": "10"}[k]
	})
	if err == nil || !strings.HasPrefix(err.Error(), "DB_POOL_MIN") {
		t.Fatalf("pool min > max: %v", err)
	}
	// Several bad settings: each is reported, in one pass.
	_, err = Load(func(k string) string {
		return map[string]string{"PORT": "x", "LOG_LEVEL": "loud", "DATABASE_URL": "mysql://x"}[k]
	})
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 || strings.Count(err.Error(), "\n") != 2 {
		t.Fatalf("three bad settings: %v", err)
	}
}

func TestLimitsDescribed(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(c.Limits(), "\n")
	for _, want := range []string{"100 per 15m (RATE_LIMIT_MAX", "30/s sustained, bursts of 600", "5 per 15m (AUTH_RATE_LIMIT_MAX", "50 per 15m (AUTH_IP_RATE_LIMIT_MAX", "REGISTER_RATE_LIMIT_MAX"} {
		if !strings.Contains(all, want) {
			t.Errorf("limits lack %q:\n%s", want, all)
		}
	}
	c.UserRateLimitRate = 0
	if !strings.Contains(strings.Join(c.Limits(), "\n"), "per user: off") {
		t.Errorf("a disabled limit is not shown as off")
	}
}

func TestSecretsMasked(t *testing.T) {
	c, err := Load(func(k string) string {
		return map[string]string{"DATABASE_URL": "postgres://qchat:s3cret@db:5432/qchat", "HEALTH_TOKEN": "tok3n"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	s := c.String()
	if strings.Contains(s, "s3cret") || strings.Contains(s, "tok3n") || !strings.Contains(s, "qchat:***@db:5432") {
		t.Fatalf("String() = %s", s)
	}
}
