package server_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/config"
	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/syncbuf"
)

// In production, introspection is refused as invalid (not executed into an
// internal error and an error-log line per request), and unknown fields get
// no "Did you mean" hint.
func TestIntrospectionOffInProduction(t *testing.T) {
	var logs syncbuf.Buffer
	srv := qchattest.NewServer(t, qchattest.NewSQLite(t), qchattest.Options{
		Config: func(c *config.Config) { c.Env, c.TrustProxy, c.Introspection = "production", "loopback", false },
		Log:    slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	header := withHeaders(jsonHeader, "X-Forwarded-Proto", "https")
	tests := []struct {
		name, query, want string
	}{
		{"schema", `{ __schema { types { name } } }`, "introspection is disabled"},
		{"type", `{ __type(name: "User") { name } }`, "introspection is disabled"},
		{"inside a fragment", `{ me { id } ...Q } fragment Q on Query { ... on Query { __schema { queryType { name } } } }`, "introspection is disabled"},
		{"aliased, beside a field", `{ me { id } s: __schema { queryType { name } } }`, "introspection is disabled"},
		{"no suggestion", `{ me { usernam } }`, `Cannot query field "usernam" on type "User".`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, raw := srv.Raw(t, "POST", "/graphql", header, qchattest.GraphQLBody(tt.query, nil))
			var out qchattest.Response
			if err := json.Unmarshal(raw, &out); err != nil {
				t.Fatalf("%s", raw)
			}
			if out.Code() != "GRAPHQL_VALIDATION_FAILED" || out.Errors[0].Message != tt.want {
				t.Fatalf("got %s, want GRAPHQL_VALIDATION_FAILED %q", raw, tt.want)
			}
			if len(out.Data) > 0 && string(out.Data) != "null" {
				t.Errorf("data %s", out.Data)
			}
		})
	}
	// __typename is not introspection of the schema and still answers.
	_, raw := srv.Raw(t, "POST", "/graphql", header, qchattest.GraphQLBody(`{ __typename }`, nil))
	if !strings.Contains(string(raw), `"__typename":"Query"`) {
		t.Errorf("__typename: %s", raw)
	}
	for line := range strings.Lines(logs.String()) {
		var rec struct{ Level string }
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Level == "ERROR" {
			t.Errorf("error logged: %s", line)
		}
	}
}
