package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/observability/logging"
)

func TestRecover(t *testing.T) {
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		wantCode    int
		wantRepanic any
		wantLog     bool
		wantBody    string
	}{
		{
			name:     "no panic",
			handler:  func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "fine") },
			wantCode: 200,
			wantBody: "fine",
		},
		{
			name: "panic before writing",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", "999")
				panic("database exploded: password=hunter2")
			},
			wantCode: 500,
			wantLog:  true,
		},
		{
			name:     "panic with error value",
			handler:  func(w http.ResponseWriter, r *http.Request) { panic(errors.New("boom")) },
			wantCode: 500,
			wantLog:  true,
		},
		{
			name:        "ErrAbortHandler passes through",
			handler:     func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) },
			wantRepanic: http.ErrAbortHandler,
		},
		{
			name: "panic after the response started aborts",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, `{"data":`)
				panic("half way")
			},
			wantRepanic: http.ErrAbortHandler,
			wantLog:     true,
		},
		{
			name: "panic after flush aborts",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.(http.Flusher).Flush()
				panic("after flush")
			},
			wantRepanic: http.ErrAbortHandler,
			wantLog:     true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			// The request id reaches the line through the logger's
			// request-context handler, as in production.
			log := slog.New(logging.RequestContext(slog.NewJSONHandler(&logs, nil)))
			h := RequestID(Recover(log)(tt.handler))
			w := httptest.NewRecorder()
			var repanic any
			func() {
				defer func() { repanic = recover() }()
				h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/graphql", nil))
			}()
			if repanic != tt.wantRepanic {
				t.Fatalf("re-panic %v, want %v", repanic, tt.wantRepanic)
			}
			if (logs.Len() > 0) != tt.wantLog {
				t.Errorf("log = %q", logs.String())
			}
			rid := w.Header().Get(RequestIDHeader)
			if tt.wantLog {
				var entry map[string]any
				if err := json.Unmarshal(logs.Bytes(), &entry); err != nil {
					t.Fatal(err)
				}
				if entry["request_id"] != rid || !strings.Contains(entry["stack"].(string), "recover_test.go") {
					t.Errorf("log entry %v", entry)
				}
			}
			if tt.wantRepanic != nil {
				return
			}
			if w.Code != tt.wantCode {
				t.Fatalf("status %d, want %d", w.Code, tt.wantCode)
			}
			if tt.wantCode != http.StatusInternalServerError {
				if w.Body.String() != tt.wantBody {
					t.Errorf("body %q", w.Body)
				}
				return
			}
			want := `{"errors":[{"extensions":{"code":"INTERNAL_SERVER_ERROR","requestId":"` + rid + `"},"message":"internal server error"}]}`
			if rid == "" || strings.TrimSpace(w.Body.String()) != want {
				t.Errorf("body %s\nwant %s", w.Body, want)
			}
			if strings.Contains(w.Body.String(), "hunter2") || strings.Contains(w.Body.String(), "boom") {
				t.Error("panic detail leaked to the client")
			}
			if w.Header().Get("Content-Length") != "" {
				t.Error("stale Content-Length kept")
			}
		})
	}
}

// TestRecoverRealServer checks that net/http keeps serving after a recovered
// panic and that an aborted response is cut, not completed.
func TestRecoverRealServer(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/panic", func(w http.ResponseWriter, r *http.Request) { panic("x") })
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := httptest.NewUnstartedServer(RequestID(Recover(nil)(mux)))
	srv.Config.ErrorLog = nil
	srv.Start()
	defer srv.Close()
	for _, path := range []string{"/panic", "/ok", "/panic", "/ok"} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		want := http.StatusOK
		if path == "/panic" {
			want = http.StatusInternalServerError
		}
		if resp.StatusCode != want {
			t.Errorf("%s: %d", path, resp.StatusCode)
		}
	}
}
