package middleware

import (
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql/playground"

	"github.com/qchat/qchat/internal/clientip"
)

func TestSecurityHeaders(t *testing.T) {
	tests := []struct {
		name       string
		production bool
		want       map[string]string
	}{
		{
			name:       "development",
			production: false,
			want: map[string]string{
				"Content-Security-Policy":   APIContentSecurityPolicy,
				"X-Frame-Options":           "DENY",
				"X-Content-Type-Options":    "nosniff",
				"Referrer-Policy":           "strict-origin-when-cross-origin",
				"Strict-Transport-Security": "",
			},
		},
		{
			name:       "production",
			production: true,
			want: map[string]string{
				"Content-Security-Policy":   APIContentSecurityPolicy,
				"X-Frame-Options":           "DENY",
				"X-Content-Type-Options":    "nosniff",
				"Referrer-Policy":           "strict-origin-when-cross-origin",
				"Strict-Transport-Security": "max-age=31536000; includeSubDomains",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := SecurityHeaders(tt.production)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "{}")
			}))
			// Plain HTTP as seen behind a TLS-terminating proxy: HSTS must still be sent in production.
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/graphql", nil))
			if w.Code != http.StatusOK || w.Body.String() != "{}" {
				t.Fatalf("response %d %q", w.Code, w.Body)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestPlaygroundCSP(t *testing.T) {
	page := playground.Handler("QChat", "/graphql")
	h, err := PlaygroundCSP(page)
	if err != nil {
		t.Fatal(err)
	}
	// The API policy is set outside and must be replaced, not merged.
	h = SecurityHeaders(true)(h)

	tests := []struct {
		name        string
		host        string
		https       bool
		wantConnect string
	}{
		{name: "http", host: "localhost:8080", wantConnect: "connect-src 'self' ws://localhost:8080"},
		{name: "https via trusted proxy", host: "chat.example.com", https: true, wantConnect: "connect-src 'self' wss://chat.example.com"},
		{name: "odd host is left out", host: "a;b", wantConnect: "connect-src 'self';"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.Host = tt.host
			scheme := "http"
			if tt.https {
				scheme = "https"
			}
			r = r.WithContext(clientip.With(r.Context(), "203.0.113.1", scheme))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			body := w.Body.String()
			csp := w.Header().Get("Content-Security-Policy")
			if w.Code != http.StatusOK || !strings.Contains(body, "graphiql") {
				t.Fatalf("page %d", w.Code)
			}
			if !strings.Contains(csp, tt.wantConnect) {
				t.Errorf("CSP %q lacks %q", csp, tt.wantConnect)
			}
			checkPlaygroundPolicy(t, csp, body)
			if w.Header().Get("X-Frame-Options") != "DENY" {
				t.Error("other security headers lost")
			}
		})
	}
}

// checkPlaygroundPolicy verifies the policy against the page independently of
// the implementation: every external script is listed by URL and pinned by SRI,
// every inline script by hash, and nothing broader is allowed.
func checkPlaygroundPolicy(t *testing.T, csp, body string) {
	t.Helper()
	directives := map[string]string{}
	for _, d := range strings.Split(csp, ";") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), " ")
		directives[name] = value
	}
	scriptSrc := directives["script-src"]
	for _, bad := range []string{"'unsafe-inline'", "'unsafe-eval'", "*", "https:", "data:"} {
		for _, tok := range strings.Fields(scriptSrc) {
			if tok == bad {
				t.Errorf("script-src allows %s: %q", bad, scriptSrc)
			}
		}
	}
	if directives["default-src"] != "'none'" || directives["frame-ancestors"] != "'none'" || directives["object-src"] != "'none'" {
		t.Errorf("base directives wrong: %q", csp)
	}
	if strings.Contains(directives["style-src"], "'sha256-") {
		t.Error("a hash in style-src would disable 'unsafe-inline'")
	}

	external := regexp.MustCompile(`<script\s+src="([^"]+)"\s+integrity="(sha256-[^"]+)"`).FindAllStringSubmatch(body, -1)
	if len(external) < 3 { // react, react-dom, graphiql
		t.Fatalf("found %d SRI-pinned scripts in the page", len(external))
	}
	for _, m := range external {
		if !strings.HasPrefix(m[1], "https://cdn.jsdelivr.net/npm/") {
			t.Errorf("unexpected script origin %s", m[1])
		}
		if !strings.Contains(" "+scriptSrc+" ", " "+m[1]+" ") {
			t.Errorf("script-src lacks %s", m[1])
		}
	}
	if n := strings.Count(body, "<script"); n != len(external)+1 {
		t.Errorf("page has %d scripts, %d external: a script without SRI?", n, len(external))
	}
	inline := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(body, -1)
	if len(inline) != 1 {
		t.Fatalf("found %d inline scripts", len(inline))
	}
	sum := sha256.Sum256([]byte(inline[0][1]))
	hash := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	if !strings.Contains(scriptSrc, hash) {
		t.Errorf("script-src %q lacks the inline script's hash %s", scriptSrc, hash)
	}
	for _, m := range regexp.MustCompile(`<link\s+rel="stylesheet"\s+href="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		if !strings.Contains(directives["style-src"], m[1]) {
			t.Errorf("style-src lacks %s", m[1])
		}
	}
}

func TestPlaygroundCSPErrors(t *testing.T) {
	n := 0
	tests := []struct {
		name string
		page http.HandlerFunc
	}{
		{name: "dynamic page", page: func(w http.ResponseWriter, r *http.Request) {
			n++
			_, _ = io.WriteString(w, "<script>var n = "+strings.Repeat("1", n)+"</script>")
		}},
		{name: "no script", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "<p>hello</p>")
		}},
		{name: "error status", page: func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "nope", http.StatusInternalServerError)
		}},
		{name: "source that would break the policy", page: func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, `<script src="https://x.example/a.js; script-src *"></script>`)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := PlaygroundCSP(tt.page); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func TestPlaygroundPolicy(t *testing.T) {
	page := `<html><head><style>body{}</style>
<script src="https://cdn.example/a.js" integrity="x"></script>
<script SRC="https://cdn.example/a.js"></script>
<link rel="stylesheet" href="https://cdn.example/a.css?x=1&amp;y=2">
<link rel="icon" href="https://cdn.example/favicon.ico">
</head><body><script>alert(1)</script><script type="module">go()</script></body></html>`
	got, err := playgroundPolicy([]byte(page))
	if err != nil {
		t.Fatal(err)
	}
	want := "default-src 'none'; " +
		"script-src https://cdn.example/a.js " + hashSource([]byte("alert(1)")) + " " + hashSource([]byte("go()")) + "; " +
		"style-src 'unsafe-inline' https://cdn.example/a.css?x=1&y=2; " +
		"connect-src 'self'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'; " +
		"base-uri 'none'; form-action 'none'; object-src 'none'"
	if got != want {
		t.Errorf("policy\n got %s\nwant %s", got, want)
	}
}
