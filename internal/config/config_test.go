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
		c.DBPoolMin != 2 || c.DBPoolMax != 20 || c.ShutdownTimout != 30*time.Second || !c.Introspection || c.Production() {
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
		"APP_ENV":                  "staging",
		"PORT":                     "70000",
		"LOG_LEVEL":                "loud",
		"BCRYPT_COST":              "3",
		"SESSION_TTL":              "forever",
		"DB_POOL_MAX":              "0",
		"DB_SLOW_QUERY_MS":         "-1",
		"DB_SSL_MODE":              "sometimes",
		"GRAPHQL_INTROSPECTION":    "maybe",
		"TRUST_PROXY":              "*",
		"RATE_LIMIT_MAX":           "many",
		"RATE_LIMIT_WINDOW":        "soon",
		"AUTH_RATE_LIMIT_MAX":      "-5",
		"GRAPHQL_COMPLEXITY_LIMIT": "x",
		"WS_MAX_SUBSCRIPTIONS":     "-1",
		"HEALTH_PUBLIC":            "perhaps",
		"SHUTDOWN_TIMEOUT":         "later",
		"DEBUG_ADDR":               "6060",
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
