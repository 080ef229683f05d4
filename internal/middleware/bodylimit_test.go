package middleware

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
)

// gqlServer is a real gqlgen handler (POST and multipart transports) over a
// two-field schema, so that the limits meet gqlgen's own body handling.
func gqlServer(t *testing.T, maxUpload int64) (http.Handler, *int) {
	t.Helper()
	schema := gqlparser.MustLoadSchema(&ast.Source{Input: `
		scalar Upload
		type Query { ok: Boolean }
		type Mutation { upload(file: Upload!): Boolean }
	`})
	execs := 0
	es := &graphql.ExecutableSchemaMock{
		SchemaFunc: func() *ast.Schema { return schema },
		ComplexityFunc: func(context.Context, string, string, int, map[string]any) (int, bool) {
			return 0, false
		},
		ExecFunc: func(ctx context.Context) graphql.ResponseHandler {
			execs++
			return graphql.OneShot(&graphql.Response{Data: []byte(`{"ok":true}`)})
		},
	}
	srv := handler.New(es)
	srv.AddTransport(transport.POST{})
	srv.AddTransport(transport.MultipartForm{MaxUploadSize: maxUpload, MaxMemory: 1 << 10})
	return srv, &execs
}

// chunked makes the request body of unknown length, as Transfer-Encoding:
// chunked does on the wire.
func chunked(r *http.Request) *http.Request {
	r.ContentLength = -1
	r.Body = io.NopCloser(r.Body)
	return r
}

func multipartBody(t *testing.T, fileSize int) (string, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("operations", `{"query":"mutation($f: Upload!){ upload(file: $f) }","variables":{"f":null}}`)
	_ = mw.WriteField("map", `{"0":["variables.f"]}`)
	fw, _ := mw.CreateFormFile("0", "doc.bin")
	_, _ = fw.Write(bytes.Repeat([]byte{0xAB}, fileSize))
	_ = mw.Close()
	return mw.FormDataContentType(), &buf
}

func TestBodyLimit(t *testing.T) {
	const maxJSON, maxMultipart = 1 << 10, 8 << 10
	query := func(pad int) string {
		return `{"query":"{ ok }","variables":{"pad":"` + strings.Repeat("x", pad) + `"}}`
	}
	tests := []struct {
		name     string
		req      func() *http.Request
		wantCode int
		wantExec bool
	}{
		{name: "small json", wantCode: 200, wantExec: true, req: func() *http.Request {
			return jsonRequest(query(10))
		}},
		{name: "json exactly at limit", wantCode: 200, wantExec: true, req: func() *http.Request {
			return jsonRequest(query(maxJSON - len(query(0))))
		}},
		{name: "json over limit by length", wantCode: 413, req: func() *http.Request {
			return jsonRequest(query(maxJSON))
		}},
		{name: "chunked json under limit", wantCode: 200, wantExec: true, req: func() *http.Request {
			return chunked(jsonRequest(query(500)))
		}},
		{name: "chunked json one byte over", wantCode: 413, req: func() *http.Request {
			return chunked(jsonRequest(query(maxJSON - len(query(0)) + 1)))
		}},
		{name: "json body lying about a small length", wantCode: 413, req: func() *http.Request {
			r := jsonRequest(query(maxJSON * 2))
			r.ContentLength = -1
			return r
		}},
		{name: "multipart under limit", wantCode: 200, wantExec: true, req: func() *http.Request {
			ct, body := multipartBody(t, 4<<10)
			return multipartRequest(ct, body)
		}},
		{name: "multipart over limit by length", wantCode: 413, req: func() *http.Request {
			ct, body := multipartBody(t, 9<<10)
			return multipartRequest(ct, body)
		}},
		{name: "chunked multipart under limit", wantCode: 200, wantExec: true, req: func() *http.Request {
			ct, body := multipartBody(t, 4<<10)
			return chunked(multipartRequest(ct, body))
		}},
		{name: "chunked multipart over limit", wantCode: 413, req: func() *http.Request {
			ct, body := multipartBody(t, 20<<10)
			return chunked(multipartRequest(ct, body))
		}},
		{name: "multipart over json limit is fine", wantCode: 200, wantExec: true, req: func() *http.Request {
			ct, body := multipartBody(t, 2*maxJSON)
			return chunked(multipartRequest(ct, body))
		}},
		{name: "GET without body", wantCode: 200, req: func() *http.Request {
			return httptest.NewRequest(http.MethodGet, "/graphql", nil)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gql, execs := gqlServer(t, maxMultipart)
			next := gql
			if tt.name == "GET without body" {
				next = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			}
			h := BodyLimit(maxJSON, maxMultipart)(next)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req())
			if w.Code != tt.wantCode {
				t.Fatalf("status %d, want %d; body %s", w.Code, tt.wantCode, w.Body)
			}
			if got := *execs > 0; got != tt.wantExec {
				t.Errorf("executed = %v", got)
			}
			if tt.wantCode != http.StatusRequestEntityTooLarge {
				return
			}
			limit := maxJSON
			if strings.Contains(tt.name, "multipart") {
				limit = maxMultipart
			}
			wantBody := fmt.Sprintf(`{"errors":[{"extensions":{"code":"BAD_USER_INPUT"},"message":"request body too large (limit %d bytes)"}]}`, limit)
			if strings.TrimSpace(w.Body.String()) != wantBody {
				t.Errorf("body %s\nwant %s", w.Body, wantBody)
			}
			if w.Header().Get("Content-Type") != "application/json" {
				t.Errorf("Content-Type %q", w.Header().Get("Content-Type"))
			}
		})
	}
}

func jsonRequest(body string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	return r
}

func multipartRequest(contentType string, body *bytes.Buffer) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/graphql", body)
	r.Header.Set("Content-Type", contentType)
	return r
}

// TestBodyLimitRealServer sends a chunked oversized JSON body over a real
// connection, where net/http's own handling of MaxBytesReader applies.
func TestBodyLimitRealServer(t *testing.T) {
	gql, _ := gqlServer(t, 8<<10)
	srv := httptest.NewServer(BodyLimit(1<<10, 8<<10)(gql))
	defer srv.Close()
	body := io.MultiReader(strings.NewReader(`{"query":"{ ok }","x":"`), strings.NewReader(strings.Repeat("y", 4<<10)), strings.NewReader(`"}`))
	req, err := http.NewRequest(http.MethodPost, srv.URL, body) // io.MultiReader: length unknown, sent chunked
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Errors []struct {
			Message    string
			Extensions map[string]string
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusRequestEntityTooLarge || len(out.Errors) != 1 || out.Errors[0].Extensions["code"] != "BAD_USER_INPUT" {
		t.Fatalf("%d %+v", resp.StatusCode, out)
	}
}
