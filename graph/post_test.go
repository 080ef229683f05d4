package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/testserver"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// postJSON answers every request as gqlgen's own POST transport does: same
// status, same content type, the same JSON.
func TestPostJSONAnswersAsGqlgenPOST(t *testing.T) {
	servers := map[string]func() *testserver.TestServer{"ok": testserver.New, "resolver error": testserver.NewError}
	cases := []struct{ name, accept, body string }{
		{"query", "", `{"query":"{ name }"}`},
		{"query with variables", "application/json", `{"query":"query($id: Int!) { find(id: $id) }","variables":{"id":1}}`},
		{"graphql-response+json", "application/graphql-response+json", `{"query":"{ name }"}`},
		{"unknown accept", "text/html", `{"query":"{ name }"}`},
		{"body not json", "", `{"query":`},
		{"syntax error", "", `{"query":"{ name "}`},
		{"syntax error, graphql-response+json", "application/graphql-response+json", `{"query":"{ name "}`},
		{"validation error", "", `{"query":"{ nope }"}`},
		{"unknown operation", "", `{"query":"query A { name }","operationName":"B"}`},
	}
	for sname, newServer := range servers {
		for _, tc := range cases {
			t.Run(sname+"/"+tc.name, func(t *testing.T) {
				do := func(tr graphql.Transport) (int, string, []byte) {
					ts := newServer()
					ts.AddTransport(tr)
					req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
					req.Header.Set("Content-Type", "application/json")
					if tc.accept != "" {
						req.Header.Set("Accept", tc.accept)
					}
					rec := httptest.NewRecorder()
					ts.ServeHTTP(rec, req)
					body, _ := io.ReadAll(rec.Body)
					return rec.Code, rec.Header().Get("Content-Type"), body
				}
				wantCode, wantType, wantBody := do(transport.POST{})
				code, typ, body := do(postJSON{})
				// One deliberate difference: gqlgen quotes the whole request body in
				// its decoding error (a password, up to the 1 MiB limit); postJSON
				// does not.
				if i := bytes.Index(wantBody, []byte(" body:")); i >= 0 {
					wantBody = append(wantBody[:i:i], wantBody[bytes.Index(wantBody, []byte(`"}]`)):]...)
				}
				var want, got any
				if err := json.Unmarshal(wantBody, &want); err != nil {
					t.Fatalf("gqlgen answered %s: %v", wantBody, err)
				}
				if err := json.Unmarshal(body, &got); err != nil {
					t.Fatalf("postJSON answered %s: %v", body, err)
				}
				if code != wantCode || typ != wantType || !reflect.DeepEqual(got, want) {
					t.Errorf("postJSON: %d %s %s\ngqlgen:   %d %s %s", code, typ, body, wantCode, wantType, wantBody)
				}
			})
		}
	}
}

// writeResponse lays a response out as json.Marshal does, optional fields
// included.
func TestWriteResponseMatchesJSONMarshal(t *testing.T) {
	yes := true
	for _, resp := range []*graphql.Response{
		{Data: json.RawMessage(`{"a":1}`)},
		{},
		{Data: json.RawMessage(`{"a":null}`), Extensions: map[string]any{"requestId": "r1"}},
		{Errors: gqlerror.List{{Message: "boom <&>", Extensions: map[string]any{"code": "X"}}}, Data: json.RawMessage(`null`)},
		{Label: "l", HasNext: &yes, Data: json.RawMessage(`{}`)},
	} {
		want, err := json.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		writeResponse(&got, resp)
		if got.String() != string(want) {
			t.Errorf("got  %s\nwant %s", got.String(), want)
		}
	}
}

// captureExecutor keeps the parameters of every request and refuses it.
type captureExecutor struct{ params []*graphql.RawParams }

func (c *captureExecutor) CreateOperationContext(_ context.Context, p *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	c.params = append(c.params, p)
	return &graphql.OperationContext{}, gqlerror.List{gqlerror.Errorf("captured")}
}

func (c *captureExecutor) DispatchOperation(context.Context, *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	panic("not dispatched")
}

func (c *captureExecutor) DispatchError(_ context.Context, list gqlerror.List) *graphql.Response {
	return &graphql.Response{Errors: list}
}

// Bodies are read into pooled buffers: what a request decoded must not change
// when the next request reuses its buffer, on the fast path and the fallback.
func TestPooledBodiesAreNotReferenced(t *testing.T) {
	bodies := []string{
		`{"query":"query A($v: String) {\n a }","operationName":"A","variables":{"v":"aaaa","n":1.5,"l":["x"]},"extensions":{"e":"a"}}`,
		`{"query":"query B($v: String) {\n b }","operationName":"B","variables":{"v":"bbbb","n":2.5,"l":["y"]},"extensions":{"e":"b"}}`,
		`{"query":"query C \u0041 { c }","Variables":{"v":"cccc"}}`, // encoding/json's path
		`{"query":"query D { d }","variables":{"v":"dddd","n":3.5,"l":["z"]}}`,
	}
	exec := &captureExecutor{}
	var want []*graphql.RawParams
	for _, b := range bodies {
		p, err := decodeStd([]byte(b))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, p)
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		postJSON{}.Do(httptest.NewRecorder(), req, exec)
	}
	for i, p := range exec.params {
		p.Headers, p.ReadTime = nil, graphql.TraceTiming{}
		if !reflect.DeepEqual(p, want[i]) {
			t.Errorf("request %d decoded to %#v after the later ones, want %#v", i, *p, *want[i])
		}
	}
}
