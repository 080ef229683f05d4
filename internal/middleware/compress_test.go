package middleware

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestCompress(t *testing.T) {
	big := `{"data":{"x":"` + strings.Repeat("abcdefgh", 1600) + `"}}` // ~12.5 KiB
	small := `{"data":{"x":"small"}}`
	tests := []struct {
		name        string
		body        string
		contentType string
		reqHeaders  map[string]string
		wantGzip    bool
	}{
		{name: "large json", body: big, contentType: "application/json", reqHeaders: map[string]string{"Accept-Encoding": "gzip"}, wantGzip: true},
		{name: "large graphql-response+json", body: big, contentType: "application/graphql-response+json", reqHeaders: map[string]string{"Accept-Encoding": "gzip, deflate, br"}, wantGzip: true},
		{name: "large sniffed type", body: big, reqHeaders: map[string]string{"Accept-Encoding": "gzip"}, wantGzip: true},
		{name: "small json", body: small, contentType: "application/json", reqHeaders: map[string]string{"Accept-Encoding": "gzip"}},
		{name: "just under 8 KiB", body: strings.Repeat("a", 8191), contentType: "text/plain", reqHeaders: map[string]string{"Accept-Encoding": "gzip"}},
		{name: "x-no-compression", body: big, contentType: "application/json", reqHeaders: map[string]string{"Accept-Encoding": "gzip", "x-no-compression": "1"}},
		{name: "client does not accept gzip", body: big, contentType: "application/json"},
		{name: "client accepts only zstd", body: big, contentType: "application/json", reqHeaders: map[string]string{"Accept-Encoding": "zstd"}},
		{name: "ciphertext download", body: big, contentType: "application/octet-stream", reqHeaders: map[string]string{"Accept-Encoding": "gzip"}},
		{name: "ciphertext download with params", body: big, contentType: "application/octet-stream; name=x", reqHeaders: map[string]string{"Accept-Encoding": "gzip"}},
		{name: "already compressed", body: big, contentType: "application/zip", reqHeaders: map[string]string{"Accept-Encoding": "gzip"}},
	}
	compress, err := Compress()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := compress(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tt.contentType != "" {
					w.Header().Set("Content-Type", tt.contentType)
				}
				_, _ = io.WriteString(w, tt.body)
			}))
			r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
			for k, v := range tt.reqHeaders {
				r.Header.Set(k, v)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			gz := w.Header().Get("Content-Encoding") == "gzip"
			if gz != tt.wantGzip {
				t.Fatalf("gzip = %v, want %v (headers %v)", gz, tt.wantGzip, w.Header())
			}
			if enc := w.Header().Get("Content-Encoding"); enc != "" && enc != "gzip" {
				t.Fatalf("Content-Encoding %q", enc)
			}
			got := w.Body.Bytes()
			if gz {
				zr, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatal(err)
				}
				if got, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
				if w.Body.Len() >= len(tt.body) {
					t.Errorf("compressed %d bytes to %d", len(tt.body), w.Body.Len())
				}
			}
			if string(got) != tt.body {
				t.Errorf("body changed: %d bytes, want %d", len(got), len(tt.body))
			}
		})
	}
}

// TestCompressWebsocket checks that an upgrade goes through Compress (and
// Recover, which wraps the writer too) on a real connection.
func TestCompressWebsocket(t *testing.T) {
	compress, err := Compress()
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		ctx := r.Context()
		typ, msg, err := c.Read(ctx)
		if err != nil {
			return
		}
		_ = c.Write(ctx, typ, bytes.Repeat(msg, 4000)) // > 8 KiB
		_ = c.Close(websocket.StatusNormalClosure, "")
	})
	srv := httptest.NewServer(Recover(nil)(compress(echo)))
	defer srv.Close()

	for _, hdr := range []http.Header{nil, {"Accept-Encoding": {"gzip"}}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, resp, err := websocket.Dial(ctx, srv.URL, &websocket.DialOptions{HTTPHeader: hdr})
		if err != nil {
			cancel()
			t.Fatalf("dial with %v: %v", hdr, err)
		}
		if resp.Header.Get("Content-Encoding") != "" {
			t.Errorf("upgrade response has Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
		if err := c.Write(ctx, websocket.MessageText, []byte("ping ")); err != nil {
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if string(msg) != strings.Repeat("ping ", 4000) {
			t.Errorf("echo %d bytes", len(msg))
		}
		_ = c.Close(websocket.StatusNormalClosure, "")
		cancel()
	}
}

func TestIsUpgrade(t *testing.T) {
	tests := []struct {
		conn, upgrade string
		want          bool
	}{
		{"Upgrade", "websocket", true},
		{"keep-alive, Upgrade", "websocket", true},
		{"keep-alive", "websocket", false},
		{"Upgrade", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Connection", tt.conn)
		r.Header.Set("Upgrade", tt.upgrade)
		if got := isUpgrade(r); got != tt.want {
			t.Errorf("Connection %q Upgrade %q: %v", tt.conn, tt.upgrade, got)
		}
	}
}

// A history page is mostly base64 (ciphertext, the sender's ML-DSA-65
// signature, the reader's KEM ciphertext), which gzip shrinks by its
// alphabet (6 bits of 8) and the JSON around it by repetition. Stateless
// deflate stored such a page whole (ratio 1.00); Huffman coding alone keeps
// 76% of it at half of stateless's CPU.
func TestCompressHistoryPage(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var page strings.Builder
	page.WriteString(`{"data":{"room":{"messages":{"edges":[`)
	for i := range 50 {
		ct := make([]byte, 900)
		kem := make([]byte, 1088)
		sig := make([]byte, 3309)
		for _, b := range [][]byte{ct, kem, sig} {
			for j := range b {
				b[j] = byte(rng.Uint32())
			}
		}
		if i > 0 {
			page.WriteByte(',')
		}
		fmt.Fprintf(&page, `{"cursor":"c%d","node":{"id":"%08d-0000-4000-8000-000000000000","ciphertext":%q,"nonce":"AAAAAAAAAAAAAAAA","createdAt":"2026-11-30T12:00:00Z","version":2,"signature":%q,"sender":{"id":"u1"},"myKey":{"keyId":"k1","kemCiphertext":%q,"wrappedKey":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}}`,
			i, i, base64.StdEncoding.EncodeToString(ct), base64.StdEncoding.EncodeToString(sig), base64.StdEncoding.EncodeToString(kem))
	}
	page.WriteString(`]}}}}`)
	compress, err := Compress()
	if err != nil {
		t.Fatal(err)
	}
	h := compress(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, page.String())
	}))
	req := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	req.Header.Set("Accept-Encoding", "gzip")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatal("the page was not compressed")
	}
	wire := rec.Body.Len()
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil || string(got) != page.String() {
		t.Fatalf("decompressed page differs (%v)", err)
	}
	if ratio := float64(wire) / float64(page.Len()); ratio > 0.78 {
		t.Fatalf("%d bytes on the wire for a %d-byte page (%.2f), want at most 0.78", wire, page.Len(), ratio)
	}
}
