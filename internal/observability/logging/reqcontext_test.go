package logging

import (
	"bytes"
	"context"
	"log/slog"
	"testing"

	"github.com/qchat/qchat/internal/reqctx"
)

func TestRequestContextAttributes(t *testing.T) {
	request := reqctx.WithUserID(reqctx.WithClient(reqctx.WithRequestID(context.Background(), "req-1"), "203.0.113.7", "https"), "user-1")
	all := map[string]any{"request_id": "req-1", "client_ip": "203.0.113.7", "user_id": "user-1"}
	tests := []struct {
		name string
		ctx  context.Context
		args []any
		want map[string]any // the three keys' values; absent keys must be absent
	}{
		{"request context carries all three", request, nil, all},
		{"no request context carries none", context.Background(), nil, map[string]any{}},
		{"anonymous request has no user", reqctx.WithClient(reqctx.WithRequestID(context.Background(), "req-2"), "198.51.100.1", "http"), nil,
			map[string]any{"request_id": "req-2", "client_ip": "198.51.100.1"}},
		{"a value passed by hand is kept, not doubled", request, []any{"user_id", "other"},
			map[string]any{"request_id": "req-1", "client_ip": "203.0.113.7", "user_id": "other"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(RequestContext(slog.NewJSONHandler(&buf, nil)))
			log.InfoContext(tt.ctx, "hello", tt.args...)
			lines := decodeLines(t, buf.Bytes())
			if len(lines) != 1 {
				t.Fatalf("lines = %v", lines)
			}
			for _, k := range []string{"request_id", "client_ip", "user_id"} {
				got, ok := lines[0][k]
				want, wantOK := tt.want[k]
				if ok != wantOK || got != want {
					t.Errorf("%s = %v (present %v), want %v (present %v)", k, got, ok, want, wantOK)
				}
			}
			if bytes.Count(buf.Bytes(), []byte(`"user_id"`)) > 1 {
				t.Errorf("user_id twice: %s", buf.Bytes())
			}
		})
	}
}

// The logger New builds wraps its handlers, so every record of a request
// gets the attributes without the call site passing them.
func TestNewAddsRequestContext(t *testing.T) {
	var buf bytes.Buffer
	log, c, err := New(Config{Production: true, Level: "info", Stdout: &buf})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := reqctx.WithUserID(reqctx.WithClient(reqctx.WithRequestID(context.Background(), "req-1"), "203.0.113.7", "https"), "user-1")
	log.With("component", "x").InfoContext(ctx, "hello")
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 1 || lines[0]["request_id"] != "req-1" || lines[0]["client_ip"] != "203.0.113.7" || lines[0]["user_id"] != "user-1" {
		t.Fatalf("lines = %v", lines)
	}
}
