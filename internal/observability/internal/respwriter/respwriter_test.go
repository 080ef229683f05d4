package respwriter

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecorder(t *testing.T) {
	tests := []struct {
		name     string
		do       func(w http.ResponseWriter)
		status   int
		bytes    int64
		upgraded bool
	}{
		{"nothing written", func(w http.ResponseWriter) {}, 200, 0, false},
		{"body only", func(w http.ResponseWriter) { _, _ = w.Write([]byte("hey")) }, 200, 3, false},
		{"status then body", func(w http.ResponseWriter) { w.WriteHeader(404); _, _ = w.Write([]byte("no")) }, 404, 2, false},
		{"first status wins", func(w http.ResponseWriter) { w.WriteHeader(500); w.WriteHeader(200) }, 500, 0, false},
		{"informational is not final", func(w http.ResponseWriter) { w.WriteHeader(103); w.WriteHeader(201) }, 201, 0, false},
		{"upgrade", func(w http.ResponseWriter) { w.WriteHeader(101) }, 101, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := New(httptest.NewRecorder())
			tt.do(rec)
			if rec.Status() != tt.status || rec.Bytes() != tt.bytes || rec.Upgraded() != tt.upgraded {
				t.Fatalf("status %d bytes %d upgraded %v", rec.Status(), rec.Bytes(), rec.Upgraded())
			}
			if http.NewResponseController(rec).Flush() != nil {
				t.Fatal("flush does not reach the underlying writer")
			}
		})
	}
}
