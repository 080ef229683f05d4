package logging

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/qchat/qchat/internal/reqctx"
)

func TestRequestLog(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		handler   http.HandlerFunc
		wantLevel string
		want      map[string]any
		absent    []string
	}{
		{
			name: "graphql request with user and operation",
			path: "/graphql?token=secret",
			handler: func(w http.ResponseWriter, r *http.Request) {
				SetUser(r.Context(), "user-1")
				SetOperation(r.Context(), "SendMessage")
				_, _ = w.Write([]byte("{}"))
			},
			wantLevel: "INFO",
			want: map[string]any{
				"method": "POST", "path": "/graphql", "status": float64(200), "operation": "SendMessage",
				"user_id": "user-1", "client_ip": "203.0.113.9", "user_agent": "qchat-test",
				"request_id": "req-1", "duration_ms": float64(1500), "bytes": float64(2),
			},
		},
		{
			name:      "server error",
			path:      "/graphql",
			handler:   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusBadGateway) },
			wantLevel: "ERROR",
			want:      map[string]any{"status": float64(502)},
			absent:    []string{"user_id", "operation"},
		},
		{
			name:      "client error is info",
			path:      "/graphql",
			handler:   func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNotFound) },
			wantLevel: "INFO",
			want:      map[string]any{"status": float64(404)},
		},
		{
			name:      "probe is quiet",
			path:      "/health/live",
			handler:   func(w http.ResponseWriter, r *http.Request) {},
			wantLevel: "DEBUG",
			want:      map[string]any{"status": float64(200), "path": "/health/live"},
		},
		{
			name: "websocket logs once at close",
			path: "/graphql",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusSwitchingProtocols)
				SetOperation(r.Context(), "OnMessage")
				SetOperation(r.Context(), "Typing")
			},
			wantLevel: "INFO",
			want:      map[string]any{"status": float64(101), "websocket": true, "operations": float64(2)},
			absent:    []string{"operation", "bytes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			start := time.Date(2024, 3, 10, 12, 0, 0, 0, time.UTC)
			calls := 0
			clock := func() time.Time { calls++; return start.Add(time.Duration(calls-1) * 1500 * time.Millisecond) }
			mw := RequestLog(log, func(*http.Request) string { return "203.0.113.9" }, WithClock(clock), WithQuietPaths("/health"))
			r := httptest.NewRequest(http.MethodPost, tt.path, nil)
			r.Header.Set("User-Agent", "qchat-test")
			r = r.WithContext(reqctx.WithRequestID(r.Context(), "req-1"))
			mw(tt.handler).ServeHTTP(httptest.NewRecorder(), r)

			lines := decodeLines(t, buf.Bytes())
			if len(lines) != 1 {
				t.Fatalf("lines = %d, want 1: %s", len(lines), buf.String())
			}
			line := lines[0]
			if line["level"] != tt.wantLevel {
				t.Errorf("level = %v, want %v", line["level"], tt.wantLevel)
			}
			for k, v := range tt.want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v", k, line[k], v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := line[k]; ok {
					t.Errorf("%s present: %v", k, line[k])
				}
			}
		})
	}
}

func TestSetOutsideRequestLogIsNoop(t *testing.T) {
	SetUser(context.Background(), "u")
	SetOperation(context.Background(), "op")
}

func TestOperationNameExtension(t *testing.T) {
	tests := []struct {
		name string
		op   *ast.OperationDefinition
		want string
	}{
		{"named", &ast.OperationDefinition{Name: "Rooms", Operation: ast.Query}, "Rooms"},
		{"unnamed", &ast.OperationDefinition{Operation: ast.Query}, "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ri := &requestInfo{}
			ctx := context.WithValue(context.Background(), requestInfoKey{}, ri)
			ext := OperationNameExtension().(graphql.OperationContextMutator)
			if err := ext.MutateOperationContext(ctx, &graphql.OperationContext{Operation: tt.op}); err != nil {
				t.Fatal(err)
			}
			if op, _, _ := ri.snapshot(); op != tt.want {
				t.Fatalf("operation = %q, want %q", op, tt.want)
			}
		})
	}
}
