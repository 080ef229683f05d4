package server_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/qchat/qchat/internal/qchattest"
	"github.com/qchat/qchat/internal/qchattest/gqlbomb"
)

// FuzzGraphQLEndpoint posts arbitrary bodies as JSON and as multipart to the
// real handler: client garbage must never panic the server or earn a 5xx, and
// the server keeps answering afterwards. Its seeds include every
// validation-bomb shape (internal/qchattest/gqlbomb).
func FuzzGraphQLEndpoint(f *testing.F) {
	seeds := []struct {
		ct   string
		body string
	}{
		{"application/json", `{"query":"{ me { id } }"}`},
		{"application/json", `{"query":"mutation { sendMessage(input: {id: \"x\", ciphertext: \"\", nonce: \"\", keys: []}) { id } }"}`},
		{"application/json", `{"query": 42}`},
		{"application/json", `{"query":"{ me { id } }","variables":{"a":[[[[[[]]]]]]}}`},
		{"application/json", `[{"query":"{ me { id } }"},{"query":"{ me { id } }"}]`},
		{"application/json", `{"query":"query($x: Int!) { room(id: $x) { id } }","variables":{"x":"NaN"}}`},
		{"application/json", `{"extensions":{"persistedQuery":{"version":1,"sha256Hash":"abc"}}}`},
		{"application/json", "\x00\xff{"},
		{"multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"operations\"\r\n\r\n{\"query\":\"mutation($f: Upload!) { x }\"}\r\n--X\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\n{\"0\":[\"variables.f\"]}\r\n--X--\r\n"},
		{"multipart/form-data; boundary=X", "--X\r\nContent-Disposition: form-data; name=\"map\"\r\n\r\nnot json\r\n--X--"},
		{"multipart/form-data", "garbage"},
		{"text/plain", "{ me { id } }"},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	// The validation bombs, just under and well over the document limits:
	// the mutations the fuzzer makes of them probe the limits' edges.
	for _, sh := range gqlbomb.Shapes {
		for _, n := range []int{8, 300, 5000} {
			f.Add("application/json", qchattest.GraphQLBody(sh.Build(n), nil))
		}
	}
	srv := qchattest.NewServer(f, qchattest.NewSQLite(f))
	u := srv.Register(f, "fuzzer")
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		for _, token := range []string{"", u.Token} {
			req := httptest.NewRequest(http.MethodPost, srv.URL+"/graphql", bytes.NewReader(body))
			req.RequestURI = ""
			req.Header.Set("Content-Type", contentType)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				if strings.Contains(err.Error(), "invalid header field") {
					return // Go's client will not send it; nothing reached the server
				}
				t.Fatalf("server did not answer: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("%d for client garbage (%q, %q)", resp.StatusCode, contentType, body)
			}
		}
		if r := srv.Do(t, u.Token, `{ me { id } }`, nil); r.Code() != "" {
			t.Fatalf("server stopped serving: %+v", r.Errors)
		}
	})
}
