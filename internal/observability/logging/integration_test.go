package logging

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/qchat/qchat/internal/qchattest/syncbuf"
	"github.com/qchat/qchat/internal/reqctx"
)

// The operation name reaches the log line through gqlgen's real POST
// transport, which is what OperationNameExtension depends on.
func TestOperationNameThroughGQLGen(t *testing.T) {
	s := gqlparser.MustLoadSchema(&ast.Source{Input: `type Query { hello: String }`})
	srv := handler.New(&graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return s },
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			return graphql.OneShot(&graphql.Response{Data: []byte(`{"hello":"hi"}`)})
		},
	})
	srv.AddTransport(transport.POST{})
	srv.Use(OperationNameExtension())

	tests := []struct{ body, want string }{
		{`{"query":"query Greeting { hello }"}`, "Greeting"},
		{`{"query":"{ hello }"}`, "anonymous"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			var buf bytes.Buffer
			h := RequestLog(slog.New(slog.NewJSONHandler(&buf, nil)), nil)(srv)
			r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(httptest.NewRecorder(), r)
			lines := decodeLines(t, buf.Bytes())
			if len(lines) != 1 || lines[0]["operation"] != tt.want {
				t.Fatalf("lines = %v", lines)
			}
		})
	}
}

// A websocket upgrade goes through the response recorder (coder/websocket
// finds the Hijacker via Unwrap) and is logged once, when it closes.
func TestWebsocketLoggedAtClose(t *testing.T) {
	var buf syncbuf.Buffer
	done := make(chan struct{})
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		SetUser(r.Context(), "user-9")
		_, _, _ = c.Read(r.Context()) // until the client closes
		_ = c.CloseNow()
	})
	logged := RequestLog(slog.New(slog.NewJSONHandler(&buf, nil)), nil)(ws)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		logged.ServeHTTP(w, r)
	}))
	defer srv.Close()

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(buf.Bytes()) != 0 {
		t.Fatal("logged before the socket closed")
	}
	_ = c.Close(websocket.StatusNormalClosure, "bye")
	<-done
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 1 {
		t.Fatalf("lines = %v", lines)
	}
	if l := lines[0]; l["status"] != float64(101) || l["websocket"] != true || l["user_id"] != "user-9" {
		t.Fatalf("line = %v", l)
	}
}

// A websocket served on after its handler returned (reqctx.Detach) is
// logged when it ends, with what was set meanwhile.
func TestDetachedWebsocketLoggedAtEnd(t *testing.T) {
	var buf syncbuf.Buffer
	ended := make(chan struct{})
	ws := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			t.Errorf("accept: %v", err)
			return
		}
		end, ok := reqctx.Detach(r.Context())
		if !ok {
			t.Error("the upgrade cannot be detached")
			return
		}
		ctx := context.WithoutCancel(r.Context())
		go func() {
			defer close(ended)
			defer end()
			SetUser(ctx, "user-9")
			_, _, _ = c.Read(ctx) // until the client closes
			_ = c.CloseNow()
		}()
	})
	returned := make(chan struct{})
	logged := RequestLog(slog.New(slog.NewJSONHandler(&buf, nil)), nil)(ws)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(returned)
		logged.ServeHTTP(w, r.WithContext(reqctx.WithLifetime(r.Context())))
	}))
	defer srv.Close()

	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	<-returned
	if len(buf.Bytes()) != 0 {
		t.Fatal("logged before the socket ended")
	}
	_ = c.Close(websocket.StatusNormalClosure, "bye")
	<-ended
	lines := decodeLines(t, buf.Bytes())
	if len(lines) != 1 {
		t.Fatalf("lines = %v", lines)
	}
	if l := lines[0]; l["status"] != float64(101) || l["websocket"] != true || l["user_id"] != "user-9" {
		t.Fatalf("line = %v", l)
	}
}
